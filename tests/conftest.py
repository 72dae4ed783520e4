"""Shared fixtures: CPU-only, offline, deterministic."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _isolated_roots(tmp_path_factory, monkeypatch):
    """Runs and data written by tests go to a temporary folder, never into the repository."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("GEODISTILL_RUNS", str(base / "runs"))
    monkeypatch.setenv("GEODISTILL_DATA", str(base / "data"))
