"""Config layering (defaults <- YAML <- overrides), type checks, booleans, unknown keys, shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodistill.config import (
    ConfigError,
    PRESETS,
    ExperimentConfig,
    config_diff,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_overrides,
    save_config,
    without_pretrained,
)

RECIPES = Path(__file__).resolve().parent.parent / "training" / "configs"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_then_yaml_then_overrides(tmp_path):
    recipe = write(tmp_path / "r.yaml", "optim:\n  lr: 3.0e-4\ntrain:\n  epochs: 4\n")
    config = load_config(recipe, ["train.epochs=7", "data.area=same"])
    assert config.optim.lr == pytest.approx(3e-4)      # from the YAML
    assert config.train.epochs == 7                     # override beats YAML
    assert config.data.area == "same"
    assert config.optim.weight_decay == ExperimentConfig().optim.weight_decay  # untouched default
    assert config.name == "r"                           # recipe stem when the recipe has no name


def test_base_chain_and_cycle(tmp_path):
    write(tmp_path / "a.yaml", "train:\n  epochs: 3\n  batch_size: 2\n")
    child = write(tmp_path / "b.yaml", "base: a.yaml\ntrain:\n  epochs: 5\n")
    config = load_config(child)
    assert (config.train.epochs, config.train.batch_size) == (5, 2)
    write(tmp_path / "c.yaml", "base: d.yaml\n")
    write(tmp_path / "d.yaml", "base: c.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("text,expected", [("true", True), ("yes", True), ("1", True), ("On", True),
                                           ("false", False), ("no", False), ("0", False), ("off", False)])
def test_boolean_overrides(text, expected):
    assert load_config(None, [f"train.tensorboard={text}"]).train.tensorboard is expected


@pytest.mark.parametrize("override,message", [
    ("train.tensorboard=maybe", "not a boolean"),
    ("train.epochs=2.5", "not an integer"),
    ("optim.lr=fast", "not a number"),
    ("data.area=moon", "not one of"),
    ("model.levels=3", "expected a list"),
    ("train.epoch=3", "unknown key 'train.epoch'"),
    ("nonsense=1", "unknown key 'nonsense'"),
    ("train.epochs", "key=value"),
    ("train.epochs=0", r"train.epochs: 0 is out of range \(must be >= 1\)"),
    ("train.epochs=-1", "train.epochs: -1 is out of range"),
    ("train.batch_size=0", "train.batch_size: 0 is out of range"),
    ("optim.lr=-1", r"optim.lr: -1.0 is out of range \(must be > 0\)"),
    ("optim.lr=0", "optim.lr: 0.0 is out of range"),
    ("optim.lr=nan", "optim.lr: nan is out of range"),
    ("data.val_fraction=1.5", r"data.val_fraction: 1.5 is out of range \(must be >= 0 and < 1\)"),
    ("data.pano_height=0", "data.pano_height: 0 is out of range"),
    ("model.template_crop=1.5", r"model.template_crop: 1.5 is out of range \(must be > 0 and <= 1\)"),
    ("orientation.bin_deg=0", "orientation.bin_deg: 0.0 is out of range"),
    ("distill.fov.min_deg=300", r"distill.fov.min_deg \(300\) is larger than distill.fov.max_deg \(240\)"),
])
def test_bad_overrides_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_unknown_key_lists_valid_ones(tmp_path):
    recipe = write(tmp_path / "r.yaml", "optim:\n  learning_rate: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(recipe)
    assert "optim.learning_rate" in str(info.value) and "lr" in str(info.value)


def test_override_values_are_yaml_scalars():
    nested = parse_overrides(["model.levels=[0, 1, 2]", "optim.lr=1e-3", "name=run one"])
    assert nested == {"model": {"levels": [0, 1, 2]}, "optim": {"lr": "1e-3"}, "name": "run one"}
    assert load_config(None, ["optim.lr=3e-4"]).optim.lr == pytest.approx(3e-4)  # YAML 1.1 reads it as a string
    config = load_config(None, ["model.levels=[0,1,2]", "train.epochs=3.0"])
    assert config.model.levels == [0, 1, 2] and config.train.epochs == 3


def test_save_load_round_trip_and_diff(tmp_path):
    config = load_config(None, ["optim.lr=2e-4", "model.levels=[1,2]", "name=x"])
    for suffix in ("yaml", "json"):
        path = tmp_path / f"c.{suffix}"
        save_config(config, path)
        if suffix == "yaml":
            again = load_config(path)
            assert config_to_dict(again) == config_to_dict(config)
    changed = load_config(None, ["optim.lr=3e-4", "model.levels=[1,2]", "name=x"])
    diff = config_diff(config_to_dict(config), config_to_dict(changed))
    assert diff == ["optim.lr: 0.0002 -> 0.0003"]


def test_bad_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "bad.yaml", "train: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path / "list.yaml", "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_shipped_recipes_load(recipe):
    config = load_config(RECIPES / recipe)
    assert config.name == Path(recipe).stem
    assert config_from_dict(config_to_dict(config)) == config


def test_recipe_contents():
    vigor = load_config(RECIPES / "vigor_weak.yaml")
    assert (vigor.train.batch_size, vigor.train.epochs, vigor.optim.lr, vigor.optim.weight_decay) == (8, 10, 1e-4, 1e-5)
    assert vigor.optim.clip_grad_norm == 1.0 and vigor.model.backbone == "dinov2_vitb14"
    faithful = load_config(RECIPES / "faithful_weak.yaml")
    assert faithful.preset == "faithful" and faithful.model.backbone == "dinov2_vitb14"
    assert (faithful.model.normalization, faithful.model.bev_grid, faithful.distill.fov.sampler) == ("symmetric", "faithful", "faithful")
    tiny = load_config(RECIPES / "tiny.yaml")
    assert tiny.data.synthetic.generate and tiny.model.allow_random_init and tiny.data.sat_size <= 128


def test_without_pretrained_is_a_modified_copy():
    config = load_config(None, ["model.pretrained=true", "orientation.pretrained=true", "optim.lr=3e-4"])
    built = without_pretrained(config)
    assert built is not config and built.model is not config.model
    assert (built.model.pretrained, built.model.allow_random_init) == (False, True)
    assert (built.orientation.pretrained, built.orientation.allow_random_init) == (False, True)
    assert (config.model.pretrained, config.model.allow_random_init, config.orientation.pretrained) == (True, False, True)
    assert config_diff(config_to_dict(config), config_to_dict(built)) == [
        "model.allow_random_init: False -> True", "model.pretrained: True -> False",
        "orientation.allow_random_init: False -> True", "orientation.pretrained: True -> False"]


def _flags(config, preset_layer: dict, prefix: str = "") -> dict:
    """The values of the keys a preset layer names, read from ``config``."""
    values = {}
    for key, value in preset_layer.items():
        if isinstance(value, dict):
            values.update(_flags(getattr(config, key), value, f"{prefix}{key}."))
        else:
            values[f"{prefix}{key}"] = getattr(config, key)
    return values


def _flat(layer: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in layer.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def test_the_faithful_preset_sets_the_reference_flags():
    faithful = _flat(PRESETS["faithful"])
    assert faithful["model.pano_input"] == "pad" and faithful["model.normalization"] == "symmetric"
    assert _flags(load_config(None, ["preset=faithful"]), PRESETS["faithful"]) == faithful
    assert _flags(load_config(RECIPES / "faithful_weak.yaml"), PRESETS["faithful"]) == faithful
    assert _flags(load_config(RECIPES / "faithful_distill.yaml"), PRESETS["faithful"]) == faithful
    assert _flags(ExperimentConfig(), PRESETS["clean"]) == _flat(PRESETS["clean"])  # clean is the default
    assert set(_flat(PRESETS["clean"])) >= set(faithful) - {"distill.ema_mode"}  # clean undoes every flag it changes


def test_keys_beside_and_after_a_preset_win():
    config = load_config(None, ["preset=faithful", "model.wrap_seam=true"])
    assert config.model.wrap_seam is True and config.model.pixel_convention == "index"
    back = load_config(RECIPES / "faithful_weak.yaml", ["preset=clean"])
    assert _flags(back, PRESETS["clean"]) == _flat(PRESETS["clean"]) and back.model.backbone == "dinov2_vitb14"
    assert config_from_dict(config_to_dict(config)) == config  # a saved config reloads as it was
    with pytest.raises(ConfigError, match="preset"):
        load_config(None, ["preset=reference"])
