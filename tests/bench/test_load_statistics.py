"""The load generator's statistics."""

from __future__ import annotations

import pytest

from bench.load import Phase, Sample, percentile


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(list(reversed(values)), 99) == 99


def test_a_percentile_is_always_an_observed_value():
    assert percentile([3.0], 99) == 3.0
    assert percentile([10, 20], 50) == 10
    assert percentile([10, 20], 51) == 20
    # p99 of 300 requests is the 297th fastest: the three slowest are above it.
    values = [1.0] * 297 + [50.0, 60.0, 70.0]
    assert percentile(values, 99) == 1.0
    assert percentile([*values, 80.0], 99) == 50.0


@pytest.mark.parametrize("p", [0, -1, 101])
def test_percentiles_outside_0_to_100_are_refused(p):
    with pytest.raises(ValueError, match="p must be"):
        percentile([1, 2, 3], p)


def test_no_values_is_an_error_not_zero():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_a_phase_summarises_latency_queries_and_errors():
    phase = Phase("b_times", seconds=2.0)
    for ms in range(1, 101):
        phase.add(Sample(status=200, ms=float(ms), queries=4, app_ms=ms / 2, db_ms=1.0))
    phase.add(Sample(status=500, ms=200.0, queries=5, app_ms=None, db_ms=None))
    summary = phase.summary()
    assert summary["count"] == 101
    assert summary["rps"] == 50.5
    assert summary["p50"] == 51
    assert summary["max"] == 200
    assert (summary["queries_min"], summary["queries_max"]) == (4, 5)
    assert summary["statuses"] == {"200": 100, "500": 1}
    assert summary["server_errors"] == summary["unexpected"] == 1


def test_the_cpu_busy_share_is_a_fraction_and_the_report_says_what_it_means():
    from bench.report import _other_work_sentence, cpu_busy_share

    busy = cpu_busy_share(seconds=0.2)
    assert busy is None or 0 <= busy <= 1
    assert "quiet" in _other_work_sentence(0.05)
    assert "upper bound" in _other_work_sentence(0.6)
    assert "not measured" in _other_work_sentence(None)
