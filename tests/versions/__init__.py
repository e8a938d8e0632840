"""API versions: the generated templates rendered, AWS semantics modelled, apply against moto."""
