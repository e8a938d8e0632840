"""One reconcile: diff and plan units, each kind's drift, safety, faults, promotion, environments."""
