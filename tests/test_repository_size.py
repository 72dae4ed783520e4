"""The tracked files stay small enough for a GPU machine's 64 MiB working-tree limit (issue 12: under 50 MiB)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 50 * 2**20


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listing.decode().split("\0") if name]


def test_tracked_files_stay_under_50_mib():
    files = [path for path in tracked_files() if path.is_file()]
    sizes = sorted(((path.stat().st_size, path.relative_to(ROOT)) for path in files), reverse=True)
    total = sum(size for size, _ in sizes)
    largest = ", ".join(f"{name} {size / 2**20:.1f} MiB" for size, name in sizes[:5])
    assert len(files) > 100
    assert total < LIMIT_BYTES, f"tracked files hold {total / 2**20:.1f} MiB (limit 50 MiB); largest: {largest}"
