"""Conversion jobs (official Hub weights or a local checkpoint folder) run one at a time, no Qt.

The window and the CLI both drive this: add a job, watch snapshots (stage, bytes, speed, ETA),
pause (downloads are kept), resume (downloads resume, the conversion starts over) or cancel
(everything the job wrote is deleted). A model is registered only once its file is verified.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from app import paths
from app.convert.errors import ConvertCancelled
from app.convert.progress import Progress, Reporter
from app.convert.quantize import parse_quant
from app.errors import UserError
from app.hub.client import RetryPolicy
from app.hub.errors import DownloadStopped, NotFoundError
from app.hub.official import (
    JobControl,
    find_installed,
    inspect_repo,
    install_from_folder,
    install_from_hub,
)

log = logging.getLogger(__name__)
TokenSource = Callable[[], str | None]


class ConvertState(StrEnum):
    QUEUED = "queued"
    RESOLVING = "resolving"
    DOWNLOADING = "downloading"
    CHECKING = "checking"
    CONVERTING = "converting"
    QUANTIZING = "quantizing"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (ConvertState.DONE, ConvertState.FAILED, ConvertState.CANCELLED)

    @property
    def settled(self) -> bool:
        return self.finished or self is ConvertState.PAUSED


STAGE_STATES = {"download": ConvertState.DOWNLOADING, "check": ConvertState.CHECKING,
                "convert": ConvertState.CONVERTING, "quantize": ConvertState.QUANTIZING,
                "verify": ConvertState.VERIFYING}


@dataclass(frozen=True)
class ConvertSnapshot:
    """What a progress row shows for one job."""

    job_id: str
    source: str  # repo id or folder
    quant: str
    state: ConvertState
    stage: str = ""
    done: int = 0
    total: int = 0
    speed: float = 0.0
    eta: float | None = None
    message: str = ""
    error: str | None = None
    name: str | None = None  # the registered model's name when DONE
    path: Path | None = None
    folder: bool = False  # a local checkpoint folder (no download stage)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def title(self) -> str:
        shown = Path(self.source).name if self.folder else self.source
        return f"{shown} → {self.quant}"


class _Job:
    def __init__(self, job_id: str, source: str, quant: str, *, folder: bool, keep_source: bool,
                 revision: str) -> None:
        self.snap = ConvertSnapshot(job_id, source, quant, ConvertState.QUEUED, folder=folder)
        self.folder, self.keep_source, self.revision = folder, keep_source, revision
        self.control = JobControl()
        self.name: str | None = None  # a display name chosen by the user (folder imports)


class ConvertManager:
    """Runs conversion jobs on one worker thread; every method is thread-safe.

    Listeners get snapshots on the worker thread (a GUI forwards them to its own thread).
    """

    def __init__(self, *, token: TokenSource | None = None, retry: RetryPolicy | None = None,
                 on_update: Callable[[ConvertSnapshot], None] | None = None,
                 update_interval: float = 0.2) -> None:
        if token is None:
            from app.hub import token_store

            token = token_store.get_token
        self._token = token
        self._retry = retry
        self._interval = update_interval
        self._listeners = [on_update] if on_update else []
        self._jobs: dict[str, _Job] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._worker: threading.Thread | None = None
        self._closing = False

    # ---- public API ---------------------------------------------------------------------------
    def add_repo(self, repo_id: str, quant: str, *, keep_source: bool = False,
                 revision: str = "main") -> str:
        return self._add(repo_id, quant, folder=False, keep_source=keep_source, revision=revision)

    def add_folder(self, folder: str | Path, quant: str, *, name: str | None = None) -> str:
        """Convert a local checkpoint folder (only read) into the models folder."""
        return self._add(str(folder), quant, folder=True, keep_source=True, revision="", name=name)

    def pause(self, job_id: str) -> None:
        """Stop soon, keeping downloaded files; a paused job resumes with resume()."""
        self._stop(job_id, "paused")

    def cancel(self, job_id: str) -> None:
        """Stop and delete whatever the job wrote (never a user's checkpoint folder)."""
        self._stop(job_id, "cancelled")

    def resume(self, job_id: str) -> None:
        with self._cond:
            job = self._job(job_id)
            if job.snap.state not in (ConvertState.PAUSED, ConvertState.FAILED):
                return
            job.control.reset()
            job.snap = replace(job.snap, state=ConvertState.QUEUED, error=None, speed=0.0, eta=None)
        self._enqueue(job)

    def snapshot(self, job_id: str) -> ConvertSnapshot:
        with self._cond:
            return self._job(job_id).snap

    def snapshots(self) -> list[ConvertSnapshot]:
        with self._cond:
            return [j.snap for j in self._jobs.values()]

    def subscribe(self, listener: Callable[[ConvertSnapshot], None]) -> None:
        with self._cond:
            self._listeners.append(listener)

    def wait(self, job_id: str, timeout: float | None = None) -> ConvertSnapshot:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._job(job_id).snap.state.settled:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            return self._job(job_id).snap

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Pause what runs (downloads are kept) and stop the worker."""
        with self._cond:
            self._closing = True
            for job in self._jobs.values():
                if not job.snap.state.settled:
                    job.control.pause()
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    # ---- internals ----------------------------------------------------------------------------
    def _add(self, source: str, quant: str, *, folder: bool, keep_source: bool, revision: str,
             name: str | None = None) -> str:
        quant = parse_quant(quant)  # UserError listing the valid ones
        with self._cond:
            for job in self._jobs.values():
                s = job.snap
                if (s.source, s.quant) == (source, quant) and not s.state.finished:
                    if s.state is not ConvertState.PAUSED:
                        return s.job_id
                    break
            else:
                job = _Job(f"c{next(self._ids)}", source, quant, folder=folder,
                           keep_source=keep_source, revision=revision)
                self._jobs[job.snap.job_id] = job
            job.control.reset()
            job.name = name
            job.snap = replace(job.snap, state=ConvertState.QUEUED, error=None)
        self._enqueue(job)
        return job.snap.job_id

    def _job(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise UserError(f"No conversion job with id {job_id}.") from None

    def _stop(self, job_id: str, reason: str) -> None:
        with self._cond:
            job = self._job(job_id)
            state = job.snap.state
            if state.finished or (state is ConvertState.PAUSED and reason == "paused"):
                return
            if state in (ConvertState.QUEUED, ConvertState.PAUSED):
                if job_id in self._queue:
                    self._queue.remove(job_id)
                final = ConvertState.CANCELLED if reason == "cancelled" else ConvertState.PAUSED
                job.snap = replace(job.snap, state=final, speed=0.0, eta=None)
                forget = reason == "cancelled" and not job.folder
            else:
                (job.control.cancel if reason == "cancelled" else job.control.pause)()
                return
        if forget:
            from app.hub.official import remove_sources

            remove_sources(job.snap.source)
        self._emit(job)

    def _enqueue(self, job: _Job) -> None:
        self._emit(job)
        with self._cond:
            if job.snap.state is ConvertState.QUEUED and job.snap.job_id not in self._queue:
                self._queue.append(job.snap.job_id)
                if self._worker is None or not self._worker.is_alive():
                    self._closing = False
                    self._worker = threading.Thread(target=self._loop, name="conversions",
                                                    daemon=True)
                    self._worker.start()
                self._cond.notify_all()

    def _emit(self, job: _Job) -> None:
        with self._cond:
            snap = job.snap
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(snap)
            except Exception:
                log.exception("conversion listener failed")

    def _set(self, job: _Job, **changes: object) -> None:
        with self._cond:
            job.snap = replace(job.snap, **changes)  # type: ignore[arg-type]
        self._emit(job)

    def _progress(self, job: _Job, p: Progress) -> None:
        self._set(job, state=STAGE_STATES.get(p.stage, job.snap.state), stage=p.stage, done=p.done,
                  total=p.total, speed=p.rate, eta=p.eta, message=p.message)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._jobs[self._queue.popleft()]
                job.snap = replace(job.snap, state=ConvertState.RESOLVING, message="")
            self._emit(job)
            self._run(job)

    def _run(self, job: _Job) -> None:
        snap = job.snap
        reporter = Reporter(lambda p: self._progress(job, p), job.control.event, self._interval)
        try:
            if job.folder:
                model = install_from_folder(snap.source, snap.quant, reporter=reporter, name=job.name)
            elif (known := find_installed(repo_id=snap.source, quant=snap.quant)) is not None:
                self._set(job, message=f"{known.name} is already installed.")
                model = known
            else:
                token = self._token()
                remote = inspect_repo(snap.source, token=token, revision=job.revision,
                                      retry=self._retry)
                if remote is None:
                    raise NotFoundError(
                        f"{snap.source} holds no Llama checkpoint to convert (expected "
                        "config.json + *.safetensors or params.json + consolidated.00.pth).")
                model = install_from_hub(remote, snap.quant, token=token, control=job.control,
                                         reporter=reporter, keep_source=job.keep_source,
                                         retry=self._retry,
                                         on_notice=lambda text: self._set(job, message=text))
        except (DownloadStopped, ConvertCancelled) as stop:
            reason = stop.reason if isinstance(stop, DownloadStopped) else "cancelled"
            state = ConvertState.PAUSED if reason == "paused" else ConvertState.CANCELLED
            self._set(job, state=state, speed=0.0, eta=None)
        except UserError as err:
            self._set(job, state=ConvertState.FAILED, error=str(err), speed=0.0, eta=None)
        except Exception as err:
            log.exception("conversion of %s failed", snap.source)
            self._set(job, state=ConvertState.FAILED, speed=0.0, eta=None,
                      error=f"unexpected {type(err).__name__}; details in {paths.logs_dir()}")
        else:
            self._set(job, state=ConvertState.DONE, name=model.name, path=model.path, speed=0.0,
                      eta=0.0, done=job.snap.total)
