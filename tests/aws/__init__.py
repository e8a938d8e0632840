"""Talking to AWS: pacing per quota bucket, throttling, the quota-enforcing proxy of the benchmarks."""
