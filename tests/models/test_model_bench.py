"""The correlation benchmark: both paths agree at the paper's sizes (slow); the FFT speed-up is a --bench check."""

import pytest

from geodistill.models.bench import bench_correlation


@pytest.fixture(scope="module")
def rows():
    return bench_correlation(repeats=1)


@pytest.mark.slow
def test_correlation_benchmark_rows_agree_at_paper_sizes(rows):
    fft, direct = rows
    assert fft["max_abs_diff"] <= 1e-4
    assert fft["speedup_vs_direct"] == pytest.approx(direct["median_ms"] / fft["median_ms"])
    assert {"name", "median_ms", "runs", "device"} <= set(direct) and fft["runs"] == direct["runs"] == 1
    assert "FFT" in fft["name"] and "direct" in direct["name"]


@pytest.mark.slow
@pytest.mark.bench
def test_fft_is_ten_times_faster_than_direct_at_paper_sizes(rows):
    fft, direct = rows
    assert fft["speedup_vs_direct"] >= 10.0
    assert direct["median_ms"] > fft["median_ms"] > 0
