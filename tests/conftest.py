"""Shared fixtures: CPU-only, offline, deterministic."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_addoption(parser):
    parser.addoption("--bench", action="store_true", default=False,
                     help="also run the tests marked bench (wall-clock limits; meaningful on an idle machine only)")


def pytest_configure(config):
    config.addinivalue_line("markers", "bench: asserts a wall-clock limit; runs only with --bench (speed is "
                                       "measured by `python -m geodistill bench`, never asserted in the default suite)")


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = None if torch.cuda.is_available() else pytest.mark.skip(reason="needs a CUDA device")
    skip_bench = None if config.getoption("--bench") else pytest.mark.skip(reason="a speed check: run with --bench")
    for item in items:
        if skip_gpu is not None and "gpu" in item.keywords:
            item.add_marker(skip_gpu)
        if skip_bench is not None and "bench" in item.keywords:
            item.add_marker(skip_bench)


@pytest.fixture(autouse=True)
def _isolated_roots(tmp_path_factory, monkeypatch):
    """Runs and data written by tests go to a temporary folder, never into the repository."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("GEODISTILL_RUNS", str(base / "runs"))
    monkeypatch.setenv("GEODISTILL_DATA", str(base / "data"))


@pytest.fixture
def tiny_checkpoint():
    """``tiny_checkpoint(folder, task="weak"|"distill"|"supervised")`` saves a random-weight checkpoint of the tiny
    recipe (``supervised``: the CCVPE base of tiny_ccvpe.yaml; ``ccvpe=True`` with ``distill``: GeoDistill on it)."""
    from geodistill import settings
    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import load_config
    from geodistill.models.factory import build_localizer

    def save(folder, task: str = "weak", ccvpe: bool = False):
        ccvpe = ccvpe or task == "supervised"
        recipe = "tiny_ccvpe.yaml" if ccvpe else "tiny.yaml"
        config = load_config(settings.REPO_ROOT / "training" / "configs" / recipe)
        config.train.task = task
        weights = build_localizer(config.model).state_dict()
        networks = {"teacher": weights, "student": weights} if task == "distill" else {"model": weights}
        role = {"distill": "student", "supervised": "supervised"}.get(task, "weak")
        return save_checkpoint(folder, config, networks, {"task": task, "role": role, "deploy": "student"})

    return save
