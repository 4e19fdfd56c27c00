"""``python -m cxr_pneumonia.jobs.runner JOB_ID``: the process that runs one job, outside the web worker.

It claims its queued job, runs the job's `cxr` commands one after the other (their output is the
job's log; ``[progress F] stage`` lines move its progress), sends a heartbeat meanwhile, registers a
written package as a challenger when the registry extra is installed (never as champion), and ends
the job as succeeded or failed with the reason. SIGTERM ends it as interrupted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal

# bandit B404 accepted: our own CLI, arguments from the validated job, no shell
import subprocess  # nosec B404
import sys
import threading
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Any

from .. import logs
from ..config import Settings
from ..errors import CXRError
from ..package import ModelPackage
from ..store.facade import Store
from . import queue
from .kinds import CLI, Plan, plan

PROGRESS_LINE = re.compile(r"^\[progress (\d(?:\.\d+)?)\] (.*)$")
EPOCH_LINE = re.compile(r"\bepoch (\d+)\b")
ERROR_LINE = re.compile(r"^error\s+(.*)$")
CHALLENGER = "challenger"
WORK_SHARE = 0.9  # of the progress bar: the job's own commands; the rest is registering


class Interrupted(Exception):
    pass


class Runner:
    def __init__(self, store: Store, settings: Settings, job_id: str) -> None:
        self.store = store
        self.settings = settings
        self.job_id = job_id
        self.work_dir = settings.resolved_jobs_dir / job_id
        self.tail: deque[str] = deque(maxlen=settings.job_log_lines)
        self.progress: float | None = 0.0
        self.stage = "starting"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._child: subprocess.Popen[str] | None = None
        self._interrupted = False

    # ---- the log and the heartbeat -------------------------------------------------------------
    def say(self, line: str, progress: float | None = None, stage: str | None = None) -> None:
        with self._lock:
            self.tail.append(line)
            if progress is not None:
                self.progress = progress
            if stage is not None:
                self.stage = stage
        with (self.work_dir / "job.log").open("a") as log:
            log.write(line + "\n")

    def beat(self) -> None:
        with self._lock:
            log, progress, stage = "\n".join(self.tail), self.progress, self.stage
        queue.report(self.store, self.job_id, progress=progress, stage=stage, log=log)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.settings.job_heartbeat_seconds):
            try:
                self.beat()
            except Exception as exc:  # a database hiccup must not end the job; the next beat retries
                self.say(f"(heartbeat failed: {type(exc).__name__})")

    # ---- running -------------------------------------------------------------------------------
    def interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        self._interrupted = True
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()

    def run(self) -> int:
        if not queue.claim(self.store, self.job_id):
            return 1  # not queued: another runner has it, or it ended
        job = queue.get(self.store, self.job_id)
        beating = threading.Thread(target=self._heartbeat, name="job-heartbeat", daemon=True)
        beating.start()
        try:
            result = self._execute(job.kind, plan(job.kind, job.params, self.work_dir), job.params)
        except Interrupted:
            return self._end(queue.INTERRUPTED, error="interrupted: the job's process was stopped")
        except CXRError as exc:
            return self._end(queue.FAILED, error=exc.detail)
        except Exception as exc:  # anything else still ends the job, with what went wrong
            return self._end(queue.FAILED, error=f"{type(exc).__name__}: {exc}")
        finally:
            self._stop.set()
        return self._end(queue.SUCCEEDED, result=result)

    def _end(self, status: str, *, error: str | None = None, result: dict[str, Any] | None = None) -> int:
        if error:
            self.say(error)
        with self._lock:
            log = "\n".join(self.tail)
        queue.finish(self.store, self.job_id, status, error=error, result=result, log=log)
        return 0 if status == queue.SUCCEEDED else 1

    def _execute(self, kind: str, steps: Plan, params: dict[str, Any]) -> dict[str, Any]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for command in steps.commands:
            self._command(command, epochs=params.get("epochs"))
        result: dict[str, Any] = {"kind": kind, "work_dir": str(self.work_dir.resolve())}
        if steps.result_json is not None and steps.result_json.is_file():
            result.update(json.loads(steps.result_json.read_text()))
        if steps.package_dir is None:
            result["output"] = str((self.work_dir / "tune").resolve())
            return result
        package = ModelPackage.open(steps.package_dir)  # verified: what is reported is what exists
        manifest = package.manifest
        result.update(
            package=str(package.path.resolve()),
            model_id=manifest.model_id,
            digest=manifest.digest,
            parent=manifest.parent,
        )
        if "evaluation" not in result:
            result["evaluation"] = {"cases": "validation", "metrics": manifest.metrics}
        result["registry"] = self._register(package.path)
        return result

    def _command(self, command: list[str], epochs: int | None = None) -> None:
        self.say("$ cxr " + " ".join(command[len(CLI) :]), stage=command[len(CLI)])
        self.beat()
        # bandit B603 accepted: fixed program, validated arguments
        self._child = subprocess.Popen(  # nosec B603
            command,
            cwd=self.work_dir,
            env={**os.environ, "COLUMNS": "400"},  # rich would wrap an error message at 80 columns
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        assert self._child.stdout is not None
        last_error = None
        for raw in self._child.stdout:
            line = raw.rstrip()
            progress, stage = self._progress_of(line, epochs)
            error = ERROR_LINE.match(line)
            if error:
                last_error = error.group(1)
            self.say(line, progress, stage)
        code = self._child.wait()
        if self._interrupted:
            raise Interrupted
        if code != 0:
            raise CXRError(last_error or f"`cxr {command[len(CLI)]}` exited with {code}", code="job_failed")

    @staticmethod
    def _progress_of(line: str, epochs: int | None) -> tuple[float | None, str | None]:
        marked = PROGRESS_LINE.match(line)
        if marked:
            return float(marked.group(1)) * WORK_SHARE, marked.group(2)
        epoch = EPOCH_LINE.search(line) if epochs else None
        if epoch and epochs:
            done = min(int(epoch.group(1)), epochs)
            return done / epochs * WORK_SHARE, f"epoch {done} of {epochs}"
        return None, None

    def _register(self, package_dir: Path) -> dict[str, Any]:
        """The new package as a challenger of the registered model; never champion."""
        if importlib.util.find_spec("mlflow") is None:
            self.say("not registered: the registry extra (MLflow) is not installed")
            return {"registered": False, "reason": "the registry extra (MLflow) is not installed"}
        self.say("registering the package as a challenger", progress=WORK_SHARE, stage="registering")
        out = self.work_dir / "registered.json"
        command = [*CLI, "models", "register", str(package_dir), "--alias", CHALLENGER, "--json"]
        with out.open("w") as sink:
            self.say("$ cxr " + " ".join(command[len(CLI) :]))
            # bandit B603 accepted: fixed program and arguments
            done = subprocess.run(  # nosec B603
                command, cwd=self.work_dir, stdout=sink, stderr=subprocess.PIPE, text=True, check=False
            )
        if done.returncode != 0:
            detail = (
                done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            )
            raise CXRError(f"the package was written but registering it failed: {detail}", code="job_failed")
        info = _last_json_object(out.read_text())
        self.say(f"registered {info['name']} version {info['version']} as {CHALLENGER}")
        return {"registered": True, "name": info["name"], "version": info["version"], "alias": CHALLENGER}


def _last_json_object(text: str) -> dict[str, Any]:
    """The JSON object `--json` printed (a library may have printed a line before it)."""
    start = text.rfind("\n{") + 1 if not text.startswith("{") else 0
    value = json.loads(text[start:])
    if not isinstance(value, dict):
        raise CXRError("`cxr models register --json` printed no object", code="job_failed")
    return value


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not re.fullmatch(r"[0-9a-f]{32}", args[0]):
        print("usage: python -m cxr_pneumonia.jobs.runner JOB_ID", file=sys.stderr)
        return 2
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    store = Store.from_settings(settings)
    runner = Runner(store, settings, args[0])
    signal.signal(signal.SIGTERM, runner.interrupt)
    try:
        return runner.run()
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
