"""User-facing errors. Their message says what is wrong, which file, and what is expected.

The CLI prints them without a traceback and exits with status 2; the app shows them as ``gr.Error``.
"""

from __future__ import annotations


class GeoDistillError(Exception):
    """Base class of errors caused by the user's input, files or environment."""


class DataError(GeoDistillError):
    """A dataset, image or label that cannot be used."""


class CheckpointError(GeoDistillError):
    """A checkpoint that is missing, damaged or of another architecture or version."""


class WeightsUnavailableError(GeoDistillError):
    """Pretrained weights that are neither on disk nor downloadable."""
