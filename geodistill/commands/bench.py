"""``python -m geodistill bench``: speed and memory of the pieces that matter, as one table.

Rows (median of ``--repeats`` timed runs after one warm-up): masked NCC by FFT versus the direct grouped
convolution at the paper's level-2 sizes; single-pair latency and batched pairs/s of the default model at its own
input sizes (the shipped checkpoint when there is one, else random weights of the same architecture); peak memory;
one weak training step; one distillation step; the CCVPE base's latency, throughput and supervised step
(the shipped ``checkpoints/ccvpe_geodistill_student`` when there is one); ``refine`` throughput end to end
(panoramas/s on a generated area: 2048x1024 JPEGs with EXIF GPS and a UTM GeoTIFF); synthetic-world generation. A row
that cannot run prints ``n/a`` and the reason. ``--quick`` uses the CPU-scale preset (tiny backbone, 64x128 panorama, 128 px tile) so the whole table
takes seconds (it skips the paper-size correlation, whose direct path alone takes seconds per run). Each row is
printed as soon as it is measured.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from geodistill.config import without_pretrained
from geodistill.shipped import CCVPE_STUDENT, DEFAULT_LOCALIZER

HELP = "measure speed and memory and print a table"
QUICK_CCVPE = {"match_strides": [16, 8], "descriptor_channels": [16, 8], "azimuth_bins": 8, "output_stride": 2}
QUICK_OVERRIDES = {
    "model": {"backbone": "tiny_cnn", "decoder_width": 32, "level_channels": [32, 16, 8]},
    "data": {"pano_height": 64, "sat_size": 128},
}

REFINE_PANORAMAS = 32
REFINE_QUICK_PANORAMAS = 8
COLUMN_WIDTHS = (32, 36, 17)  # item, size, value; a longer cell widens its own line only

logger = logging.getLogger("geodistill.commands.bench")


@dataclass
class BenchRow:
    """One line of the table."""

    item: str
    size: str
    value: str
    note: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to run (auto: the GPU when one is present)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per row (median reported; default 5, fewer gives noisy medians)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per batch for throughput and training steps")
    parser.add_argument("--quick", action="store_true",
                        help="CPU-scale sizes and model (random weights): the whole table in seconds")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help=f"model to measure (default: checkpoints/{DEFAULT_LOCALIZER}, the shipped default, when "
                             "it exists and neither --quick nor --config is given)")
    parser.add_argument("--config", default=None, metavar="YAML",
                        help="measure a recipe's model with random weights instead (e.g. training/configs/tiny.yaml)")


def machine_lines(device) -> list[str]:
    """CPU model and cores, torch version and threads, and the device."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    lines = [f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads"]
    if device.type == "cuda":
        lines.append(f"device: {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})")
    else:
        lines.append("device: cpu")
    return lines


def time_median(fn: Callable[[], object], repeats: int, device, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs, after ``warmup`` untimed runs."""
    import torch

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def format_row(row: BenchRow) -> str:
    item, size, value = COLUMN_WIDTHS
    return f"{row.item:<{item}}  {row.size:<{size}}  {row.value:>{value}}  {row.note}".rstrip()


def table_header() -> str:
    header = format_row(BenchRow("item", "size", "median", "note"))
    return f"{header}\n{'-' * len(header)}"


def format_table(rows: list[BenchRow]) -> str:
    return "\n".join([table_header()] + [format_row(row) for row in rows])


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:160]


@dataclass
class BenchModel:
    """The model whose speed is measured: its config, where it comes from, and its checkpoint if any."""

    config: object
    description: str
    checkpoint: object = None


def choose_model(args) -> BenchModel:
    """``--checkpoint``, else ``--config``, else the CPU-scale preset (``--quick``), else the shipped default
    (``checkpoints/<DEFAULT_LOCALIZER>``), else the default config. Without a checkpoint the weights are random:
    they do not change the timings."""
    from geodistill import settings
    from geodistill.checkpoint import read_checkpoint_meta, resolve_checkpoint
    from geodistill.config import config_from_dict, load_config
    from geodistill.errors import CheckpointError

    shipped = settings.checkpoints_dir() / DEFAULT_LOCALIZER
    if args.checkpoint or (not args.config and not args.quick and (shipped / "config.json").is_file()):
        folder = resolve_checkpoint(args.checkpoint or shipped)
        meta = read_checkpoint_meta(folder)
        if meta["task"] == "orientation":
            raise CheckpointError(f"{folder} is an orientation-estimator checkpoint; bench measures a localizer: "
                                  "pass a weak-baseline or GeoDistill checkpoint")
        config = config_from_dict(meta["config"])
        return BenchModel(config, f"checkpoint {folder}", folder)
    if args.config:
        config, description = load_config(args.config), f"recipe {args.config}, random init"
    elif args.quick:
        config, description = config_from_dict(copy.deepcopy(QUICK_OVERRIDES)), "CPU-scale preset, random init"
    else:
        config, description = config_from_dict({}), "default config (no shipped checkpoint), random init"
    return BenchModel(config, description)


def _localizer(model: BenchModel, device):
    from geodistill.inference import Localizer

    if model.checkpoint is not None:
        return Localizer.from_checkpoint(model.checkpoint, device=device)
    return Localizer.from_config(without_pretrained(model.config), device=device)


def random_samples(count: int, pano_height: int, sat_size: int, seed: int = 0) -> list[dict]:
    """Random-pixel samples with a ground truth at the tile centre (timing inputs)."""
    import torch

    from geodistill.data.collate import assemble_sample

    generator = torch.Generator().manual_seed(seed)
    return [assemble_sample(torch.rand(3, pano_height, 2 * pano_height, generator=generator),
                            torch.rand(3, sat_size, sat_size, generator=generator), 72.0 / sat_size,
                            (sat_size / 2, sat_size / 2), (0.0, 0.0), None, None, index=i) for i in range(count)]


def correlation_rows(args, device) -> list[BenchRow]:
    from geodistill.models import bench as models_bench

    size = (f"B=1, C={models_bench.PAPER_CHANNELS}, sat {models_bench.PAPER_SAT_SIDE}^2, "
            f"template {models_bench.PAPER_TEMPLATE_SIDE}^2")
    if args.quick:
        return [BenchRow("correlation FFT vs direct", size, "n/a", "skipped by --quick (the direct path takes seconds)")]
    fft, direct = models_bench.bench_correlation(repeats=args.repeats, device=device)
    return [
        BenchRow("correlation FFT", size, format_seconds(fft["median_ms"] / 1000.0),
                 f"max |cos difference| vs direct {fft['max_abs_diff']:.1e}"),
        BenchRow("correlation direct conv2d", size, format_seconds(direct["median_ms"] / 1000.0)),
        BenchRow("correlation speed-up", "FFT vs direct", f"{fft['speedup_vs_direct']:.1f}x", "target >= 10x"),
    ]


def inference_rows(args, device) -> list[BenchRow]:
    import torch

    model = args.bench_model
    localizer, description = _localizer(model, device), model.description
    size = f"pano {2 * localizer.pano_height}x{localizer.pano_height}, tile {localizer.sat_size}"
    single = random_samples(1, localizer.pano_height, localizer.sat_size)[0]
    batch = random_samples(args.batch_size, localizer.pano_height, localizer.sat_size, seed=1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    latency = time_median(lambda: localizer.predict(single), args.repeats, device)
    batched = time_median(lambda: localizer.predict_batch(batch, with_heatmap=False), args.repeats, device)
    rows = [BenchRow("single pair latency", size, format_seconds(latency), f"{description}, with heatmap"),
            BenchRow("batched throughput", f"batch {args.batch_size}", f"{args.batch_size / batched:.1f} pairs/s",
                     f"{format_seconds(batched)} per batch")]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        rows.append(BenchRow("peak memory (inference)", f"batch {args.batch_size}", f"{peak:.0f} MiB",
                             "torch.cuda.max_memory_allocated"))
    return rows


def choose_ccvpe_model(args) -> BenchModel:
    """The CCVPE rows' model: the shipped CCVPE student (``checkpoints/ccvpe_geodistill_student``) unless
    ``--quick`` or ``--config`` is given (or it is missing), else the CCVPE base at the measured model's input sizes
    (random init; with ``--quick`` matched at strides 16 and 8, which the tiny backbone has)."""
    from geodistill import settings

    shipped = settings.checkpoints_dir() / CCVPE_STUDENT
    if not args.quick and not args.config and (shipped / "config.json").is_file():
        from geodistill.checkpoint import read_checkpoint_meta, resolve_checkpoint
        from geodistill.config import config_from_dict

        folder = resolve_checkpoint(shipped)
        return BenchModel(config_from_dict(read_checkpoint_meta(folder)["config"]), f"checkpoint {folder}", folder)
    config = copy.deepcopy(args.bench_model.config)
    if config.model.architecture != "ccvpe":
        config.model.architecture = "ccvpe"
        if args.quick:
            for key, value in QUICK_CCVPE.items():
                setattr(config.model.ccvpe, key, value)
    return BenchModel(config, f"CCVPE at {args.bench_model.description.split(',')[0]}'s sizes, random init")


def ccvpe_rows(args, device) -> Iterator[BenchRow]:
    """Latency (heading unknown: the full circle) and throughput of the CCVPE base, and one supervised step."""
    model = choose_ccvpe_model(args)
    localizer = _localizer(model, device)
    size = f"pano {2 * localizer.pano_height}x{localizer.pano_height}, tile {localizer.sat_size}"
    single = random_samples(1, localizer.pano_height, localizer.sat_size)[0]
    batch = random_samples(args.batch_size, localizer.pano_height, localizer.sat_size, seed=1)
    latency = time_median(lambda: localizer.predict(single), args.repeats, device)
    yield BenchRow("ccvpe single pair latency", size, format_seconds(latency),
                   f"{model.description}, heading over the full circle, with heatmap; target <= 100 ms")
    batched = time_median(lambda: localizer.predict_batch(batch, with_heatmap=False), args.repeats, device)
    yield BenchRow("ccvpe batched throughput", f"batch {args.batch_size}", f"{args.batch_size / batched:.1f} pairs/s",
                   f"{format_seconds(batched)} per batch")
    config = without_pretrained(model.config)
    config.train.task, config.train.batch_size = "supervised", args.batch_size
    step, _ = _task_step_time(config, args, device)
    yield BenchRow("ccvpe supervised step", f"batch {args.batch_size}, {size}", format_seconds(step),
                   config.model.backbone)


def peak_rss_row() -> BenchRow:
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return BenchRow("peak memory (process)", "whole run so far", f"{peak_mib:.0f} MiB", "ru_maxrss (CPU RSS)")


def _task_step_time(config, args, device) -> tuple[float, object]:
    """Median time of one optimizer step (forward, loss, backward, clip, AdamW) of the config's engine task."""
    import torch

    from geodistill.data.collate import collate_samples
    from geodistill.engine.distributed import DistContext
    from geodistill.engine.tasks import task_class

    task = task_class(config.train.task)(config, DistContext(device=device))
    task.set_train_mode()
    parameters = task.trainable_parameters()
    optimizer = torch.optim.AdamW(parameters, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    samples = random_samples(args.batch_size, config.data.pano_height, config.data.sat_size, seed=2)
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in collate_samples(samples).items()}

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        losses = task.train_step(batch)
        losses["total"].mean().backward()
        torch.nn.utils.clip_grad_norm_(parameters, config.optim.clip_grad_norm)
        optimizer.step()

    return time_median(step, args.repeats, device), task


def training_rows(args, device) -> Iterator[BenchRow]:
    """Weak step, then a distillation step initialised from that (random) weak model (each yielded when measured)."""
    import tempfile

    from geodistill.checkpoint import save_checkpoint

    config = without_pretrained(args.bench_model.config)
    config.train.batch_size = args.batch_size
    size = f"batch {args.batch_size}, pano {2 * config.data.pano_height}x{config.data.pano_height}, " \
           f"tile {config.data.sat_size}"
    weak = weak_task = None
    try:
        config.train.task = "weak"
        weak, weak_task = _task_step_time(config, args, device)
        yield BenchRow("weak training step", size, format_seconds(weak), config.model.backbone)
    except Exception as error:  # a bench row must never stop the table
        yield BenchRow("weak training step", size, "n/a", _reason(error))
    if weak_task is None:
        yield BenchRow("distillation step", size, "n/a", "needs the weak task to build its initial model")
        return
    with tempfile.TemporaryDirectory(prefix="geodistill-bench-") as folder:
        try:
            distill_config = copy.deepcopy(config)
            distill_config.train.task = "distill"
            distill_config.distill.init_checkpoint = str(save_checkpoint(
                f"{folder}/weak", config, weak_task.state_dicts(), weak_task.checkpoint_meta()))
            distill, _ = _task_step_time(distill_config, args, device)
            row = BenchRow("distillation step", size, format_seconds(distill),
                           f"{distill / weak:.2f}x the weak step (target <= 1.6x)")
        except Exception as error:
            row = BenchRow("distillation step", size, "n/a", _reason(error))
    yield row


def refine_rows(args, device) -> list[BenchRow]:
    """``refine`` end to end on a generated area (2048x1024 JPEGs with EXIF GPS, a UTM GeoTIFF): the model measured
    (with the default orientation model, as ``refine`` loads it), or the CPU-scale preset with ``--quick``."""
    from geodistill.area.bench import bench_refine
    from geodistill.commands.refine import load_localizer

    model = args.bench_model
    if args.quick or model.checkpoint is None:
        localizer, description = _localizer(model, device), model.description
    else:
        localizer = load_localizer(model.checkpoint, None, None, False, str(device))
        description = f"{model.description} + orientation {localizer.orientation_source or 'none'}"
    count = REFINE_QUICK_PANORAMAS if args.quick else REFINE_PANORAMAS
    result = bench_refine(localizer, count, args.batch_size)
    return [BenchRow("refine throughput", f"{count} JPEG 2048x1024 + GeoTIFF, batch {args.batch_size}",
                     f"{result['panoramas_per_s']:.2f} panoramas/s",
                     f"{description}; EXIF, decoding, tiles, localization, output; target >= 5 on the 2-core CPU")]


def synthetic_rows(args, device) -> list[BenchRow]:
    from geodistill.data.synthetic.bench import bench_synthetic

    rows = []
    for result in bench_synthetic(repeats=args.repeats, quick=args.quick):
        value = format_seconds(result["median_s"])
        if result.get("pairs_per_s_per_core") is not None:
            value = f"{result['pairs_per_s_per_core']:.2f} pairs/s/core"
        rows.append(BenchRow(result["name"], str(result.get("size", "")), value, str(result.get("note", ""))))
    return rows


def _section(name: str, builder, args, device) -> Iterator[BenchRow]:
    """The builder's rows, each as soon as it is measured; a failure becomes an ``n/a`` row with its reason."""
    try:
        yield from builder(args, device)
    except ModuleNotFoundError as error:
        yield BenchRow(name, "", "n/a", f"{error.name} is not available")
    except Exception as error:  # a bench row must never stop the table
        logger.debug("bench %s failed", name, exc_info=True)
        yield BenchRow(name, "", "n/a", _reason(error))


def run(args: argparse.Namespace) -> int:
    import torch

    from geodistill.cli import UserError
    from geodistill.inference import resolve_device

    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is available; use --device cpu or auto")
    if args.repeats < 5:
        logger.warning("--repeats %d: medians of fewer than 5 runs are noisy", args.repeats)
    if args.checkpoint and args.config:
        raise UserError("give --checkpoint or --config, not both")
    device = resolve_device(args.device)
    args.bench_model = choose_model(args)
    print("\n".join(machine_lines(device)))
    print(f"model: {args.bench_model.description}")
    print(f"median of {args.repeats} runs after one warm-up{'; quick (CPU-scale) sizes' if args.quick else ''}\n")
    print(table_header(), flush=True)
    sections = (("correlation", correlation_rows), ("single pair latency", inference_rows),
                ("weak training step", training_rows), ("ccvpe", ccvpe_rows),
                ("refine throughput", refine_rows),
                ("peak memory", lambda *_: [peak_rss_row()]),
                ("synthetic generation", synthetic_rows))
    for name, builder in sections:
        for row in _section(name, builder, args, device):
            print(format_row(row), flush=True)
    return 0
