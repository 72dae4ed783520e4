"""Draw the reliability diagram of the calibrated confidence from ``calibrate --measure --report`` files.

    python training/plot_reliability.py docs/reliability.png docs/results/calibration/*.json

One curve per report (ten equal-count bins of held-out queries: predicted confidence against the observed share
within 5 m), labelled by its checkpoint role and split; written atomically. Also prints the three-bin table of
docs/results.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout works uninstalled

from PIL import Image  # noqa: E402

from geodistill.viz.plots import reliability_diagram  # noqa: E402


def label_of(report: dict, path: Path) -> str:
    setting = report.get("setting", {})
    name = Path(setting.get("checkpoint", path.stem)).name
    return f"{name} ({setting.get('role', '?')}), {setting.get('area', '?')}-area {setting.get('split', '?')}"


def table(reports: dict[str, dict]) -> str:
    """Markdown: per report, the three bins as predicted / observed (n)."""
    lines = ["| checkpoint, split | queries | bin 1 predicted / observed | bin 2 | bin 3 | largest gap |",
             "|---|---|---|---|---|---|"]
    for label, report in reports.items():
        cells = [f"{100 * b['predicted']:.1f} % / {100 * b['observed']:.1f} % ({b['n']})" for b in report["bins"]]
        lines.append(f"| {label} | {report['n']} | " + " | ".join(cells) + f" | {100 * report['max_gap']:.1f} points |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, files = Path(argv[0]), [Path(a) for a in argv[1:]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"error: no such report: {', '.join(missing)}", file=sys.stderr)
        return 2
    reports = {label_of(report, path): report for path in files for report in [json.loads(path.read_text())]}
    image = reliability_diagram({label: report["plot_bins"] for label, report in reports.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    Image.fromarray(image).save(tmp)
    tmp.replace(out)
    print(table(reports))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
