"""The download queue (no Qt): GGUF downloads one at a time, with progress snapshots (see jobs)."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import paths
from app.hub.client import RetryPolicy
from app.hub.fetch import JobFiles, fetch_job, forget_job
from app.hub.jobs import JobProgress, JobQueue, JobStateBase, QueuedJob

log = logging.getLogger(__name__)

TokenSource = Callable[[], str | None]


class JobState(JobStateBase):
    QUEUED = "queued"
    RESOLVING = "resolving"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobSnapshot(JobProgress):
    """What a progress bar or the model manager shows for one download."""

    repo_id: str = ""
    filename: str = ""


class _Job(QueuedJob[JobSnapshot]):
    def __init__(self, job_id: str, repo_id: str, filename: str, revision: str) -> None:
        super().__init__(JobSnapshot(job_id, JobState.QUEUED, repo_id=repo_id, filename=filename))
        self.revision = revision
        self.samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self.files: JobFiles | None = None


class DownloadManager(JobQueue[JobSnapshot, _Job]):
    """Runs queued downloads one at a time on a worker thread (every method is thread-safe)."""

    states = JobState
    what = "download"
    thread_name = "downloads"

    def __init__(
        self, *, token: TokenSource | None = None, dest_dir: Path | None = None,
        retry: RetryPolicy | None = None, on_update: Callable[[JobSnapshot], None] | None = None,
        register: bool = True, update_interval: float = 0.1,
    ) -> None:
        super().__init__(on_update=on_update, update_interval=update_interval)
        if token is None:
            from app.hub import token_store

            token = token_store.get_token
        self._token = token
        self._dest_dir = dest_dir
        self._retry = retry or RetryPolicy.from_env()
        self._register = register

    def add(self, repo_id: str, filename: str, *, revision: str = "main") -> str:
        """Queue ``filename`` of ``repo_id``; returns the job id (an existing one if queued)."""
        job = self._submit(lambda s: (s.repo_id, s.filename) == (repo_id, filename)
                           and not s.state.finished,
                           lambda job_id: _Job(job_id, repo_id, filename, revision))
        return job.snap.job_id

    def _forget(self, job: _Job) -> None:
        if job.files is not None:
            forget_job(job.files)

    def _stopped(self, job: _Job, reason: str) -> None:
        # download_file only removed the current part's .part: finished parts of a split file
        # and the parts ledger go too (the already-installed file never does).
        if reason == "cancelled":
            self._forget(job)

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

    def _work(self, job: _Job) -> dict[str, Any]:
        snap = job.snap
        job.samples.clear()
        path = fetch_job(
            snap.repo_id, snap.filename, revision=job.revision, token=self._token(),
            dest_dir=self._dest_dir or paths.models_dir(), control=job.control,
            retry=self._retry, register=self._register,
            on_files=lambda files: setattr(job, "files", files),
            on_progress=lambda done, total: self._progress(job, done, total),
            on_notice=lambda text: self._set(job, message=text),
            on_state=lambda state: self._set(job, state=JobState(state)),
        )
        total = job.snap.total or path.stat().st_size
        return {"path": path, "done": total, "total": total}
