"""geodistill.pathpolicy: which server folders a UI may name, and how server paths are shown."""

from __future__ import annotations

import pytest

from geodistill import settings
from geodistill.pathpolicy import PathNotAllowedError, PathPolicy


@pytest.fixture
def roots(tmp_path, monkeypatch):
    for name in ("data", "runs", "checkpoints"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("GEODISTILL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GEODISTILL_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("GEODISTILL_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return tmp_path


def test_relative_names_resolve_under_the_default_root_or_the_labelled_one(roots):
    policy = PathPolicy()
    assert policy.resolve("synthetic/tiny", "dataset root") == roots / "data" / "synthetic" / "tiny"
    assert policy.resolve("runs/exp1", "checkpoint") == roots / "runs" / "exp1"
    assert policy.resolve("exp1", "checkpoint", default_root=settings.runs_dir) == roots / "runs" / "exp1"
    assert policy.resolve("checkpoints/weak_baseline", "checkpoint") == roots / "checkpoints" / "weak_baseline"
    assert policy.resolve("samples", "dataset root") == (settings.assets_dir() / "samples").resolve()
    assert policy.resolve(str(roots / "runs" / "exp1"), "checkpoint") == roots / "runs" / "exp1"


@pytest.mark.parametrize("typed", ["/etc", "/root", "../../..", "synthetic/../../..", "/"])
def test_paths_outside_every_root_are_refused_with_the_way_to_allow_them(roots, typed):
    with pytest.raises(PathNotAllowedError, match=r"dataset root .* is outside the folders this app may use: the "
                                                  r"data, runs and checkpoints folders .*--allow-path DIR"):
        PathPolicy().resolve(typed, "dataset root")


def test_a_symbolic_link_out_of_a_root_is_refused(roots):
    (roots / "data" / "escape").symlink_to("/etc")
    with pytest.raises(PathNotAllowedError):
        PathPolicy().resolve("escape", "dataset root")


def test_allowed_folders(roots, tmp_path):
    mine = tmp_path / "elsewhere" / "vigor"
    mine.mkdir(parents=True)
    with pytest.raises(PathNotAllowedError):
        PathPolicy().resolve(str(mine), "dataset root")
    policy = PathPolicy([mine])
    assert policy.resolve(str(mine / "Chicago"), "dataset root") == mine / "Chicago"
    assert str(mine) in policy.describe()
    with pytest.raises(PathNotAllowedError, match="--allow-path .*nowhere: not an existing folder"):
        policy.allow(tmp_path / "nowhere")
    with pytest.raises(PathNotAllowedError, match="enter the dataset root"):
        policy.resolve("  ", "dataset root")


def test_paths_are_shown_relative_to_their_root(roots, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    policy = PathPolicy([mine])
    assert policy.display(roots / "runs" / "exp1") == "runs/exp1"
    assert policy.display(roots / "data") == "data"
    assert policy.display(settings.assets_dir() / "samples" / "Chicago") == "samples/Chicago"
    assert policy.display(mine / "x") == f"{mine}/x"  # named by the server's owner
    assert policy.display("/srv/secret/model") == "model"  # outside every root: its name only
    message = (f"{roots / 'runs' / 'exp1'}/train.log and {roots / 'data'}/synthetic, "
               f"{roots / 'database'} and {settings.REPO_ROOT / 'training' / 'configs'}")
    assert policy.redact(message) == (f"runs/exp1/train.log and data/synthetic, {roots / 'database'} and "
                                      "./training/configs")
