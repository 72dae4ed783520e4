"""The docstring examples of the geometry modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["angles", "bev", "fov", "frames", "grid", "panorama", "shapes"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"geodistill.geometry.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
