"""The import direction of docs/architecture.md, enforced by parsing every module with ``ast``.

Layers: L0 settings, keys, config, errors, geometry, shipped; L1 calibration, data, models, losses, metrics, viz,
pathpolicy; L2 distill; L3 checkpoint; L4 inference, evaluation, engine, studio, area; L5 cli, commands. A layer
imports lower layers only, with these refinements: L0 modules import nothing of ours (geometry only itself); L1
peers may import each other except models -> data and viz -> models; in L4, evaluation may use inference, engine may
use both, area (own-area refinement) may use inference, and studio may use inference, evaluation and area; nothing
in the package imports the app (``app``, ``app_handlers``, ``studio_ui``) or ``training``; Gradio, folium and
matplotlib are imported only by ``viz``. Inside a package the modules import each other without cycles (counting
function-local imports too: a cycle hidden inside a function is still a cycle); shared constants go to a leaf
module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from geodistill import keys

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "geodistill"

LAYERS: dict[str, int] = {
    "settings": 0, "keys": 0, "config": 0, "errors": 0, "geometry": 0, "shipped": 0,
    "calibration": 1, "data": 1, "models": 1, "losses": 1, "metrics": 1, "viz": 1, "pathpolicy": 1,
    "distill": 2,
    "checkpoint": 3,
    "inference": 4, "evaluation": 4, "engine": 4, "studio": 4, "area": 4,
    "cli": 5, "commands": 5, "__main__": 5, "__init__": 5,
}
L4_PEERS_ALLOWED = {"evaluation": {"inference"}, "engine": {"inference", "evaluation"},
                    "studio": {"inference", "evaluation", "area"}, "area": {"inference"}}
FORBIDDEN_L1_PAIRS = {("models", "data"), ("viz", "models")}
UI_LIBRARIES = {"gradio", "folium", "matplotlib"}
OUTSIDE_PACKAGES = {"app", "app_handlers", "studio_ui", "training"}
ROOT = "__init__"  # the package itself (``import geodistill``, ``from geodistill import __version__``)


def module_name_of(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(module_name: str, source: str, is_package: bool = False) -> list[tuple[str, int]]:
    """Absolute names of everything a module imports (anywhere in its body), with line numbers.

    ``from a import b`` yields ``a.b`` (b may be a submodule or an attribute; both resolve to the
    same component). Relative imports are resolved against ``module_name``.
    """
    found: list[tuple[str, int]] = []
    package_parts = module_name.split(".") if is_package else module_name.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package_parts[: len(package_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.extend((f"{base}.{alias.name}" if base else alias.name, node.lineno) for alias in node.names)
    return found


def component_of(module_name: str) -> str:
    """``geodistill.models.localizer`` -> ``models``; ``geodistill`` and its attributes -> ``__init__``."""
    parts = module_name.split(".")
    if len(parts) == 1 or parts[1] not in LAYERS:
        return ROOT
    return parts[1]


def rule_violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` (a component) may not import ``imported`` (a component), or None."""
    if importer == imported:
        return None
    if importer == "geometry":
        return "geometry imports nothing of ours but itself"
    if LAYERS[importer] == 0:
        return f"{importer} is L0 and imports nothing of ours"
    if imported == ROOT:
        return None  # the lightweight package root (version, logger) is available to every layer above L0
    if (importer, imported) in FORBIDDEN_L1_PAIRS:
        return f"{importer} never imports {imported}"
    importer_layer, imported_layer = LAYERS[importer], LAYERS[imported]
    if importer_layer == 5 or imported_layer < importer_layer:
        return None
    if importer_layer == 1 and imported_layer == 1:
        return None
    if importer_layer == 4 and imported in L4_PEERS_ALLOWED.get(importer, set()):
        return None
    return f"{importer} (L{importer_layer}) may not import {imported} (L{imported_layer})"


def import_violations(module_name: str, source: str, is_package: bool = False) -> list[str]:
    """Every import of ``module_name`` that breaks the layer table, as readable messages."""
    problems = []
    importer = component_of(module_name)
    for imported_name, line in imported_modules(module_name, source, is_package):
        top = imported_name.split(".")[0]
        where = f"{module_name}:{line} imports {imported_name}"
        if top in OUTSIDE_PACKAGES:
            problems.append(f"{where}: nothing in {PACKAGE} imports the app (app.py, app_handlers.py, "
                            "studio_ui/) or training/")
        elif top in UI_LIBRARIES and importer != "viz":
            problems.append(f"{where}: {top} is imported only in {PACKAGE}.viz")
        elif top == PACKAGE:
            reason = rule_violation(importer, component_of(imported_name))
            if reason:
                problems.append(f"{where}: {reason}")
    return problems


def package_modules() -> list[Path]:
    return sorted((REPO / PACKAGE).rglob("*.py"))


def test_every_package_module_is_known_to_the_layer_table():
    top_level = {p.relative_to(REPO / PACKAGE).parts[0].removesuffix(".py") for p in package_modules()}
    unknown = sorted(top_level - set(LAYERS))
    assert not unknown, f"add these modules to the layer table of docs/architecture.md and this test: {unknown}"


def test_package_respects_the_layer_table():
    problems = []
    for path in package_modules():
        problems += import_violations(module_name_of(path), path.read_text(encoding="utf-8"),
                                      is_package=path.name == "__init__.py")
    assert not problems, "import-layer violations:\n" + "\n".join(problems)


def test_app_parses_and_is_imported_by_nobody():
    for app in [REPO / "app.py", REPO / "app_handlers.py", *sorted((REPO / "studio_ui").glob("*.py"))]:
        if app.exists():
            ast.parse(app.read_text(encoding="utf-8"))  # a syntax error fails here, with its line
    for path in package_modules():
        imports = imported_modules(module_name_of(path), path.read_text(encoding="utf-8"))
        names = {name.split(".")[0] for name, _ in imports}
        assert not names & OUTSIDE_PACKAGES, f"{path.relative_to(REPO)} imports {names & OUTSIDE_PACKAGES}"


@pytest.mark.parametrize(("module_name", "source", "expected"), [
    ("geodistill.geometry.bev", "from geodistill.keys import PANO", "geometry imports nothing"),
    ("geodistill.geometry.bev", "from .. import config", "geometry imports nothing"),
    ("geodistill.geometry.bev", "import geodistill", "geometry imports nothing"),
    ("geodistill.config", "from geodistill.errors import DataError", "L0"),
    ("geodistill.models.localizer", "def f():\n    from geodistill.data import vigor", "never imports data"),
    ("geodistill.viz.bev", "import geodistill.models.localizer", "never imports models"),
    ("geodistill.data.vigor", "from geodistill.distill import ema", "may not import distill"),
    ("geodistill.distill.ema", "from ..checkpoint import save_checkpoint", "may not import checkpoint"),
    ("geodistill.checkpoint", "from geodistill.inference import Localizer", "may not import inference"),
    ("geodistill.inference", "from geodistill.engine.loop import train", "may not import engine"),
    ("geodistill.inference", "from geodistill.evaluation import evaluate", "may not import evaluation"),
    ("geodistill.engine.loop", "from geodistill.cli import main", "may not import cli"),
    ("geodistill.commands.train", "import training.scripts", "or training/"),
    ("geodistill.engine.jobs", "from app import build_demo", "app.py"),
    ("geodistill.studio", "import app_handlers", "app_handlers.py"),
    ("geodistill.studio", "from studio_ui.explore import build_explore_tab", "studio_ui/"),
    ("geodistill.studio", "from geodistill.engine.jobs import JobManager", "may not import engine"),
    ("geodistill.inference", "from geodistill.studio import MODELS", "may not import studio"),
    ("geodistill.area.refine", "from geodistill.studio import DEFAULT_LOCALIZER", "may not import studio"),
    ("geodistill.area.refine", "from geodistill.engine.jobs import JobManager", "may not import engine"),
    ("geodistill.inference", "from geodistill.area.refine import refine_area", "may not import area"),
    ("geodistill.metrics", "import matplotlib.pyplot as plt", "only in geodistill.viz"),
    ("geodistill.commands.predict", "import gradio", "only in geodistill.viz"),
    ("geodistill.inference", "from folium import Map", "only in geodistill.viz"),
])
def test_checker_catches_violations(module_name, source, expected):
    problems = import_violations(module_name, source)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(("module_name", "source"), [
    ("geodistill.geometry.bev", "from geodistill.geometry.grid import sample_panorama\nfrom . import fov"),
    ("geodistill.models.localizer", "from geodistill.geometry import bev\nfrom geodistill import keys, metrics"),
    ("geodistill.viz.bev", "import matplotlib\nfrom geodistill.data import samples\nimport gradio"),
    ("geodistill.distill.ema", "from geodistill.models.localizer import LocalizerNet\nimport torch"),
    ("geodistill.checkpoint", "from geodistill import __version__\nfrom geodistill.distill import ema"),
    ("geodistill.engine.loop", "from geodistill.evaluation import evaluate\nfrom geodistill import inference"),
    ("geodistill.evaluation", "from geodistill.inference import Localizer"),
    ("geodistill.studio", "from geodistill.inference import Localizer\nfrom geodistill.checkpoint import resolve_checkpoint"),
    ("geodistill.commands.predict", "from geodistill.studio import DEFAULT_LOCALIZER"),
    ("geodistill.area.refine", "from geodistill.inference import Localizer\nfrom geodistill.data import images"),
    ("geodistill.studio", "from geodistill.area.refine import refine_area"),
    ("geodistill.cli", "from geodistill.commands import train\nfrom geodistill.engine import loop"),
])
def test_checker_allows_the_permitted_imports(module_name, source):
    assert import_violations(module_name, source) == []


def test_relative_imports_resolve_from_packages_and_modules():
    assert imported_modules("geodistill.models", "from .localizer import X", is_package=True) == [
        ("geodistill.models.localizer.X", 1)]
    assert imported_modules("geodistill.models.localizer", "from ..data import vigor") == [
        ("geodistill.data.vigor", 1)]
    assert import_violations("geodistill.models", "from ..data import vigor", is_package=True)


def sibling_import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the modules of its own package it imports (anywhere in its body).

    Args:
        sources: module name -> (source text, whether it is a package ``__init__``). A package's ``__init__``
            re-exports its modules and is left out: only module-to-module edges can form a cycle.
    """
    graph: dict[str, set[str]] = {name: set() for name, (_, is_package) in sources.items() if not is_package}
    for name in graph:
        source, _ = sources[name]
        parent = name.rsplit(".", 1)[0]
        for imported, _line in imported_modules(name, source):
            target = imported if imported in graph else imported.rsplit(".", 1)[0]
            if target in graph and target != name and target.rsplit(".", 1)[0] == parent:
                graph[name].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_inside_a_package():
    sources = {module_name_of(path): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
               for path in package_modules()}
    cycles = import_cycles(sibling_import_graph(sources))
    assert not cycles, "import cycles (move what they share to a leaf module):\n" + "\n".join(map(str, cycles))


def test_cycle_checker_sees_cycles_hidden_in_functions():
    cyclic = {
        "geodistill.data.synthetic.world": ("from geodistill.data.synthetic.layout import make_lots", False),
        "geodistill.data.synthetic.layout": ("def f():\n    from geodistill.data.synthetic.world import GROUND", False),
        "geodistill.data.synthetic.kinds": ("", False),
        "geodistill.data.synthetic": ("from geodistill.data.synthetic.world import World", True),
    }
    assert import_cycles(sibling_import_graph(cyclic)) == [
        ["geodistill.data.synthetic.layout", "geodistill.data.synthetic.world"]]
    leaf = dict(cyclic, **{"geodistill.data.synthetic.layout": ("from .kinds import GROUND", False)})
    assert import_cycles(sibling_import_graph(leaf)) == []


def key_names_defined_outside_keys() -> list[str]:
    """Module-level string constants elsewhere in the package whose value is a key name of ``keys.py``."""
    key_values = {value for name, value in vars(keys).items() if name.isupper() and isinstance(value, str)}
    found = []
    for path in package_modules():
        if path.name == "keys.py" and path.parent.name == PACKAGE:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and node.value.value in key_values and all(isinstance(t, ast.Name) for t in node.targets)):
                names = ", ".join(t.id for t in node.targets)
                found.append(f"{module_name_of(path)}:{node.lineno} {names} = {node.value.value!r}")
    return found


def test_key_names_live_in_keys_py():
    """keys.py is the canonical list of key names: no other module defines its own constant for one."""
    assert key_names_defined_outside_keys() == []


LAZY_IMPORTS_ALLOWED = ("geodistill", "geodistill.cli", "geodistill.commands")  # the CLI's lazy dispatch to commands


def function_local_imports(module_name: str, source: str) -> list[str]:
    """Imports of our own modules inside a function body (``module:line imported``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    names = imported_modules(module_name, ast.unparse(inner))
                    found += [f"{module_name}:{inner.lineno} {name}"
                              for name, _ in names if name.split(".")[0] == PACKAGE]
    return found


def test_our_modules_are_imported_at_the_top():
    """No function-local imports of our own modules, except the package root's lazy attributes and the CLI's lazy
    dispatch (cli.py and the command modules, which keep ``python -m geodistill --help`` free of torch)."""
    problems = []
    for path in package_modules():
        name = module_name_of(path)
        if name in LAZY_IMPORTS_ALLOWED or name.startswith("geodistill.commands."):
            continue
        problems += function_local_imports(name, path.read_text(encoding="utf-8"))
    assert not problems, "move these imports to the top of their module:\n" + "\n".join(problems)


def test_local_import_checker():
    source = "import torch\n\ndef f():\n    from geodistill.geometry import bev\n    import numpy\n"
    assert function_local_imports("geodistill.models.localizer", source) == [
        "geodistill.models.localizer:4 geodistill.geometry.bev"]
