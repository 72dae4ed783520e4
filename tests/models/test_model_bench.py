import pytest

from geodistill.models.bench import bench_correlation


@pytest.mark.slow
def test_fft_is_ten_times_faster_than_direct_at_paper_sizes():
    fft, direct = bench_correlation(repeats=1)
    assert fft["max_abs_diff"] <= 1e-4
    assert fft["speedup_vs_direct"] >= 10.0
    assert direct["median_ms"] > fft["median_ms"] > 0
    assert {"name", "median_ms", "runs", "device"} <= set(direct)
