"""Plot the training curves of the shipped runs from their ``events.jsonl`` into one PNG.

    python training/plot_curves.py docs/training_curves.png runs/shipped_weak runs/shipped_distill ...

One row per run (training loss against step, validation error against epoch), drawn with
:func:`geodistill.viz.plots.training_curves`; an orientation run (validation heading errors in degrees) gets
its own two panels. The image is written atomically.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

import numpy as np
from PIL import Image

from geodistill.viz.plots import training_curves  # noqa: E402


def read_events(run: Path) -> list[dict]:
    """The records of ``run/events.jsonl`` (blank lines skipped)."""
    path = run / "events.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: no events file (has this run started?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def orientation_curves(events: list[dict], title: str) -> np.ndarray:
    """Training loss against step and validation heading error (degrees) against epoch: (H, W, 3) uint8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [(e["step"], e["loss/total"]) for e in events if e.get("event") == "step" and "loss/total" in e]
    epochs = [e for e in events if e.get("event") == "epoch" and "val/ori_mean_deg" in e]
    figure, (loss_axis, val_axis) = plt.subplots(1, 2, figsize=(10.0, 3.6), dpi=100)
    if steps:
        loss_axis.plot(*zip(*steps), linewidth=1.2, label="total")
    loss_axis.set(xlabel="step", ylabel="loss", title="training loss")
    for key, style in (("val/ori_mean_deg", "-"), ("val/ori_median_deg", "--")):
        val_axis.plot([e["epoch"] for e in epochs], [e[key] for e in epochs], style, marker="o", markersize=3, label=key)
    val_axis.set(xlabel="epoch", ylabel="heading error (deg)", title="validation")
    for axis in (loss_axis, val_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return image


def run_curves(run: Path) -> np.ndarray:
    """The panels of one run, chosen by what its events hold."""
    events = read_events(run)
    if any("val/ori_mean_deg" in e for e in events):
        return orientation_curves(events, run.name)
    return training_curves(events, title=run.name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, runs = Path(argv[0]), [Path(a) for a in argv[1:]]
    panels = [run_curves(run) for run in runs]
    width = max(p.shape[1] for p in panels)
    padded = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    Image.fromarray(np.concatenate(padded, axis=0)).save(tmp)
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
