"""Training jobs for the UI: launch ``python -m geodistill train`` in the background, follow it, cancel it.

A job is a run folder ``<runs>/<name>/`` (see :mod:`geodistill.engine.rundir`) plus two files written
here: ``job.json`` (the command, process id and start time of the latest launch) and ``train.log``
(the process's output). Everything else comes from the trainer's ``events.jsonl``, so runs started by an
earlier app session, or from the command line, are listed and followed the same way.

Cancel writes ``<run>/cancel.request``; the trainer (told where to look by ``$GEODISTILL_CANCEL_FILE``) polls it
before its first step and after every step, then saves ``interrupted/`` and exits. A cancel that arrives while
the trainer is still setting up (generating data, loading models) is therefore queued, never lost, and it
reaches every rank under ``torchrun`` (``python -m torch.distributed.run``). ``force=True`` kills the job's
process group at once. Starting a run that exists or is running is refused before anything is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodistill import settings
from geodistill.config import ExperimentConfig, save_config
from geodistill.engine.events import read_events
from geodistill.engine.rundir import CANCEL_FILE_ENV, CHECKPOINT_KINDS, RunDir, RunError

logger = logging.getLogger("geodistill.engine.jobs")

JOB_FILE = "job.json"
LOG_FILE = "train.log"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

RUNNING, CANCELLING, DONE, INTERRUPTED, CANCELLED, FAILED, READY = (
    "running", "cancelling", "done", "interrupted", "cancelled", "failed", "ready")


@dataclass
class RunStatus:
    """What the UI shows about one run, read from its folder."""

    name: str
    path: Path
    state: str                      # running | cancelling | done | interrupted | cancelled | failed | ready
    pid: int | None = None
    task: str = ""
    step: int = 0
    total_steps: int | None = None
    epoch: int = 0
    progress: float = 0.0           # share of total_steps done, [0, 1]
    eta_s: float | None = None
    loss: float | None = None       # latest loss/total
    val_mean_m: float | None = None
    val_median_m: float | None = None
    message: str = ""               # last error or exit note
    checkpoints: list[str] = field(default_factory=list)  # kinds present: last, best, interrupted
    started: float | None = None    # Unix time of the latest launch

    @property
    def active(self) -> bool:
        return self.state in (RUNNING, CANCELLING)

    def summary(self) -> str:
        """One line for a list or a status box."""
        parts = [f"{self.name}: {self.state}"]
        if self.total_steps:
            parts.append(f"step {self.step}/{self.total_steps} ({100 * self.progress:.0f}%)")
        elif self.step:
            parts.append(f"step {self.step}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.val_mean_m is not None:
            parts.append(f"val mean {self.val_mean_m:.2f} m")
        if self.active and self.eta_s is not None:
            parts.append(f"eta {self.eta_s:.0f} s")
        if self.message:
            parts.append(self.message)
        return ", ".join(parts)


def check_run_name(name: str) -> str:
    """Return ``name`` if it is a usable folder name (letters, digits, ``.``, ``_``, ``-``), else raise RunError."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RunError(f"run name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit")
    return name


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _process_start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid from ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces; fields after it are space-separated
    return int(stat.rsplit(")", 1)[1].split()[19])


def _pid_alive(pid: int, start_ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start_ticks is not None:
        now_ticks = _process_start_ticks(pid)
        if now_ticks is not None and now_ticks != start_ticks:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state != "Z"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _validation_metric(event: dict, metric: str) -> float | None:
    """``val/<metric>``, else the student's (``val/student/<metric>``), else any role's."""
    for key in (f"val/{metric}", f"val/student/{metric}"):
        if _number(event.get(key)) is not None:
            return _number(event[key])
    for key, value in event.items():
        if key.startswith("val/") and key.endswith(f"/{metric}") and _number(value) is not None:
            return _number(value)
    return None


class JobManager:
    """Launches, lists, follows and cancels training runs under a runs folder.

    Args:
        runs_root: folder of the runs (default: :func:`geodistill.settings.runs_dir`, read on every use).
        python: the interpreter that runs the trainer (default: this one).
    """

    def __init__(self, runs_root: str | Path | None = None, python: str | None = None) -> None:
        self._runs_root = Path(runs_root) if runs_root is not None else None
        self.python = python or sys.executable
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.RLock()

    @property
    def root(self) -> Path:
        return self._runs_root if self._runs_root is not None else settings.runs_dir()

    def run_dir(self, name: str) -> RunDir:
        return RunDir(self.root / check_run_name(name))

    def unique_name(self, base: str) -> str:
        """``base`` if no run has it yet, else ``base-2``, ``base-3``, ..."""
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._") or "run"
        base = base[:56]
        name, counter = base, 2
        while (self.root / name).exists():
            name, counter = f"{base}-{counter}", counter + 1
        return name

    def prepare(self, config: ExperimentConfig, name: str | None = None) -> RunDir:
        """Create ``<runs>/<name>/config.yaml`` for a new run (``config.name`` is set to the name).

        Raises:
            RunError: the name is taken by a run that is running or was launched before; nothing is written.
        """
        name = check_run_name(name or config.name or self.unique_name("run"))
        run = self.run_dir(name)
        with self._lock:
            if self.status(name).active:
                raise RunError(f"run {name} is already running; choose another name (nothing was changed)")
            if run.has_history() or (run.path / JOB_FILE).exists():
                raise RunError(f"{run.path} already holds a run; resume it, or choose another name")
            config.name = name
            run.path.mkdir(parents=True, exist_ok=True)
            save_config(config, run.config_path)
        return run

    def command(self, name: str, gpus: int = 1, resume: bool = False) -> list[str]:
        """The command line that trains run ``name``."""
        run = self.run_dir(name)
        train_args = ["-m", "geodistill", "train", "--config", str(run.config_path), "--run-dir", str(run.path)]
        if resume:
            train_args.append("--resume")
        if gpus > 1:
            return [self.python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
                    *train_args]
        return [self.python, *train_args]

    def start(self, config: ExperimentConfig, name: str | None = None, gpus: int = 1) -> RunStatus:
        """Prepare a new run from ``config`` and launch it (a refused start changes nothing on disk)."""
        if gpus < 1:
            raise RunError(f"the number of GPUs must be at least 1, got {gpus}")
        with self._lock:
            run = self.prepare(config, name)
            return self.launch(run.path.name, gpus=gpus)

    def launch(self, name: str, gpus: int = 1, resume: bool = False) -> RunStatus:
        """Start the trainer for an existing run folder in the background.

        Raises:
            RunError: the run is missing, already running, or has nothing to resume.
        """
        if gpus < 1:
            raise RunError(f"the number of GPUs must be at least 1, got {gpus}")
        with self._lock:
            run = self.run_dir(name)
            if not run.config_path.is_file():
                raise RunError(f"{run.config_path} is missing; create the run first")
            if self.status(name).active:
                raise RunError(f"run {name} is already running")
            if resume:
                run.newest_checkpoint()
            elif run.has_history():
                raise RunError(f"{run.path} already holds a run; resume it instead of starting it again")
            command = self.command(name, gpus, resume)
            run.cancel_path.unlink(missing_ok=True)  # a cancel of an earlier launch does not stop this one
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            env[CANCEL_FILE_ENV] = str(run.cancel_path)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.REPO_ROOT), env.get("PYTHONPATH")]))
            with open(run.path / LOG_FILE, "ab") as log:
                log.write(f"\n$ {' '.join(command)}\n".encode())
                log.flush()
                # A session of its own: Ctrl-C in the app's terminal does not reach the trainer, and the
                # trainer outlives an app restart.
                process = subprocess.Popen(command, cwd=settings.REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self._processes[name] = process
            _write_json_atomic(run.path / JOB_FILE, {
                "pid": process.pid, "start_ticks": _process_start_ticks(process.pid), "command": command,
                "gpus": gpus, "resume": resume, "started": time.time(),
            })
        logger.info("launched run %s (pid %d): %s", name, process.pid, " ".join(command))
        return self.status(name)

    def _job(self, run: RunDir) -> dict:
        try:
            job = json.loads((run.path / JOB_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return job if isinstance(job, dict) else {}

    def _alive(self, name: str, job: dict) -> bool:
        process = self._processes.get(name)
        if process is not None and process.pid == job.get("pid"):
            if process.poll() is None:
                return True
            if "returncode" not in job:
                job["returncode"] = process.returncode
                _write_json_atomic(self.run_dir(name).path / JOB_FILE, job)
            return False
        pid = job.get("pid")
        return isinstance(pid, int) and "returncode" not in job and _pid_alive(pid, job.get("start_ticks"))

    def cancel(self, name: str, force: bool = False) -> RunStatus:
        """Ask a running job to stop: it saves ``interrupted/`` after its current step, or as soon as its setup
        ends (the request is queued in ``cancel.request`` until then). ``force`` kills it at once."""
        run = self.run_dir(name)
        with self._lock:
            job = self._job(run)
            if not self._alive(name, job):
                return self.status(name)
            pid = int(job["pid"])
            if force:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    return self.status(name)
                job["killed"] = True
            else:
                _write_json_atomic(run.cancel_path, {"requested": time.time(), "pid": pid})
            job.setdefault("cancel_requested", time.time())
            _write_json_atomic(run.path / JOB_FILE, job)
        logger.info("%s run %s (pid %d)", "killed" if force else "asked to stop", name, pid)
        return self.wait(name, 2.0) if force else self.status(name)

    def wait(self, name: str, timeout_s: float, poll_s: float = 0.2) -> RunStatus:
        """Block until the run is no longer active or ``timeout_s`` passes; return its status."""
        deadline = time.monotonic() + timeout_s
        status = self.status(name)
        while status.active and time.monotonic() < deadline:
            time.sleep(poll_s)
            status = self.status(name)
        return status

    def events(self, name: str) -> list[dict]:
        return read_events(self.run_dir(name).events_path)

    def status(self, name: str, events: list[dict] | None = None) -> RunStatus:
        """The state and progress of run ``name``, from ``job.json`` and ``events.jsonl``."""
        run = self.run_dir(name)
        job = self._job(run)
        events = self.events(name) if events is None else events
        alive = self._alive(name, job)
        status = RunStatus(name=name, path=run.path, state=READY, pid=job.get("pid") if alive else None,
                           started=job.get("started"))
        status.checkpoints = [k for k in CHECKPOINT_KINDS if (run.checkpoint(k) / "config.json").is_file()]
        final = None
        for event in events:
            kind = event.get("event")
            if kind == "start":
                status.task = str(event.get("task", status.task))
                status.total_steps = int(event["total_steps"]) if _number(event.get("total_steps")) else None
            elif kind == "step":
                status.loss = _number(event.get("loss/total"))
                status.eta_s = _number(event.get("eta_s"))
            elif kind == "epoch":
                status.val_mean_m = _validation_metric(event, "mean_m")
                status.val_median_m = _validation_metric(event, "median_m")
            if kind in ("done", "interrupted", "error"):
                final = event
            elif kind == "start":
                final = None
            if _number(event.get("step")) is not None:
                status.step = int(event["step"])
            if _number(event.get("epoch")) is not None:
                status.epoch = int(event["epoch"])
        if status.total_steps:
            status.progress = min(1.0, status.step / status.total_steps)
        if alive:
            status.state = CANCELLING if "cancel_requested" in job else RUNNING
            if status.state == CANCELLING:
                waited = time.time() - float(job["cancel_requested"])
                status.message = (f"cancel requested {waited:.0f} s ago: it stops after the current step, or once "
                                  "its setup (data, models) is done; Cancel again stops it at once without saving")
        elif final is not None:
            status.state = {"done": DONE, "interrupted": INTERRUPTED}.get(final["event"], FAILED)
            status.message = str(final.get("message", "")) if final["event"] == "error" else ""
            if status.state == DONE:
                status.progress = 1.0
        elif "cancel_requested" in job:
            status.state = CANCELLED
            status.message = ("stopped at once, without saving the steps since the last checkpoint" if job.get("killed")
                              else "stopped before it could save a checkpoint")
        elif job:
            status.state = FAILED
            code = job.get("returncode")
            status.message = (f"the trainer exited with status {code}" if code is not None
                              else "the trainer stopped without a final event") + f"; see {run.path / LOG_FILE}"
        return status

    def list_runs(self) -> list[RunStatus]:
        """Every run folder under the runs root (newest first), including those of earlier sessions."""
        if not self.root.is_dir():
            return []
        runs = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or not NAME_PATTERN.match(folder.name):
                continue
            marker = next((folder / f for f in ("events.jsonl", "config.yaml") if (folder / f).is_file()), None)
            if marker is not None:
                runs.append((marker.stat().st_mtime, folder.name))
        return [self.status(name) for _, name in sorted(runs, reverse=True)]

    def log_tail(self, name: str, max_lines: int = 200, max_bytes: int = 65536) -> str:
        """The last lines of the run's ``train.log`` (empty when there is none)."""
        path = self.run_dir(name).path / LOG_FILE
        try:
            with path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - max_bytes))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        # tqdm redraws its bar with carriage returns; keep only the latest state of each line
        lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
        return "\n".join(lines[-max_lines:])

    def checkpoint(self, name: str, kind: str = "best") -> Path | None:
        """The run's ``best/`` (or another kind) checkpoint folder if it exists."""
        folder = self.run_dir(name).checkpoint(kind)
        return folder if (folder / "config.json").is_file() else None
