"""GPU check (issue 12): the paper-scale recipes on a CUDA machine, in at most 5 minutes.

Run through ``bash training/gpu_check.sh`` (which prepares the data, finds the wheels and applies the time
limit). For each recipe (G2SWeakly: ``training/configs/vigor_weak.yaml`` with a randomly initialised DINOv2
ViT-B/14 at paper sizes, 320x640 panoramas and 512-px tiles; CCVPE when this checkout has
``model.architecture: ccvpe``, skipped with a message otherwise) it trains a fixed number of steps with automatic mixed precision (bfloat16 where
the GPU supports it, else float16 with a gradient scaler) on a small synthetic set, then prints:

- steps/s of the training steps after a warm-up, and pairs/s at inference (batched, no gradients, AMP);
- the peak GPU memory of each phase (``torch.cuda.max_memory_allocated``);
- FFT against direct masked correlation on the GPU at the paper's level-2 sizes (time and largest difference);
- with two or more GPUs, the same G2SWeakly steps under a 2-process ``torchrun`` (DDP) and their steps/s.

Exit status: 0 when every part ran, 3 without a CUDA device (nothing is run), 4 when a Python module is missing,
1 when a part failed (the others still run). ``--json FILE`` writes the figures.

``--smoke`` runs the same code path on the CPU with a tiny ViT and tiny inputs (for the test suite only: its
figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a source checkout works uninstalled

WEAK_RECIPE = ROOT / "training" / "configs" / "vigor_weak.yaml"
CCVPE_RECIPE = ROOT / "training" / "configs" / "vigor_ccvpe.yaml"
TINY_CCVPE_RECIPE = ROOT / "training" / "configs" / "tiny_ccvpe.yaml"
CCVPE_FROM_WEAK = ["model.architecture=ccvpe", "train.task=supervised", "model.backbone=efficientnet_lite0",
                   "model.decoder=auto"]
RANDOM_BACKBONE = ["model.pretrained=false", "model.allow_random_init=true"]
SMOKE_OVERRIDES = ["model.backbone=tiny_vit", "model.decoder_width=16", "model.level_channels=[16,8,4]",
                   "data.pano_height=32", "data.sat_size=64"]
EXIT_NO_CUDA, EXIT_MISSING_MODULE = 3, 4


def fail_without_cuda(smoke: bool) -> None:
    import torch

    if smoke or torch.cuda.is_available():
        return
    print(f"error: gpu_check needs a CUDA GPU, and torch {torch.__version__} sees none "
          f"(torch.cuda.is_available() is False; CUDA build: {torch.version.cuda or 'none'}). Nothing was run.",
          file=sys.stderr)
    sys.exit(EXIT_NO_CUDA)


def check_modules() -> None:
    """Import what the check needs; name any missing module and where its wheel goes."""
    missing = []
    for name in ("numpy", "yaml", "PIL", "timm", "safetensors", "geodistill.engine.tasks.weak"):
        try:
            __import__(name)
        except ModuleNotFoundError as error:
            missing.append(f"{name} ({error})")
    if missing:
        print("error: missing Python modules: " + "; ".join(missing) + ". Put their wheels (pure-Python, or built "
              "for this machine's Python) in .whl/ at the repository root; gpu_check.sh unpacks them.",
              file=sys.stderr)
        sys.exit(EXIT_MISSING_MODULE)


def ccvpe_recipe(smoke: bool) -> tuple[Path | None, list[str], str]:
    """(recipe, overrides, "") of the paper-scale CCVPE run, or (None, [], why not) when this checkout has no CCVPE.

    ``training/configs/vigor_ccvpe.yaml`` when it exists; else the G2SWeakly recipe's data sizes with
    ``model.architecture=ccvpe``, the supervised task and an EfficientNet-Lite0 backbone (the paper's is B0).
    ``--smoke`` uses the tiny CCVPE recipe of the tests.
    """
    import typing

    from geodistill.config import ModelConfig

    annotation = typing.get_type_hints(ModelConfig).get("architecture")
    if annotation is None or "ccvpe" not in typing.get_args(annotation):
        return None, [], "model.architecture: ccvpe does not exist in this checkout (no CCVPE model yet)"
    if smoke and TINY_CCVPE_RECIPE.is_file():
        return TINY_CCVPE_RECIPE, [], ""
    if CCVPE_RECIPE.is_file():
        return CCVPE_RECIPE, [], ""
    return WEAK_RECIPE, CCVPE_FROM_WEAK, ""


def autocast_dtype(device):
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def load_batches(config, data_root: Path, count: int) -> list[dict]:
    """``count`` batches of ``train.batch_size`` pairs from the synthetic set (cycled), collated, on the CPU."""
    from geodistill.data.collate import collate_samples
    from geodistill.data.vigor import VigorDataset

    dataset = VigorDataset(data_root, area="same", split="all", pano_height=config.data.pano_height,
                           sat_size=config.data.sat_size)
    if len(dataset) == 0:
        raise RuntimeError(f"{data_root}: no panorama in the synthetic set")
    size = config.train.batch_size
    samples = [dataset[i % len(dataset)] for i in range(size)]
    return [collate_samples(samples) for _ in range(count)]


def build_config(recipe: Path, data_root: Path, batch_size: int, smoke: bool, extra: list[str]):
    from geodistill.config import load_config

    tiny = smoke and recipe != TINY_CCVPE_RECIPE  # the tiny CCVPE recipe is small already
    overrides = [f"data.root={data_root}", "data.area=same", f"train.batch_size={batch_size}", *RANDOM_BACKBONE,
                 *extra, *(SMOKE_OVERRIDES if tiny else [])]
    return load_config(recipe, overrides)


class Trainer:
    """Fixed AMP training steps of one recipe's engine task, on one process or one DDP rank."""

    def __init__(self, config, ctx):
        import torch

        from geodistill.engine.distributed import wrap_for_training
        from geodistill.engine.tasks import task_class

        self.config, self.ctx, self.device = config, ctx, ctx.device
        torch.manual_seed(config.train.seed)
        self.task = task_class(config.train.task)(config, ctx)
        self.task.set_train_mode()
        self.module = wrap_for_training(self.task.train_step_module(), ctx,
                                        getattr(self.task, "find_unused_parameters", False))
        self.parameters = self.task.trainable_parameters()
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
        self.dtype = autocast_dtype(self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    def step(self, batch: dict) -> float:
        import torch

        from geodistill.engine.tasks.base import batch_to_device

        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.dtype):
            losses = self.module(batch_to_device(batch, self.device))
        total = losses["total"].float().mean()
        if not torch.isfinite(total):
            raise RuntimeError(f"non-finite loss {float(total)}")
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.parameters, self.config.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(total.detach())

    def timed_steps(self, batches: list[dict], warmup: int) -> dict:
        for batch in batches[:warmup]:
            self.step(batch)
        synchronize(self.device)
        reset_peak_memory(self.device)
        start = time.perf_counter()
        losses = [self.step(batch) for batch in batches[warmup:]]
        synchronize(self.device)
        seconds = time.perf_counter() - start
        return {"steps": len(losses), "steps_per_s": len(losses) / seconds, "first_loss": losses[0],
                "last_loss": losses[-1], "peak_memory_mib": peak_memory_mib(self.device)}


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def inference_rate(trainer: Trainer, batch: dict, repeats: int) -> dict:
    """Batched localisation pairs/s of the trained network (eval mode, no gradients, AMP)."""
    import torch

    from geodistill.inference import Localizer

    network = next(iter(trainer.task.networks().values()))
    localizer = Localizer(network, trainer.config, device=trainer.device, role="gpu-check", source="gpu_check")
    samples = [{key: value[i] if isinstance(value, torch.Tensor) else value[i] for key, value in batch.items()}
               for i in range(len(batch["pano"]))]
    reset_peak_memory(trainer.device)
    with torch.autocast(trainer.device.type, dtype=trainer.dtype):
        localizer.predict_batch(samples, with_heatmap=False)
        synchronize(trainer.device)
        start = time.perf_counter()
        for _ in range(repeats):
            localizer.predict_batch(samples, with_heatmap=False)
        synchronize(trainer.device)
    seconds = time.perf_counter() - start
    return {"pairs_per_s": repeats * len(samples) / seconds, "batch": len(samples),
            "peak_memory_mib": peak_memory_mib(trainer.device)}


def run_recipe(name: str, recipe: Path, args, device, extra: list[str] = ()) -> dict:
    from geodistill.engine.distributed import DistContext

    config = build_config(recipe, args.data, args.batch_size, args.smoke, list(extra))
    batches = load_batches(config, args.data, args.warmup + args.steps)
    trainer = Trainer(config, DistContext(device=device))
    result = {"recipe": str(recipe.relative_to(ROOT)), "backbone": config.model.backbone,
              "pano": f"{2 * config.data.pano_height}x{config.data.pano_height}", "tile": config.data.sat_size,
              "batch": config.train.batch_size, "amp": str(trainer.dtype).replace("torch.", "")}
    result["train"] = trainer.timed_steps(batches, args.warmup)
    result["inference"] = inference_rate(trainer, batches[0], args.inference_repeats)
    train, infer = result["train"], result["inference"]
    print(f"{name}: {train['steps']} steps at {train['steps_per_s']:.2f} steps/s "
          f"(loss {train['first_loss']:.4f} -> {train['last_loss']:.4f}), peak {format_mib(train['peak_memory_mib'])}; "
          f"inference {infer['pairs_per_s']:.1f} pairs/s at batch {infer['batch']}, "
          f"peak {format_mib(infer['peak_memory_mib'])} [{result['backbone']}, pano {result['pano']}, "
          f"tile {result['tile']}, batch {result['batch']}, AMP {result['amp']}]", flush=True)
    return result


def format_mib(value: float | None) -> str:
    return "n/a (CPU)" if value is None else f"{value:.0f} MiB"


def correlation_comparison(device, smoke: bool) -> dict:
    """FFT against direct masked correlation at the paper's level-2 sizes (``--smoke``: tiny sizes, one run)."""
    from geodistill.models.bench import bench_correlation

    sizes = {"channels": 4, "sat_side": 24, "template_side": 8} if smoke else {}
    fft, direct = bench_correlation(repeats=1 if smoke else 5, device=device, **sizes)
    print(f"correlation on {device}: FFT {fft['median_ms']:.2f} ms, direct {direct['median_ms']:.2f} ms "
          f"({fft['speedup_vs_direct']:.1f}x), largest cosine difference {fft['max_abs_diff']:.1e}", flush=True)
    return {"sizes": fft["name"], "fft_ms": fft["median_ms"], "direct_ms": direct["median_ms"], "speedup": fft["speedup_vs_direct"],
            "max_abs_diff": fft["max_abs_diff"]}


def torchrun_check(args) -> dict:
    """The G2SWeakly steps under a 2-process torchrun; rank 0 prints a JSON line with its steps/s."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(Path(__file__).resolve()), "--ddp-worker", "--data", str(args.data), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=args.ddp_timeout)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"torchrun exited with {completed.returncode}: {completed.stderr[-2000:]}")
    result = json.loads(lines[-1])
    print(f"torchrun, 2 processes: {result['steps_per_s']:.2f} steps/s per rank "
          f"({2 * args.batch_size * result['steps_per_s']:.1f} pairs/s in all), "
          f"rank 0 peak {format_mib(result['peak_memory_mib'])}", flush=True)
    return result


def ddp_worker(args) -> int:
    from geodistill.engine.distributed import init_distributed, shutdown_distributed

    ctx = init_distributed("cuda")
    try:
        config = build_config(WEAK_RECIPE, args.data, args.batch_size, False, [])
        batches = load_batches(config, args.data, args.warmup + args.steps)
        result = Trainer(config, ctx).timed_steps(batches, args.warmup)
        if ctx.is_main:
            print(json.dumps(result), flush=True)
    finally:
        shutdown_distributed(ctx)
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic VIGOR-layout set at paper sizes")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per recipe (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step and per rank (default 8)")
    parser.add_argument("--inference-repeats", type=int, default=10, help="timed inference batches (default 10)")
    parser.add_argument("--ddp-timeout", type=int, default=150, help="seconds allowed for the torchrun part")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny ViT and inputs: tests the plumbing only")
    parser.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fail_without_cuda(args.smoke)
    check_modules()
    if args.ddp_worker:
        return ddp_worker(args)
    import torch

    device = torch.device("cpu" if args.smoke else "cuda")
    figures: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
                     "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (smoke)",
                     "gpus": torch.cuda.device_count()}
    print(f"gpu_check on {figures['device']} ({figures['gpus']} GPU(s)), torch {figures['torch']}", flush=True)
    parts = [("g2sweakly", lambda: run_recipe("G2SWeakly (DINOv2 ViT-B/14, random init)", WEAK_RECIPE, args, device))]
    recipe, overrides, reason = ccvpe_recipe(args.smoke)
    if recipe is not None:
        parts.append(("ccvpe", lambda: run_recipe("CCVPE", recipe, args, device, overrides)))
    else:
        print(f"CCVPE: skipped, {reason}", flush=True)
        figures["ccvpe"] = {"skipped": reason}
    parts.append(("correlation", lambda: correlation_comparison(device, args.smoke)))
    if figures["gpus"] >= 2:
        parts.append(("torchrun", lambda: torchrun_check(args)))
    else:
        print(f"torchrun: skipped, {figures['gpus']} GPU(s) (needs 2)", flush=True)
        figures["torchrun"] = {"skipped": f"{figures['gpus']} GPU(s)"}
    failed = []
    for name, part in parts:
        try:
            figures[name] = part()
        except Exception as error:  # noqa: BLE001 - report every part, then fail
            traceback.print_exc()
            print(f"{name}: FAILED ({type(error).__name__}: {error})", file=sys.stderr, flush=True)
            figures[name] = {"failed": f"{type(error).__name__}: {error}"}
            failed.append(name)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print("gpu_check: " + ("every part ran" if not failed else f"FAILED parts: {', '.join(failed)}"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
