"""The fast slice of ``make bench-replicas``: three real ``pointsman run`` replicas, four targets,
short leases. One killed, one paused past its lease: its targets are taken over, and it writes
nothing for them once it wakes; each drift is healed once; SIGTERM gives the leases back."""

from __future__ import annotations

import argparse

from benchmarks.bench_replicas import bench


def test_replicas_take_over_a_killed_one_and_a_paused_one_writes_nothing_for_what_it_lost() -> None:
    args = argparse.Namespace(targets=4, functions=1, lease=3.0, renew=2.0, retry=0.5, interval=3.0, keep=False)
    figures = bench(args)
    text = "\n".join(figures.lines)
    assert figures.zero_writes_after_cont is True, text
    assert "taken over after never" not in text and "healed after never" not in text, text
    assert "UpdateAlias per drifted target: [1" in text and ", 2" not in text.split("UpdateAlias per drifted target:")[1].split("]")[0], text
    assert figures.double_claim_samples == 0, text
    assert "exit codes {'r2': 0, 'r3': 0}; leases given back: 4 of 4" in text, text  # SIGTERM: a graceful stop
