"""The bench-nginx report's arithmetic (scripts/bench_nginx.py): rounds to figures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_nginx


@pytest.mark.parametrize("values, expected", [
    ([3.0], 3.0), ([1.0, 9.0], 5.0), ([0.4, 0.9, 0.6], 0.6), ([4.0, 1.0, 3.0, 2.0], 2.5),
])
def test_median(values, expected):
    assert bench_nginx.median(values) == expected


def _round(rps: float, mbps: float, rss: float) -> dict:
    loads = {label: {"rps": rps, "mbps": mbps, "cpu_percent": 100.0, "p99_ms": 1.0} for label in bench_nginx.LOADS}
    return {"loads": loads, "workers": [1, 2], "rss_mib": 2 * rss, "rss_per_worker_mib": rss,
            "loadavg_before": (rps, 0, 0), "loadavg_after": (mbps, 0, 0)}


def test_combine_takes_each_loads_median_round_and_the_largest_rss():
    rounds = [_round(300, 30, 10), _round(100, 20, 12), _round(200, 10, 11)]
    side = bench_nginx.combine(rounds)
    assert side["loads"]["tiny"]["rps"] == 200 and side["loads"]["10mib"]["mbps"] == 20
    assert side["rss_per_worker_mib"] == 12 and side["rounds"] == rounds
    assert side["loadavg_before"][0] == 300 and side["loadavg_after"][0] == 10


def test_ratio_is_the_median_of_each_rounds_pair_not_of_the_medians():
    # ours' median round (200) over nginx's median round (200) would say 1.0x; the
    # rounds, each side measured back to back, say 0.5x, 2.0x, 0.4x: the median is 0.5x
    ours = [_round(100, 1, 1), _round(400, 1, 1), _round(200, 1, 1)]
    nginx = [_round(200, 1, 1), _round(200, 1, 1), _round(500, 1, 1)]
    results = {"ours": bench_nginx.combine(ours), "nginx": bench_nginx.combine(nginx)}
    assert bench_nginx.round_ratios(results, "mixed", "rps") == [0.5, 2.0, 0.4]
    rows = bench_nginx.report(results)
    mixed = next(r for r in rows if r["load"] == "mixed")
    assert mixed["ratio"] == 0.5 and mixed["verdict"] == "FAIL"  # target 0.6x
