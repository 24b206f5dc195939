"""One job queue for downloads and conversions (no Qt): a worker thread, snapshots, listeners,
pause / resume / cancel, and the one way a job's failure becomes a message."""

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
from typing import Any, ClassVar, Generic, TypeVar

from app import paths
from app.convert.errors import ConvertCancelled
from app.errors import UserError
from app.hub.download import Control
from app.hub.errors import DownloadStopped, HubError

log = logging.getLogger(__name__)

# The states every queue has; each queue's StrEnum adds its own working states between them.
QUEUED, RESOLVING, PAUSED = "queued", "resolving", "paused"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"


class JobStateBase(StrEnum):
    """Base of each queue's state enum (its members must include the six shared values)."""

    @property
    def finished(self) -> bool:
        return self.value in (DONE, FAILED, CANCELLED)

    @property
    def settled(self) -> bool:
        """Nothing will happen to the job until someone acts (done, failed, cancelled, paused)."""
        return self.finished or self.value == PAUSED


@dataclass(frozen=True)
class JobProgress:
    """What every progress row shows for a job: state, bytes, speed, ETA and the last word."""

    job_id: str
    state: Any  # the queue's JobStateBase member
    done: int = 0
    total: int = 0  # 0: not known yet
    speed: float = 0.0  # bytes per second over the last few seconds
    eta: float | None = None  # seconds
    message: str = ""  # latest notice (resuming, retrying, changed upstream, ...)
    error: str | None = None  # the actionable message when FAILED
    path: Path | None = None  # the installed file when DONE

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


SnapT = TypeVar("SnapT", bound=JobProgress)


class QueuedJob(Generic[SnapT]):
    """A job's snapshot and its pause/cancel control; queues subclass it for their own fields."""

    def __init__(self, snap: SnapT, control: Control | None = None) -> None:
        self.snap = snap
        self.control = control or Control()
        self.last_emit = 0.0


JobT = TypeVar("JobT", bound=QueuedJob[Any])


class JobQueue(Generic[SnapT, JobT]):
    """Runs queued jobs one at a time on a worker thread; every public method is thread-safe.

    Listeners get snapshots on the worker thread (a GUI forwards them to its own thread);
    ``snapshots()`` can be polled instead. Subclasses implement ``_work`` (and ``_forget``).
    """

    states: ClassVar[type[JobStateBase]]
    what: ClassVar[str] = "job"  # in "No job with id 7."
    thread_name: ClassVar[str] = "jobs"
    id_prefix: ClassVar[str] = ""

    def __init__(self, *, on_update: Callable[[SnapT], None] | None = None,
                 update_interval: float = 0.1) -> None:
        self._listeners: list[Callable[[SnapT], None]] = [on_update] if on_update else []
        self._interval = update_interval
        self._jobs: dict[str, JobT] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._worker: threading.Thread | None = None
        self._closing = False

    # ---- public API ---------------------------------------------------------------------------
    def pause(self, job_id: str) -> None:
        """Stop soon, keeping what was downloaded; resume() continues from there."""
        with self._cond:
            job = self._job(job_id)
            if job.snap.state.value == QUEUED:
                self._unqueue(job_id)
                job.snap = replace(job.snap, state=self.states(PAUSED), speed=0.0, eta=None)
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
            if job.snap.state.value not in (PAUSED, FAILED):
                return
            self._requeue(job)
        self._enqueue(job)

    def cancel(self, job_id: str) -> None:
        """Stop and delete whatever the job wrote (never a finished model or a user's folder)."""
        with self._cond:
            job = self._job(job_id)
            state = job.snap.state
            if state.finished:
                return
            if state.value not in (QUEUED, PAUSED):
                job.control.cancel()
                return
            self._unqueue(job_id)
            job.snap = replace(job.snap, state=self.states(CANCELLED), speed=0.0, eta=None)
        self._forget(job)
        self._emit(job, force=True)

    def snapshot(self, job_id: str) -> SnapT:
        with self._cond:
            snap: SnapT = self._job(job_id).snap
            return snap

    def snapshots(self) -> list[SnapT]:
        with self._cond:
            return [j.snap for j in self._jobs.values()]

    def subscribe(self, listener: Callable[[SnapT], None]) -> None:
        with self._cond:
            self._listeners.append(listener)

    def wait(self, job_id: str, timeout: float | None = None) -> SnapT:
        """Block until the job is done, failed, cancelled or paused (or ``timeout`` passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._job(job_id).snap.state.settled:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            snap: SnapT = self._job(job_id).snap
            return snap

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Pause whatever runs (downloads are kept) and stop the worker."""
        with self._cond:
            self._closing = True
            for job in self._jobs.values():
                if not job.snap.state.settled and job.snap.state.value != QUEUED:
                    job.control.pause()
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    # ---- for subclasses -----------------------------------------------------------------------
    def _work(self, job: JobT) -> dict[str, Any]:
        """Do the job on the worker thread; returns the snapshot changes that go with DONE."""
        raise NotImplementedError

    def _forget(self, job: JobT) -> None:
        """Delete what a job cancelled while queued or paused left behind."""

    def _stopped(self, job: JobT, reason: str) -> None:
        """Called on the worker thread when a running job stopped ("paused" or "cancelled")."""

    def _submit(self, match: Callable[[SnapT], bool], create: Callable[[str], JobT],
                prepare: Callable[[JobT], None] | None = None) -> JobT:
        """Queue a job: the one ``match`` finds (requeued when paused or failed; returned as it
        is when queued or running), else ``create(job_id)``. ``prepare`` runs under the lock on
        a job about to be (re)queued."""
        with self._cond:
            for job in self._jobs.values():
                if match(job.snap):
                    if job.snap.state.value not in (PAUSED, FAILED):
                        return job  # queued or running already
                    self._requeue(job)
                    break
            else:
                job = create(f"{self.id_prefix}{next(self._ids)}")
                self._jobs[job.snap.job_id] = job
            if prepare is not None:
                prepare(job)
        self._enqueue(job)
        return job

    def _set(self, job: JobT, force: bool = True, **changes: Any) -> None:
        with self._cond:
            job.snap = replace(job.snap, **changes)
        self._emit(job, force=force)

    # ---- internals ----------------------------------------------------------------------------
    def _job(self, job_id: str) -> JobT:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise HubError(f"No {self.what} with id {job_id}.") from None

    def _unqueue(self, job_id: str) -> None:
        with contextlib.suppress(ValueError):
            self._queue.remove(job_id)

    def _requeue(self, job: JobT) -> None:
        job.control.reset()
        job.snap = replace(job.snap, state=self.states(QUEUED), error=None, speed=0.0, eta=None)

    def _enqueue(self, job: JobT) -> None:
        """Announce QUEUED first, then hand the job to the worker (so updates stay in order)."""
        self._emit(job, force=True)
        with self._cond:
            job_id = job.snap.job_id
            if job.snap.state.value == QUEUED and job_id not in self._queue:
                self._queue.append(job_id)
                if self._worker is None or not self._worker.is_alive():
                    self._closing = False
                    self._worker = threading.Thread(target=self._loop, name=self.thread_name,
                                                    daemon=True)
                    self._worker.start()
                self._cond.notify_all()

    def _emit(self, job: JobT, *, force: bool = False) -> None:
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
                log.exception("%s listener failed", self.what)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._jobs[self._queue.popleft()]
                job.snap = replace(job.snap, state=self.states(RESOLVING), message="")
            self._emit(job, force=True)
            self._run(job)

    def _run(self, job: JobT) -> None:
        idle: dict[str, Any] = {"speed": 0.0, "eta": None}
        try:
            changes = self._work(job)
        except (DownloadStopped, ConvertCancelled) as stop:
            reason = stop.reason if isinstance(stop, DownloadStopped) else CANCELLED
            self._stopped(job, reason)
            self._set(job, state=self.states(PAUSED if reason == PAUSED else CANCELLED), **idle)
        except UserError as err:
            self._set(job, state=self.states(FAILED), error=str(err), **idle)
        except Exception as err:
            log.exception("%s %s failed", self.what, job.snap.job_id)
            self._set(job, state=self.states(FAILED), **idle,
                      error=f"unexpected {type(err).__name__}; details in {paths.logs_dir()}")
        else:
            self._set(job, **{**idle, "eta": 0.0, **changes, "state": self.states(DONE)})
