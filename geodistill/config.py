"""Typed experiment configuration: dataclass defaults, YAML recipes and ``key=value`` overrides.

Layering is *defaults <- YAML file(s) <- command-line overrides*. A YAML recipe holds only the keys it
changes and may name another recipe to start from with ``base: other.yaml`` (relative to its own
folder). ``preset: faithful`` (or ``clean``) in a layer first sets every flag of :data:`PRESETS` to the
reference's (or the clean) behaviour; the layer's other keys and later layers still override them.
Overrides use dotted keys (``optim.lr=3e-4``, ``data.area=same``); every value is checked against the
field's type, booleans are parsed explicitly (``true/false/yes/no/1/0``) and unknown keys are errors that
list the valid ones. :func:`load_config` also refuses numbers a run cannot use (:func:`check_ranges`:
``train.epochs=0``, ``optim.lr=-1`` ...).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml


class ConfigError(ValueError):
    """A recipe or override that does not fit the configuration schema."""


@dataclass
class SynthConfig:
    """How to generate a synthetic VIGOR-layout set when ``data.root`` does not exist yet."""

    generate: bool = False          # generate the set at data.root if it is missing
    panos_per_city: int = 16        # panoramas per city
    seed: int = 0                   # dataset seed
    pano_width: int = 512           # rendered panorama width in pixels (height = width / 2)
    tier: str = "hard"              # difficulty tier: easy | medium | hard
    workers: int = 1                # rendering processes


@dataclass
class DataConfig:
    """Which dataset to read and how to size its images."""

    root: str = "synthetic/default"  # VIGOR-layout root; relative paths resolve under GEODISTILL_DATA
    area: Literal["same", "cross"] = "cross"  # VIGOR setting: same-area or cross-area
    pano_height: int = 320          # panorama height fed to the model, pixels (width = 2 x height)
    sat_size: int = 512             # satellite side fed to the model, pixels
    include_semi_positives: bool = False  # also train on the three semi-positive tiles
    val_fraction: float = 0.2       # share of the training list held out for validation
    split_seed: int = 2023          # seed of the train/validation permutation
    num_workers: int = 0            # DataLoader worker processes
    skip_bad_images: bool = False   # skip unreadable images with a warning instead of failing
    heading_noise_deg: float = 0.0  # training-time heading turn, uniform in +-this (0 = north-aligned); templates follow it
    photometric_copies: int = 0     # training: show each pair as one of N fixed colour-jittered copies (0 = off)
    synthetic: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class FovConfig:
    """The limited field of view the student sees (and limited-FoV evaluation)."""

    min_deg: float = 180.0          # smallest visible FoV, degrees
    max_deg: float = 240.0          # largest visible FoV, degrees (inclusive)
    sampler: Literal["uniform", "faithful"] = "uniform"  # window centre: uniform on the circle | reference's non-wrapping draw
    mask_bev: bool = True           # also mask the projected BEV features and correlation weights


@dataclass
class CcvpeConfig:
    """The CCVPE base (``model.architecture: ccvpe``): orientation-aware descriptors, LMU and orientation decoders."""

    ground_stride: int = 16         # backbone tap (input pixels per column) that feeds the ground descriptor
    ground_wrap: float = 0.25       # circular padding each side of the panorama, fraction of its width
    ground_rows: int = 4            # rows the ground features are pooled to (height only, never across the width)
    ground_width: int = 64          # channels of the circular ground trunk
    azimuth_bins: int = 16          # N: azimuth bins of the ground descriptor (columns of each descriptor)
    shifts_per_bin: int = 2         # r: headings tried per bin; K = r * N rolls of the ground descriptor
    descriptor_channels: list[int] = field(default_factory=lambda: [16, 16, 8])  # channels per bin, coarse to fine
    match_strides: list[int] = field(default_factory=lambda: [32, 16, 8])  # aerial cells (input px) matched, coarse to fine
    decoder_width: int = 64         # LMU width at the coarsest stride (halves per finer stride, at least 8)
    output_stride: int = 1          # input pixels per cell of the location heatmap (1 = full resolution)
    match_temperature: float = 0.1  # softmax temperature of the matching scores (InfoNCE over cells, rolls)
    infonce_weight: float = 1.0     # weight of the descriptor InfoNCE terms (locations and rolls, every scale)
    orientation_weight: float = 1.0  # weight of the orientation loss ||v - (cos, sin)||^2 at the true location
    aerial_descriptor: Literal["conv", "polar"] = "conv"  # aerial (C, N) per cell: learnt 1x1 conv (paper) | rays towards each bin's azimuth
    match_residual: bool = False    # location logits = decoder head + mean over scales of the upsampled matching scores / T
    polar_radii_m: list[float] = field(default_factory=lambda: [0.0, 4.0, 8.0, 14.0, 22.0])  # polar: sample radii along each ray, metres


@dataclass
class ModelConfig:
    """The localizer: backbone, decoder, BEV projection and correlation."""

    architecture: Literal["g2sweakly", "ccvpe"] = "g2sweakly"  # BEV-template localizer | CCVPE (model.ccvpe)
    backbone: str = "efficientnet_lite0"  # efficientnet_lite0 | efficientnet_b0 | vgg16 | dinov2_vits14 | dinov2_vitb14 | tiny_cnn | tiny_vit
    pretrained: bool = True         # load pretrained weights (packaged, local file, or download when online)
    weights_path: str = ""          # local backbone weight file (takes precedence over download)
    allow_random_init: bool = False  # permit random backbone weights when no pretrained weights can be had
    freeze_backbone: bool = True    # train only the decoders
    decoder: Literal["auto", "unet", "dpt"] = "auto"  # auto: U-Net for CNNs, DPT for ViTs
    decoder_width: int = 128        # internal decoder width (channels)
    level_channels: list[int] = field(default_factory=lambda: [64, 32, 16])  # output channels per level, coarse to fine
    levels: list[int] = field(default_factory=lambda: [0, 2])  # levels used by the losses (0 = coarsest)
    normalization: Literal["imagenet", "symmetric"] = "imagenet"  # input normalisation: ImageNet stats | 2x-1
    bev_grid: Literal["matched", "faithful"] = "matched"  # BEV cell = satellite feature cell | reference 2^(3-l) px cells
    pixel_convention: Literal["center", "index"] = "center"  # continuous pixel centres | reference index convention
    wrap_seam: bool = True          # wrap BEV sampling across the panorama seam
    template_crop: float = 0.4      # template side as a fraction of the satellite feature side
    camera_height_m: float = 2.0    # camera height when a sample does not give one
    correlation: Literal["fft", "direct"] = "fft"  # masked NCC implementation
    subcell_refine: bool = False    # refine the argmax with a quadratic fit
    metric_conversion: Literal["exact", "faithful"] = "exact"  # score cell -> metres: P/A px and p0=(A-c)/2 | reference's S/A px and (A-c+1)/2
    fov_template: Literal["zero", "multiply"] = "zero"  # FoV cone on the template: zero outside (kernel G*m^2) | reference's multiply (G*m^3)
    score_temperature: float = 0.06  # softmax temperature of the score map (probabilities, confidence, soft-argmax)
    search_region: float = 1.0      # camera searched within this centred fraction of the tile side (1 = whole tile; VIGOR positives: central half)
    pano_input: Literal["resize", "pad"] = "resize"  # to the backbone multiple: resize (keeps 360° on the width) | reference's zero-pad (320x640 -> 322x644)
    ccvpe: CcvpeConfig = field(default_factory=CcvpeConfig)


@dataclass(frozen=True)
class AdaptRecipe:
    """``adapt``'s defaults, measured on unseen synthetic areas (docs/own-area.md). Here, not in engine/adapt.py, so
    that ``adapt --help`` names them without loading torch."""

    epochs: int = 12                # passes over the area's training panoramas
    batch_size: int = 4             # panoramas per step
    lr: float = 2e-4                # peak learning rate (cosine to a tenth)
    select: str = "last"            # best/: the last epoch, or "gps" (closest to the held-back panoramas' GPS)
    fov_deg: tuple[float, float] = (240.0, 360.0)  # the student's FoV range (refine sees full panoramas)
    tau_teacher: float = 0.04       # the teacher's softmax temperature (below the student's: a sharpened target)


ADAPT = AdaptRecipe()


@dataclass
class DistillConfig:
    """GeoDistill teacher-student self-distillation."""

    init_checkpoint: str = ""       # weak-baseline checkpoint to start teacher and student from
    tau_teacher: float = 0.06       # teacher softmax temperature
    tau_student: float = 0.06       # student softmax temperature
    ema_momentum: float = 0.9       # teacher <- m * teacher + (1 - m) * student
    ema_mode: Literal["per_epoch", "per_step"] = "per_epoch"  # when the teacher follows the student
    ema_momentum_final: float = 0.999  # per_step: momentum at the end of training (cosine from ema_momentum)
    masking: Literal["fov", "random_patches", "max_activation"] = "fov"  # what the student does not see
    mask_ratio: float = 0.4         # random_patches / max_activation: share of template cells hidden
    patch_grid: int = 8             # random_patches: the template is split into patch_grid x patch_grid patches
    deploy: Literal["student", "teacher"] = "student"  # which network the release exports as the model
    orientation_weight: float = 0.0  # CCVPE: weight of 1 - cos(student, teacher heading) at the teacher's peak
    fov: FovConfig = field(default_factory=FovConfig)


@dataclass
class OrientationConfig:
    """The orientation estimator (satellite + top-down view -> heading classes)."""

    backbone: str = "efficientnet_lite0"  # backbone of both encoders
    pretrained: bool = True         # load pretrained encoder weights (packaged, local file, or download when online)
    weights_path: str = ""          # local encoder weight file (takes precedence over download)
    allow_random_init: bool = False  # permit random encoder weights when no pretrained weights can be had
    range_deg: float = 45.0         # half range of headings: 45 -> [-45, 45); 180 -> full circle
    bin_deg: float = 1.0            # class width, degrees
    sigma_bins: float = 1.0         # Gaussian soft-label width, classes
    input_size: int = 256           # side of the satellite and top-down inputs, pixels
    topdown_fov_deg: float = 170.0  # field of view of the virtual downward camera
    train_fov_min_deg: float = 360.0  # training: visible panorama FoV drawn uniformly in [min, max] per sample
    train_fov_max_deg: float = 360.0  # (window centre uniform on the circle; 360 and 360 = always the full view)
    hidden: list[int] = field(default_factory=lambda: [1024, 512])  # MLP widths
    init_checkpoint: str = ""       # training: start from this orientation checkpoint (fine-tune) instead of fresh


@dataclass
class OptimConfig:
    """Optimiser and schedule."""

    lr: float = 1e-4                # peak learning rate
    weight_decay: float = 1e-5      # AdamW weight decay
    clip_grad_norm: float = 1.0     # global gradient-norm clip (0 = off)
    schedule: Literal["cosine", "constant"] = "cosine"  # learning-rate schedule over the run
    min_lr: float = 1e-5            # cosine floor
    warmup_steps: int = 0           # linear warm-up steps


@dataclass
class TrainConfig:
    """The training loop."""

    task: Literal["weak", "distill", "orientation", "supervised"] = "weak"  # what to train (supervised: CCVPE with pose labels)
    epochs: int = 10                # passes over the training split
    batch_size: int = 8             # panoramas per batch, per process (rank)
    max_steps_per_epoch: int = 0    # cap on steps per epoch (0 = whole split)
    val_limit: int = 0              # validate on at most this many samples (0 = all)
    seed: int = 2023                # seed of everything random in the run
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    select_by: Literal["val_mean", "last"] = "val_mean"  # which epoch becomes best/
    log_every: int = 10             # steps between step events
    tensorboard: bool = False       # also write TensorBoard logs (needs the tensorboard package)
    gather_negatives: bool = False  # DDP: gather all ranks' samples as in-batch negatives (no tile shared across ranks)
    neighbour_batch: int = 1        # panoramas of one neighbourhood drawn together into a batch (1 = random batches)
    neighbourhood_m: float = 500.0  # neighbourhood: positive-tile centres in one square of this side, per city
    feature_cache: bool = False     # weak, supervised and distill tasks, frozen backbone: keep the backbone's taps of every image on disk
    feature_cache_dir: str = ""     # where (default <data root>/.feature_cache); entries keyed by backbone + image hash
    noisy_gps_weight: float = 0.0   # weak task: weight of the noisy-GPS term (0 = pure weak; > 0 uses position labels)
    noisy_gps_radius_m: float = 5.0  # noisy-GPS term: labels perturbed uniformly within this radius (the paper's 5 m)


@dataclass
class ExperimentConfig:
    """Everything a run needs; saved into the run folder and embedded in every checkpoint."""

    name: str = ""                  # run name (default: recipe name)
    preset: Literal["clean", "faithful"] = "clean"  # sets the PRESETS flags: clean behaviour, or the reference's (method.md)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    orientation: OrientationConfig = field(default_factory=OrientationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# What ``preset`` sets (method.md: "faithful" reproduces the reference, "clean" is the corrected default). A layer
# (recipe or overrides) that names a preset applies these first, so the layer's own keys, and later layers, win.
PRESETS: dict[str, dict[str, dict]] = {
    "clean": {
        "model": {"normalization": "imagenet", "bev_grid": "matched", "pixel_convention": "center", "wrap_seam": True,
                  "metric_conversion": "exact", "fov_template": "zero", "pano_input": "resize"},
        "distill": {"fov": {"sampler": "uniform"}},
    },
    "faithful": {
        "model": {"normalization": "symmetric", "bev_grid": "faithful", "pixel_convention": "index",
                  "wrap_seam": False, "metric_conversion": "faithful", "fov_template": "multiply", "pano_input": "pad"},
        "distill": {"ema_mode": "per_epoch", "fov": {"sampler": "faithful"}},
    },
}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = get_origin(annotation)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in get_args(annotation):
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError("; ".join(errors))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{key}: {value!r} is not a boolean (use true or false)")
    if annotation is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{key}: {value!r} is not an integer")
        return int(value)
    if annotation is float:
        if isinstance(value, str):
            # YAML 1.1 reads exponents without a dot ("3e-4") as strings
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: {value!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: {value!r} is not a number")
        return float(value)
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return "" if value is None else str(value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_type,) = get_args(annotation)
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    raise ConfigError(f"{key}: unsupported type {annotation}")


def _merge_layer(config: ExperimentConfig, layer: dict) -> None:
    """Merge one layer (a recipe or the overrides): its ``preset``, if any, expands first, then its keys."""
    if isinstance(layer, dict) and "preset" in layer:
        preset = _coerce(layer["preset"], get_type_hints(ExperimentConfig)["preset"], "preset")
        _merge(config, PRESETS[preset])
    _merge(config, layer)


def _merge(target: Any, updates: dict, prefix: str = "") -> None:
    if not isinstance(updates, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {updates!r}")
    hints = get_type_hints(type(target))
    names = {f.name for f in dataclasses.fields(target)}
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if name not in names:
            raise ConfigError(f"unknown key {key!r}; valid keys here: {', '.join(sorted(names))}")
        current = getattr(target, name)
        if dataclasses.is_dataclass(current):
            _merge(current, value, prefix=f"{key}.")
        else:
            setattr(target, name, _coerce(value, hints[name], key))


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> list[dict]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'base' recipes form a cycle")
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of keys to values")
    base = content.pop("base", None)
    layers = _read_yaml(path.parent / base, seen + (path,)) if base else []
    return layers + [content]


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict:
    """Turn ``["optim.lr=3e-4", "data.area=same"]`` into a nested dict (values parsed as YAML scalars)."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (for example optim.lr=3e-4)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def config_from_dict(data: dict) -> ExperimentConfig:
    """Build a config from defaults plus a (possibly partial) nested dict."""
    config = ExperimentConfig()
    _merge_layer(config, data)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Defaults, then the YAML recipe at ``path`` (and its ``base`` chain), then ``key=value`` overrides."""
    config = ExperimentConfig()
    if path is not None:
        for layer in _read_yaml(Path(path)):
            _merge_layer(config, layer)
        if not config.name:
            config.name = Path(path).stem
    _merge_layer(config, parse_overrides(list(overrides)))
    check_ranges(config)
    return config


_RANGES = (  # (dotted key, lowest, lowest allowed?, highest or None, highest allowed?)
    ("train.epochs", 1, True, None, False),
    ("train.batch_size", 1, True, None, False),
    ("train.max_steps_per_epoch", 0, True, None, False),
    ("train.val_limit", 0, True, None, False),
    ("train.log_every", 1, True, None, False),
    ("train.neighbour_batch", 1, True, None, False),
    ("train.neighbourhood_m", 0.0, False, None, False),
    ("train.noisy_gps_weight", 0.0, True, None, False),
    ("train.noisy_gps_radius_m", 0.0, False, None, False),
    ("optim.lr", 0.0, False, None, False),
    ("optim.min_lr", 0.0, True, None, False),
    ("optim.weight_decay", 0.0, True, None, False),
    ("optim.clip_grad_norm", 0.0, True, None, False),
    ("optim.warmup_steps", 0, True, None, False),
    ("data.pano_height", 8, True, None, False),
    ("data.sat_size", 8, True, None, False),
    ("data.val_fraction", 0.0, True, 1.0, False),
    ("data.num_workers", 0, True, None, False),
    ("data.photometric_copies", 0, True, None, False),
    ("data.synthetic.panos_per_city", 1, True, None, False),
    ("data.synthetic.workers", 1, True, None, False),
    ("model.template_crop", 0.0, False, 1.0, True),
    ("model.camera_height_m", 0.0, False, None, False),
    ("model.score_temperature", 0.0, False, None, False),
    ("model.search_region", 0.0, False, 1.0, True),
    ("model.ccvpe.ground_stride", 1, True, None, False),
    ("model.ccvpe.ground_wrap", 0.0, True, 1.0, True),
    ("model.ccvpe.ground_rows", 1, True, None, False),
    ("model.ccvpe.ground_width", 1, True, None, False),
    ("model.ccvpe.azimuth_bins", 2, True, None, False),
    ("model.ccvpe.shifts_per_bin", 1, True, None, False),
    ("model.ccvpe.decoder_width", 8, True, None, False),
    ("model.ccvpe.output_stride", 1, True, None, False),
    ("model.ccvpe.match_temperature", 0.0, False, None, False),
    ("model.ccvpe.infonce_weight", 0.0, True, None, False),
    ("model.ccvpe.orientation_weight", 0.0, True, None, False),
    ("distill.orientation_weight", 0.0, True, None, False),
    ("distill.tau_teacher", 0.0, False, None, False),
    ("distill.tau_student", 0.0, False, None, False),
    ("distill.ema_momentum", 0.0, True, 1.0, True),
    ("distill.fov.min_deg", 0.0, False, 360.0, True),
    ("distill.fov.max_deg", 0.0, False, 360.0, True),
    ("orientation.range_deg", 0.0, False, 180.0, True),
    ("orientation.bin_deg", 0.0, False, None, False),
    ("orientation.input_size", 8, True, None, False),
    ("orientation.train_fov_min_deg", 0.0, False, 360.0, True),
    ("orientation.train_fov_max_deg", 0.0, False, 360.0, True),
)


def check_ranges(config: ExperimentConfig) -> None:
    """Refuse numbers outside the range a run can use (``train.epochs=0``, ``optim.lr=-1`` ...) with a ConfigError."""
    for key, lowest, low_ok, highest, high_ok in _RANGES:
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        too_low = value < lowest if low_ok else value <= lowest
        too_high = highest is not None and (value > highest if high_ok else value >= highest)
        if too_low or too_high or value != value:
            bound = f"{'>=' if low_ok else '>'} {lowest:g}"
            if highest is not None:
                bound += f" and {'<=' if high_ok else '<'} {highest:g}"
            raise ConfigError(f"{key}: {value!r} is out of range (must be {bound})")
    for low_key, high_key, low, high in (
        ("distill.fov.min_deg", "distill.fov.max_deg", config.distill.fov.min_deg, config.distill.fov.max_deg),
        ("orientation.train_fov_min_deg", "orientation.train_fov_max_deg", config.orientation.train_fov_min_deg,
         config.orientation.train_fov_max_deg),
    ):
        if low > high:
            raise ConfigError(f"{low_key} ({low:g}) is larger than {high_key} ({high:g})")
    ccvpe = config.model.ccvpe
    if not ccvpe.match_strides or len(ccvpe.match_strides) != len(ccvpe.descriptor_channels):
        raise ConfigError(f"model.ccvpe.match_strides {ccvpe.match_strides} and model.ccvpe.descriptor_channels "
                          f"{ccvpe.descriptor_channels} must be non-empty lists of the same length (one entry per scale)")
    if any(stride < 1 or stride & (stride - 1) for stride in ccvpe.match_strides) or any(
            channels < 1 for channels in ccvpe.descriptor_channels):
        raise ConfigError(f"model.ccvpe.match_strides {ccvpe.match_strides} must be powers of two and "
                          f"descriptor_channels {ccvpe.descriptor_channels} positive")


def without_pretrained(config: ExperimentConfig) -> ExperimentConfig:
    """A deep copy that builds its networks without fetching pretrained weights.

    For networks whose weights come from elsewhere (a checkpoint) or may stay random (benchmarks): both the
    localizer's backbone and the orientation encoders are built with ``pretrained=False`` and
    ``allow_random_init=True``, so nothing is downloaded or required on disk. ``config`` is left unchanged.
    """
    config = copy.deepcopy(config)
    config.model.pretrained = False
    config.model.allow_random_init = True
    config.orientation.pretrained = False
    config.orientation.allow_random_init = True
    return config


def config_to_dict(config: ExperimentConfig) -> dict:
    """A plain nested dict (JSON/YAML serialisable)."""
    return dataclasses.asdict(config)


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (``.yaml``/``.yml``) or JSON, atomically."""
    path = Path(path)
    data = config_to_dict(config)
    text = yaml.safe_dump(data, sort_keys=False) if path.suffix in (".yaml", ".yml") else json.dumps(data, indent=2)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (for refusing a changed resume)."""
    keys = sorted(set(old) | set(new))
    changed = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changed
