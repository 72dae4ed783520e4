"""Which server folders a browser user may name, and how server paths are shown to them.

The app's path fields (a dataset root, a checkpoint, a training data root) read or write folders on the server.
A :class:`PathPolicy` confines them to the data, runs and checkpoints roots of :mod:`geodistill.settings`, the
bundled samples, and folders the person who started the server allowed (``python app.py --allow-path DIR``).
Paths are shown relative to those roots (``data/synthetic/tiny``, ``runs/exp1``, ``samples``), so a page
never reveals where the server keeps its files; an allowed folder, named by the server's owner, is shown as given.

Typed paths resolve like this: an absolute path stays; a relative one that starts with a root's label
(``runs/exp1``) is taken under that root; any other relative one under the field's default root (the data root
for datasets, as on the command line). ``..`` and symbolic links are resolved before the check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable

from geodistill import settings
from geodistill.data.samples import samples_root
from geodistill.errors import GeoDistillError

ALLOW_FLAG = "--allow-path"


class PathNotAllowedError(GeoDistillError):
    """A path outside the folders the app may use."""


def _labelled_roots() -> list[tuple[str, Path]]:
    """The built-in roots with the label each is shown as (read on every call: the settings follow the environment)."""
    return [("data", settings.data_dir()), ("runs", settings.runs_dir()), ("checkpoints", settings.checkpoints_dir()),
            ("samples", samples_root())]


class PathPolicy:
    """The folders a UI may read and write, plus those allowed with :meth:`allow`."""

    def __init__(self, allowed: Iterable[str | Path] = ()) -> None:
        self.allowed: list[Path] = []
        for folder in allowed:
            self.allow(folder)

    def allow(self, folder: str | Path) -> Path:
        """Also allow ``folder`` (and everything under it); it must be an existing folder."""
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise PathNotAllowedError(f"{ALLOW_FLAG} {folder}: not an existing folder")
        if path not in self.allowed:
            self.allowed.append(path)
        return path

    def roots(self) -> list[tuple[str, Path]]:
        """(label, folder) of every folder paths may lie in; an allowed folder's label is its own path."""
        return [(label, root.resolve()) for label, root in _labelled_roots()] + [(str(p), p) for p in self.allowed]

    def describe(self) -> str:
        """The allowed folders in words, for error messages."""
        extra = f", and {', '.join(str(p) for p in self.allowed)}" if self.allowed else ""
        return (f"the data, runs and checkpoints folders and the bundled samples{extra} "
                f"(the server may allow more with `python app.py {ALLOW_FLAG} DIR`)")

    def resolve(self, text: str | Path, what: str, default_root: Callable[[], Path] = settings.data_dir) -> Path:
        """The server path a user typed for ``what`` (e.g. "dataset root"), checked against the policy.

        Raises:
            PathNotAllowedError: empty, or outside every allowed folder (the message names the allowed ones).
        """
        typed = str(text).strip()
        if not typed:
            raise PathNotAllowedError(f"enter the {what}")
        path = Path(typed).expanduser()
        if not path.is_absolute():
            first, *rest = path.parts
            labelled = dict(_labelled_roots())
            path = labelled[first].joinpath(*rest) if first in labelled else default_root() / path
        return self.check(path, what, shown=typed)

    def check(self, path: str | Path, what: str, shown: str | None = None) -> Path:
        """``path`` resolved, if it lies in an allowed folder; else :class:`PathNotAllowedError`."""
        resolved = Path(path).expanduser().resolve()
        if not any(resolved.is_relative_to(root) for _, root in self.roots()):
            raise PathNotAllowedError(f"the {what} {shown if shown is not None else str(path)!r} is outside the "
                                      f"folders this app may use: {self.describe()}")
        return resolved

    def display(self, path: str | Path) -> str:
        """``path`` as the page shows it: relative to the most specific root holding it, else its name only."""
        resolved = Path(path).expanduser().resolve()
        holding = [(label, root) for label, root in self.roots() if resolved.is_relative_to(root)]
        if not holding:
            return resolved.name
        label, root = max(holding, key=lambda item: len(item[1].parts))
        relative = resolved.relative_to(root)
        return label if relative == Path(".") else f"{label}/{relative.as_posix()}"

    def redact(self, message: str) -> str:
        """``message`` with every server path under a root shown as :meth:`display` shows it, and any other path
        under the repository shown relative to it."""
        replacements = [(root, label) for label, root in self.roots()]
        replacements.append((settings.REPO_ROOT.resolve(), "."))
        for root, label in sorted(replacements, key=lambda item: -len(str(item[0]))):
            message = re.sub(re.escape(str(root)) + r"(?![\w.-])", label, message)
        return message
