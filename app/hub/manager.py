"""A thread-safe download queue (no Qt): pause, resume, cancel, progress snapshots and callbacks."""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from app import paths
from app.errors import UserError
from app.hub.client import RetryPolicy
from app.hub.errors import DownloadStopped, HubError
from app.hub.fetch import JobFiles, fetch_job, forget_job

log = logging.getLogger(__name__)

TokenSource = Callable[[], str | None]


class JobState(StrEnum):
    QUEUED = "queued"
    RESOLVING = "resolving"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    @property
    def settled(self) -> bool:
        """Nothing will happen to the job until someone acts (done, failed, cancelled, paused)."""
        return self.finished or self is JobState.PAUSED


@dataclass(frozen=True)
class JobSnapshot:
    """What a progress bar or the model manager shows for one download."""

    job_id: str
    repo_id: str
    filename: str
    state: JobState
    done: int = 0
    total: int | None = None
    speed: float = 0.0  # bytes per second over the last few seconds
    eta: float | None = None  # seconds
    message: str = ""  # latest notice (resuming, retrying, changed upstream, ...)
    error: str | None = None  # the actionable message when FAILED
    path: Path | None = None  # the installed file when DONE

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class _Job:
    def __init__(self, job_id: str, repo_id: str, filename: str, revision: str) -> None:
        from app.hub.download import Control

        self.snap = JobSnapshot(job_id, repo_id, filename, JobState.QUEUED)
        self.revision = revision
        self.control = Control()
        self.samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self.last_emit = 0.0
        self.files: JobFiles | None = None


class DownloadManager:
    """Runs queued downloads one at a time on a worker thread.

    Every method is thread-safe. ``on_update(snapshot)`` is called from the worker thread (a GUI
    forwards it to its own thread); ``snapshots()`` can be polled instead.
    """

    def __init__(
        self, *, token: TokenSource | None = None, dest_dir: Path | None = None,
        retry: RetryPolicy | None = None, on_update: Callable[[JobSnapshot], None] | None = None,
        register: bool = True, update_interval: float = 0.1,
    ) -> None:
        if token is None:
            from app.hub import token_store

            token = token_store.get_token
        self._token = token
        self._dest_dir = dest_dir
        self._retry = retry or RetryPolicy.from_env()
        self._listeners: list[Callable[[JobSnapshot], None]] = [on_update] if on_update else []
        self._register = register
        self._interval = update_interval
        self._jobs: dict[str, _Job] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._worker: threading.Thread | None = None
        self._closing = False

    # ---- public API -------------------------------------------------------------------------
    def add(self, repo_id: str, filename: str, *, revision: str = "main") -> str:
        """Queue ``filename`` of ``repo_id``; returns the job id (an existing one if queued)."""
        with self._cond:
            for job in self._jobs.values():
                s = job.snap
                if (s.repo_id, s.filename) == (repo_id, filename) and not s.state.finished:
                    if s.state is not JobState.PAUSED:
                        return s.job_id
                    self._requeue(job)
                    break
            else:
                job = _Job(str(next(self._ids)), repo_id, filename, revision)
                self._jobs[job.snap.job_id] = job
        self._enqueue(job)
        return job.snap.job_id

    def pause(self, job_id: str) -> None:
        """Stop after the current chunk, keeping the partial file for a later resume."""
        with self._cond:
            job = self._job(job_id)
            if job.snap.state is JobState.QUEUED:
                with contextlib.suppress(ValueError):
                    self._queue.remove(job_id)
                job.snap = replace(job.snap, state=JobState.PAUSED, speed=0.0, eta=None)
            elif not job.snap.state.settled:
                job.control.pause()
                return
            else:
                return
        self._emit(job, force=True)

    def resume(self, job_id: str) -> None:
        """Queue a paused or failed job again; it continues where it stopped."""
        with self._cond:
            job = self._job(job_id)
            if job.snap.state not in (JobState.PAUSED, JobState.FAILED):
                return
            self._requeue(job)
        self._enqueue(job)

    def cancel(self, job_id: str) -> None:
        """Stop and delete the partial files."""
        with self._cond:
            job = self._job(job_id)
            state = job.snap.state
            if state.finished:
                return
            if state in (JobState.QUEUED, JobState.PAUSED):
                with contextlib.suppress(ValueError):
                    self._queue.remove(job_id)
                job.snap = replace(job.snap, state=JobState.CANCELLED, speed=0.0, eta=None)
                files = job.files
            else:
                job.control.cancel()
                return
        if files is not None:
            forget_job(files)
        self._emit(job, force=True)

    def snapshot(self, job_id: str) -> JobSnapshot:
        with self._cond:
            return self._job(job_id).snap

    def snapshots(self) -> list[JobSnapshot]:
        with self._cond:
            return [j.snap for j in self._jobs.values()]

    def subscribe(self, listener: Callable[[JobSnapshot], None]) -> None:
        with self._cond:
            self._listeners.append(listener)

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot:
        """Block until the job is done, failed, cancelled or paused (or ``timeout`` passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._job(job_id).snap.state.settled:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            return self._job(job_id).snap

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Pause whatever runs (partials are kept) and stop the worker."""
        with self._cond:
            self._closing = True
            for job in self._jobs.values():
                if not job.snap.state.settled and job.snap.state is not JobState.QUEUED:
                    job.control.pause()
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    # ---- internals ----------------------------------------------------------------------------
    def _job(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise HubError(f"No download with id {job_id}.") from None

    def _requeue(self, job: _Job) -> None:
        job.control.reset()
        job.snap = replace(job.snap, state=JobState.QUEUED, error=None, speed=0.0, eta=None)

    def _enqueue(self, job: _Job) -> None:
        """Announce QUEUED first, then hand the job to the worker (so updates stay in order)."""
        self._emit(job, force=True)
        with self._cond:
            job_id = job.snap.job_id
            if job.snap.state is JobState.QUEUED and job_id not in self._queue:
                self._queue.append(job_id)
                self._ensure_worker()
                self._cond.notify_all()

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._closing = False
            self._worker = threading.Thread(target=self._loop, name="downloads", daemon=True)
            self._worker.start()

    def _emit(self, job: _Job, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - job.last_emit < self._interval:
            return
        job.last_emit = now
        with self._cond:
            snap = job.snap
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(snap)
            except Exception:
                log.exception("download listener failed")

    def _set(self, job: _Job, force: bool = True, **changes: object) -> None:
        with self._cond:
            job.snap = replace(job.snap, **changes)  # type: ignore[arg-type]
        self._emit(job, force=force)

    def _progress(self, job: _Job, done: int, total: int) -> None:
        now = time.monotonic()
        job.samples.append((now, done))
        while len(job.samples) > 2 and now - job.samples[0][0] > 5.0:
            job.samples.popleft()
        t0, d0 = job.samples[0]
        speed = (done - d0) / (now - t0) if now - t0 > 0.2 else job.snap.speed
        eta = (total - done) / speed if speed > 0 else None
        self._set(job, force=False, done=done, total=total, speed=speed, eta=eta,
                  state=JobState.DOWNLOADING)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._jobs[self._queue.popleft()]
                job.snap = replace(job.snap, state=JobState.RESOLVING, message="")
            self._emit(job, force=True)
            self._run(job)

    def _run(self, job: _Job) -> None:
        snap = job.snap
        job.samples.clear()
        try:
            token = self._token()
            path = fetch_job(
                snap.repo_id, snap.filename, revision=job.revision, token=token,
                dest_dir=self._dest_dir or paths.models_dir(), control=job.control,
                retry=self._retry, register=self._register,
                on_files=lambda files: setattr(job, "files", files),
                on_progress=lambda done, total: self._progress(job, done, total),
                on_notice=lambda text: self._set(job, message=text),
                on_state=lambda state: self._set(job, state=JobState(state)),
            )
        except DownloadStopped as stop:
            cancelled = stop.reason == "cancelled"
            if cancelled and job.files is not None:
                # download_file only removed the current part's .part: finished parts of a split
                # file and the parts ledger go too (the already-installed file never does).
                forget_job(job.files)
            state = JobState.CANCELLED if cancelled else JobState.PAUSED
            self._set(job, state=state, speed=0.0, eta=None)
        except HubError as err:
            self._set(job, state=JobState.FAILED, error=str(err), speed=0.0, eta=None)
        except Exception as err:
            if not isinstance(err, UserError):
                log.exception("download of %s/%s failed", snap.repo_id, snap.filename)
            self._set(job, state=JobState.FAILED, error=_describe(err), speed=0.0, eta=None)
        else:
            total = job.snap.total or path.stat().st_size
            self._set(job, state=JobState.DONE, path=path, done=total, total=total,
                      speed=0.0, eta=0.0)


def _describe(err: Exception) -> str:
    from app.errors import UserError

    if isinstance(err, UserError):
        return str(err)
    return f"unexpected {type(err).__name__}; details in {paths.logs_dir()}"
