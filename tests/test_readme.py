"""The README's examples work as written: the Python snippet from another folder, the `predict` example."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from geodistill.cli import main
from geodistill.shipped import localizer_names

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
SAMPLE_PANO = REPO / "assets/samples/SanFrancisco/panorama/syn-SF-s7-w000-p02,37.68858729,-122.42010483,.jpg"
SAMPLE_TILE = REPO / "assets/samples/SanFrancisco/satellite/satellite_37.6884562716_-122.4200000000.png"
NUMBER = re.compile(r"[-+]?\d+\.\d+")
needs_checkpoints = pytest.mark.skipif(not any((REPO / "checkpoints").glob("*/config.json")),
                                       reason="no shipped checkpoints in this checkout")


def installed_by_setup() -> bool:
    """Running in the checkout's own `.venv` made by setup.sh (as in CI), where the package must be installed.

    A `.venv` that links to a shared environment (development worktrees) has no package installed: the snippet then
    finds the checkout through PYTHONPATH.
    """
    venv = REPO / ".venv"
    return venv.is_dir() and not venv.is_symlink() and Path(sys.prefix).resolve() == venv.resolve()


def code_blocks(language: str) -> list[str]:
    """The README's fenced blocks of one language ("" for plain blocks)."""
    blocks, current, fence_language = [], None, ""
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, fence_language = [], line[3:].strip()
            else:
                if fence_language == language:
                    blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def five_lines() -> str:
    """The README's "Five lines of Python" snippet."""
    return next(block for block in code_blocks("python") if "default_localizer()" in block and "make_sample" in block)


def outside_environment() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GEODISTILL_CHECKPOINTS")}
    if not installed_by_setup():
        env["PYTHONPATH"] = str(REPO)
    return env


@needs_checkpoints
def test_python_snippet_runs_from_another_folder(tmp_path):
    snippet = five_lines()
    shutil.copy(SAMPLE_PANO, tmp_path / "pano.jpg")
    shutil.copy(SAMPLE_TILE, tmp_path / "tile.png")
    check = "\nassert prediction.latlon is not None and prediction.heading_deg is not None\n"
    result = subprocess.run([sys.executable, "-c", snippet + check], cwd=tmp_path, env=outside_environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    latlon = NUMBER.findall(result.stdout)[:2]
    assert [round(float(v)) for v in latlon] == [41, -74]  # the snippet's tile centre, 40.661455,-73.949898


def test_python_snippet_names_no_checkpoint_folder():
    """The snippet loads the default through geodistill.studio, so switching the default changes no README line."""
    snippet = five_lines()
    assert [name for name in localizer_names() if name in snippet] == []


def test_console_script_exists_where_setup_installed_the_package(tmp_path):
    if not installed_by_setup():
        pytest.skip("a shared .venv (not made by setup.sh for this checkout): the package is not installed in it")
    script = Path(sys.executable).parent / "geodistill"
    result = subprocess.run([str(script), "--version"], cwd=tmp_path, env=outside_environment(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("geodistill "), result.stderr


@needs_checkpoints
def test_predict_example_prints_what_the_readme_shows(capsys, monkeypatch):
    example = next(block for block in code_blocks("bash") if "predict \\" in block and "--gt-latlon" in block)
    argv = shlex.split(example.replace("\\\n", " "))
    assert argv[:3] == [".venv/bin/python", "-m", "geodistill"]
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("GEODISTILL_CHECKPOINTS", raising=False)
    assert main(argv[3:]) == 0
    printed = capsys.readouterr().out.strip()
    shown = next(block for block in code_blocks("") if block.startswith(SAMPLE_PANO.name)).strip()
    assert NUMBER.sub("#", printed) == NUMBER.sub("#", shown)
    for got, want in zip(NUMBER.findall(printed), NUMBER.findall(shown)):
        assert float(got) == pytest.approx(float(want), abs=0.11)
