"""``python -m geodistill bench``: the table, its rows and the timing helper."""

from __future__ import annotations

import argparse

import pytest
import torch

from geodistill.cli import main
from geodistill.commands import bench
from geodistill.shipped import DEFAULT_LOCALIZER


@pytest.mark.slow
def test_quick_bench_prints_a_table(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path))
    assert main(["bench", "--quick", "--device", "cpu", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and f"torch {torch.__version__}" in out and "device: cpu" in out
    assert "median of 5 runs" in out
    for item in ("model: CPU-scale preset", "correlation FFT vs direct", "single pair latency", "batched throughput",
                 "peak memory", "weak training step", "distillation step", "synthetic", "ccvpe single pair latency",
                 "ccvpe batched throughput", "ccvpe supervised step", "refine throughput"):
        assert item in out
    latency = next(line for line in out.splitlines() if line.startswith("single pair latency"))
    assert " ms" in latency or " s " in latency
    assert "pairs/s" in out and "MiB" in out
    ccvpe = next(line for line in out.splitlines() if line.startswith("ccvpe single pair latency"))
    assert "n/a" not in ccvpe and "n/a" not in next(line for line in out.splitlines() if "ccvpe supervised" in line)


def test_refine_row_measures_panoramas_per_second(monkeypatch):
    monkeypatch.setattr(bench, "REFINE_QUICK_PANORAMAS", 3)
    args = bench.argparse.Namespace(quick=True, batch_size=2, checkpoint=None, config=None)
    args.bench_model = bench.choose_model(args)
    row, = bench.refine_rows(args, torch.device("cpu"))
    assert row.item == "refine throughput" and row.value.endswith("panoramas/s")
    assert float(row.value.split()[0]) > 0 and "3 JPEG 2048x1024" in row.size


def test_correlation_rows_report_speed_up(monkeypatch):
    from geodistill.models import bench as models_bench

    def fake(repeats, device):
        assert repeats == 7
        return [{"median_ms": 20.0, "speedup_vs_direct": 150.0, "max_abs_diff": 3e-6},
                {"median_ms": 3000.0}]

    monkeypatch.setattr(models_bench, "bench_correlation", fake)
    rows = bench.correlation_rows(argparse.Namespace(repeats=7, quick=False), torch.device("cpu"))
    assert [r.value for r in rows] == ["20.0 ms", "3.00 s", "150.0x"]
    assert "3.0e-06" in rows[0].note


def test_time_median_takes_the_median(monkeypatch):
    clock = [100.0]
    durations = iter([9.0, 0.03, 0.01, 0.02, 0.05, 0.04])  # the first call is the untimed warm-up

    def work():
        clock[0] += next(durations)

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    assert bench.time_median(work, 5, torch.device("cpu")) == pytest.approx(0.03)


def test_failing_rows_say_why():
    def broken(args, device):
        raise RuntimeError("out of memory\nmore detail")

    rows = list(bench._section("weak training step", broken, argparse.Namespace(), torch.device("cpu")))
    assert rows[0].value == "n/a" and "RuntimeError: out of memory" in rows[0].note
    table = bench.format_table(rows + [bench.BenchRow("x", "y", "1.0 ms")])
    assert table.splitlines()[1].startswith("---") and "n/a" in table


def test_rows_are_printed_as_they_are_measured(monkeypatch, capsys):
    printed_meanwhile = []

    def two_rows(args, device):
        yield bench.BenchRow("first row", "a", "1.0 ms")
        printed_meanwhile.append(capsys.readouterr().out)  # what the user sees while the second row is measured
        yield bench.BenchRow("second row", "b", "2.0 ms")

    monkeypatch.setattr(bench, "correlation_rows", two_rows)
    for name in ("inference_rows", "training_rows", "synthetic_rows"):
        monkeypatch.setattr(bench, name, lambda args, device: [])
    monkeypatch.setattr(bench, "choose_model", lambda args: bench.BenchModel(None, "fake model"))
    assert main(["bench", "--device", "cpu"]) == 0
    rest = capsys.readouterr().out
    assert "item" in printed_meanwhile[0] and "first row" in printed_meanwhile[0]
    assert "second row" not in printed_meanwhile[0] and "second row" in rest and "peak memory (process)" in rest


def test_bad_arguments_exit_2(capsys):
    assert main(["bench", "--repeats", "0"]) == 2
    assert "--repeats" in capsys.readouterr().err


def test_model_choice(monkeypatch, tmp_path):
    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import config_from_dict

    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path))
    args = argparse.Namespace(checkpoint=None, config=None, quick=False)
    assert "default config" in bench.choose_model(args).description
    assert bench.choose_model(argparse.Namespace(checkpoint=None, config=None, quick=True)).config.data.sat_size == 128
    config = config_from_dict({"data": {"sat_size": 96}})
    save_checkpoint(tmp_path / DEFAULT_LOCALIZER, config, {"model": {"w": torch.zeros(1)}},
                    {"task": "weak", "role": "weak"})
    chosen = bench.choose_model(args)
    assert chosen.checkpoint == tmp_path / DEFAULT_LOCALIZER and chosen.config.data.sat_size == 96


def test_orientation_checkpoint_is_refused_with_exit_2(capsys, tmp_path):
    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import config_from_dict

    save_checkpoint(tmp_path / "orientation", config_from_dict({"train": {"task": "orientation"}}),
                    {"model": {"w": torch.zeros(1)}}, {"task": "orientation", "role": "orientation"})
    assert main(["bench", "--quick", "--checkpoint", str(tmp_path / "orientation")]) == 2
    captured = capsys.readouterr()
    assert "orientation-estimator checkpoint" in captured.err and "item" not in captured.out


def test_conflicting_model_options_exit_2(capsys):
    assert main(["bench", "--checkpoint", "x", "--config", "y.yaml"]) == 2
    assert "not both" in capsys.readouterr().err
