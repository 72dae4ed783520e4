"""A stand-in for ``python -m geodistill train`` that follows the trainer's protocol without a model.

It writes the events of geodistill/engine/events.py (start, step, epoch, done / interrupted), and on
SIGINT or when the cancel file named by ``$GEODISTILL_CANCEL_FILE`` exists (polled before the first step and
after every step, like the trainer) it finishes its step, writes an ``interrupted/`` checkpoint marker and exits
0, so the job manager can be tested in well under a second. Usage: ``fake_trainer.py -m geodistill train --config C --run-dir D
[--resume]`` (the interpreter's arguments come first because the job manager runs ``<python> -m ...``).
Environment: ``FAKE_STEPS`` (default 400), ``FAKE_STEP_S`` (default 0.02), ``FAKE_FAIL`` (exit 3 after a step),
``FAKE_SETUP_S`` (default 0: seconds of setup before the start event, with SIGINT ignored, as a trainer
generating data that was started with SIGINT ignored).
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

stop = False


def on_sigint(signum, frame):
    global stop
    stop = True


def cancelled() -> bool:
    cancel_file = os.environ.get("GEODISTILL_CANCEL_FILE")
    return stop or bool(cancel_file and Path(cancel_file).exists())


def main(argv):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(float(os.environ.get("FAKE_SETUP_S", "0")))
    signal.signal(signal.SIGINT, on_sigint)
    run_dir = Path(argv[argv.index("--run-dir") + 1])
    assert Path(argv[argv.index("--config") + 1]).is_file()
    total = int(os.environ.get("FAKE_STEPS", "400"))
    step_s = float(os.environ.get("FAKE_STEP_S", "0.02"))
    events = run_dir / "events.jsonl"

    def write(kind, **fields):
        with events.open("a") as handle:
            handle.write(json.dumps({"event": kind, "time": time.time(), **fields}) + "\n")

    start_step = 0
    if "--resume" in argv:
        start_step = json.loads((run_dir / "interrupted" / "config.json").read_text())["step"]
    write("start", step=start_step, epoch=0, task="weak", total_steps=total, steps_per_epoch=total // 2)
    print("training", flush=True)

    def interrupt(step):
        (run_dir / "interrupted").mkdir(exist_ok=True)
        meta = {"format": "geodistill-checkpoint", "version": 1, "task": "weak", "role": "weak", "config": {},
                "step": step}
        (run_dir / "interrupted" / "config.json").write_text(json.dumps(meta))
        write("interrupted", step=step, epoch=0, path=str(run_dir / "interrupted"))
        return 0

    if cancelled():
        return interrupt(start_step)
    for step in range(start_step + 1, total + 1):
        time.sleep(step_s)
        write("step", step=step, epoch=step * 2 // total, lr=1e-4, **{"loss/total": 1.0 / step}, eta_s=1.0)
        if os.environ.get("FAKE_FAIL"):
            print("boom", file=sys.stderr, flush=True)
            return 3
        if step == total // 2:
            write("epoch", step=step, epoch=0, **{"val/mean_m": 4.0, "val/median_m": 3.0}, best=True)
        if cancelled():
            return interrupt(step)
    write("done", step=total, epoch=1, best_epoch=0, best_metric=4.0, elapsed_s=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
