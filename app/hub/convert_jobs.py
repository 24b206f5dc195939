"""Conversion jobs (official Hub weights, Meta's own download route, or a local checkpoint folder)
run one at a time, no Qt.

The window and the CLI both drive this: add a job, watch snapshots (stage, bytes, speed, ETA),
pause (downloads are kept), resume (downloads resume, the conversion starts over) or cancel
(everything the job wrote is deleted). A model is registered only once its file is verified.
A Meta job holds its signed link in memory only, and drops it when the job ends; a job whose
link has expired waits for a new one (``add_meta`` again, or ``resume(job_id, link=...)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.convert.progress import Progress, Reporter
from app.convert.quantize import parse_quant
from app.hub.client import RetryPolicy
from app.hub.errors import NotFoundError
from app.hub.jobs import CANCELLED, DONE, FAILED, JobProgress, JobQueue, JobStateBase, QueuedJob
from app.hub.meta_catalogue import MetaModel
from app.hub.meta_link import LinkExpiredError, MetaLink
from app.hub.official import (
    JobControl,
    find_installed,
    inspect_repo,
    install_from_folder,
    install_from_hub,
)

log = logging.getLogger(__name__)
TokenSource = Callable[[], str | None]
HUB, FOLDER, META = "hub", "folder", "meta"


class ConvertState(JobStateBase):
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


STAGE_STATES = {"download": ConvertState.DOWNLOADING, "check": ConvertState.CHECKING,
                "convert": ConvertState.CONVERTING, "quantize": ConvertState.QUANTIZING,
                "verify": ConvertState.VERIFYING}


@dataclass(frozen=True)
class ConvertSnapshot(JobProgress):
    """What a progress row shows for one job."""

    source: str = ""  # repo id, folder, or Meta's model id (never the link)
    quant: str = ""
    stage: str = ""
    name: str | None = None  # the registered model's name when DONE
    kind: str = HUB  # HUB, FOLDER or META
    licence: tuple[Path, ...] = ()  # Meta: LICENSE and USE_POLICY.md kept beside the model
    licence_text: str | None = None  # Meta: their text, the first time a licence is kept
    needs_link: bool = False  # Meta: waiting for a new link (the old one expired)

    @property
    def folder(self) -> bool:
        """A local checkpoint folder (no download stage)."""
        return self.kind == FOLDER

    @property
    def title(self) -> str:
        shown = Path(self.source).name if self.folder else self.source
        return f"{shown}{' (Meta)' if self.kind == META else ''} → {self.quant}"


class _Job(QueuedJob[ConvertSnapshot]):
    def __init__(self, job_id: str, source: str, quant: str, *, kind: str, keep_source: bool,
                 revision: str = "", meta: MetaModel | None = None) -> None:
        super().__init__(ConvertSnapshot(job_id, ConvertState.QUEUED, source=source, quant=quant,
                                         kind=kind), JobControl())
        self.control: JobControl
        self.keep_source, self.revision, self.meta = keep_source, revision, meta
        self.name: str | None = None  # a display name chosen by the user (folder imports)
        self.link: MetaLink | None = None  # Meta: in memory, for this job's runs only


class ConvertManager(JobQueue[ConvertSnapshot, _Job]):
    """Runs conversion jobs on one worker thread; every method is thread-safe."""

    states = ConvertState
    what = "conversion job"
    thread_name = "conversions"
    id_prefix = "c"

    def __init__(self, *, token: TokenSource | None = None, retry: RetryPolicy | None = None,
                 on_update: Callable[[ConvertSnapshot], None] | None = None,
                 update_interval: float = 0.2) -> None:
        super().__init__(on_update=on_update, update_interval=update_interval)
        if token is None:
            from app.hub import token_store

            token = token_store.get_token
        self._token = token
        self._retry = retry
        self._reporter_interval = update_interval

    # ---- public API ---------------------------------------------------------------------------
    def add_repo(self, repo_id: str, quant: str, *, keep_source: bool = False,
                 revision: str = "main") -> str:
        return self._add(repo_id, quant, HUB, lambda i, q: _Job(
            i, repo_id, q, kind=HUB, keep_source=keep_source, revision=revision))

    def add_folder(self, folder: str | Path, quant: str, *, name: str | None = None) -> str:
        """Convert a local checkpoint folder (only read) into the models folder."""
        def named(job: _Job) -> None:
            job.name = name

        return self._add(str(folder), quant, FOLDER, lambda i, q: _Job(
            i, str(folder), q, kind=FOLDER, keep_source=True), named)

    def add_meta(self, link: MetaLink, model: MetaModel, quant: str, *,
                 keep_source: bool = False) -> str:
        """Download ``model`` through Meta's signed ``link``, convert and register it.

        A paused (or link-less) job for the same model and quantization continues with this
        link, from the files already downloaded.
        """
        def linked(job: _Job) -> None:
            job.link, job.keep_source = link, keep_source
            job.snap = replace(job.snap, needs_link=False)

        return self._add(model.model_id, quant, META, lambda i, q: _Job(
            i, model.model_id, q, kind=META, keep_source=keep_source, meta=model), linked)

    def resume(self, job_id: str, link: MetaLink | None = None) -> None:
        """Queue a paused or failed job again; a Meta job may get a new ``link`` here."""
        if link is not None:
            with self._cond:
                self._job(job_id).link = link
        super().resume(job_id)

    # ---- the jobs -----------------------------------------------------------------------------
    def _add(self, source: str, quant: str, kind: str, create: Callable[[str, str], _Job],
             prepare: Callable[[_Job], None] | None = None) -> str:
        quant = parse_quant(quant)  # UserError listing the valid ones

        def match(s: ConvertSnapshot) -> bool:  # a Meta job waiting for a new link counts too
            return (s.kind, s.source, s.quant) == (kind, source, quant) and (
                not s.state.finished or (s.needs_link and s.state.value == FAILED))

        return self._submit(match, lambda job_id: create(job_id, quant), prepare).snap.job_id

    def _forget(self, job: _Job) -> None:
        job.link = None
        if job.snap.kind == HUB:
            from app.hub.official import remove_sources

            remove_sources(job.snap.source)
        elif job.meta is not None:
            from app.hub.meta_install import remove_meta_sources

            remove_meta_sources(job.meta)

    def _progress(self, job: _Job, p: Progress) -> None:
        self._set(job, state=STAGE_STATES.get(p.stage, job.snap.state), stage=p.stage, done=p.done,
                  total=p.total, speed=p.rate, eta=p.eta, message=p.message)

    def _run(self, job: _Job) -> None:
        super()._run(job)
        if job.snap.state.value in (DONE, CANCELLED) or job.snap.needs_link:
            job.link = None  # kept only while the job may continue with it

    def _work(self, job: _Job) -> dict[str, Any]:
        snap = job.snap
        reporter = Reporter(lambda p: self._progress(job, p), job.control.event,
                            self._reporter_interval)
        notice: Callable[[str], None] = lambda text: self._set(job, message=text)  # noqa: E731
        if snap.kind == FOLDER:
            model = install_from_folder(snap.source, snap.quant, reporter=reporter, name=job.name)
        elif snap.kind == META:
            return self._work_meta(job, reporter, notice)
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
                                     retry=self._retry, on_notice=notice)
        return {"name": model.name, "path": model.path, "done": job.snap.total}

    def _work_meta(self, job: _Job, reporter: Reporter,
                   notice: Callable[[str], None]) -> dict[str, Any]:
        from app.hub.meta_install import expired_message, install_from_meta

        assert job.meta is not None
        link = job.link
        if link is None or link.expired():
            self._set(job, needs_link=True)
            raise LinkExpiredError(expired_message(link, job.meta) if link else
                                   "This download needs Meta's link again (it is never stored): "
                                   "paste it in “Download from Meta” or on the command line.")
        try:
            result = install_from_meta(link, job.meta, job.snap.quant, control=job.control,
                                       reporter=reporter, keep_source=job.keep_source,
                                       retry=self._retry, on_notice=notice)
        except LinkExpiredError:
            self._set(job, needs_link=True)
            raise
        model = result.model
        return {"name": model.name, "path": model.path, "done": job.snap.total,
                "licence": result.licence, "licence_text": result.licence_text}
