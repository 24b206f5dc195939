"""Meta's download route end to end: the files download.sh fetches, through the signed link, each
md5-checked against Meta's checklists (fetched again once on a mismatch), then converted to GGUF
and registered as "Llama 2 7B Chat (Meta, Q4_K_M)" with its licence and use policy beside it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import fileio, paths
from app.convert.layout import find_checkpoint, read_checklist
from app.convert.pipeline import check_disk, result_bytes
from app.convert.progress import Reporter
from app.errors import UserError
from app.hub.client import RetryPolicy
from app.hub.download import Control, new_http_client
from app.hub.errors import DownloadStopped, HubError, HubUnreachableError, ServerError
from app.hub.installed import SIDECARS, InstalledModel
from app.hub.meta_catalogue import COMMON_FILES, LICENCE_FILES, MetaModel
from app.hub.meta_fetch import ForbiddenError, Md5MismatchError, download_signed
from app.hub.meta_link import REQUEST_PAGE, LinkExpiredError, MetaLink, NotCoveredError
from app.hub.official import LEDGER, SOURCES_DIR, _convert_and_register, _ledger, stopping
from app.units import format_size

log = logging.getLogger(__name__)
NoticeFn = Callable[[str], None]
LICENCE_SEEN = "meta-licence-shown.json"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_GUESS = {"tokenizer.model": 499_723}  # Llama 2's, until the CDN says


@dataclass(frozen=True)
class MetaResult:
    """The registered model, its licence files, and the licence text the first time one is kept."""

    model: InstalledModel
    licence: tuple[Path, ...]
    licence_text: str | None


def source_root(model: MetaModel) -> Path:
    """download.sh's target folder for one model: the shared files, and the model's folder."""
    return paths.models_dir() / SOURCES_DIR / f"meta--{model.model_id}"


def remove_meta_sources(model: MetaModel) -> None:
    shutil.rmtree(source_root(model), ignore_errors=True)
    with contextlib.suppress(OSError):
        source_root(model).parent.rmdir()


def kept_bytes(model: MetaModel) -> int:
    """Bytes already downloaded for ``model`` (finished and partial files)."""
    root = source_root(model)
    data = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".json")] \
        if root.is_dir() else []
    return sum(p.stat().st_size for p in data)


def expired_message(link: MetaLink, model: MetaModel) -> str:
    kept = kept_bytes(model)
    keep = f" The {format_size(kept)} already downloaded are kept and the download resumes " \
        "from there." if kept else ""
    return (f"Meta's download links last 24 hours; request a new one at {REQUEST_PAGE} and start "
            f"the download again with it ({link.host} refused this link: it expired or was "
            f"used up).{keep}")


def _md5_of(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(8 * 1024 * 1024):
            md5.update(block)
    return md5.hexdigest()


class _Session:
    """One run of the download part: which files, their md5 sums, progress over all of them."""

    def __init__(self, link: MetaLink, model: MetaModel, *, control: Control, reporter: Reporter,
                 retry: RetryPolicy, notice: NoticeFn) -> None:
        self.link, self.model, self.control, self.reporter = link, model, control, reporter
        self.retry, self.notice = retry, notice
        self.root = source_root(model)
        self.ledger = _ledger(self.root)
        self.sizes: dict[str, int] = {}
        self.done = 0
        self.http: Any = None

    # ---- progress -----------------------------------------------------------------------------
    def _guess(self, names: list[str], shard_bytes: int) -> None:
        for name in names:
            if name not in self.sizes:
                self.sizes[name] = shard_bytes if name.endswith(".pth") else _GUESS.get(name, 0)
        self.reporter.total = sum(self.sizes.values())

    def _progress(self, name: str, done: int, total: int) -> None:
        self.sizes[name] = total
        self.reporter.total = sum(self.sizes.values())
        self.reporter.update(self.done + done)

    # ---- files --------------------------------------------------------------------------------
    def _checklist(self, name: str) -> tuple[Path, dict[str, str]]:
        folder = (self.root / name).parent
        chk = folder / ("checklist.chk" if folder != self.root else "tokenizer_checklist.chk")
        return chk, (read_checklist(chk) if chk.is_file() else {})

    def listed(self, checklist: str) -> list[str]:
        """The files a checklist names, as paths under the link (odd names refused)."""
        chk = self.root / checklist
        prefix = checklist.rpartition("/")[0]
        names = []
        for entry in read_checklist(chk):
            if not _PLAIN_NAME.match(entry):
                raise HubError(f"{chk.name} from {self.link.host} lists an odd file name "
                               f"({entry[:40]!r}); nothing more was downloaded.")
            names.append(f"{prefix}/{entry}" if prefix else entry)
        return names

    def fetch(self, name: str) -> None:
        """Download ``name`` unless it is here and checked; md5 mismatch: once more, then stop."""
        target = self.root / name
        checklist, sums = self._checklist(name)
        md5 = sums.get(Path(name).name)
        mark = md5 or "size"
        if target.is_file() and self.ledger.get(name) != mark and md5 and _md5_of(target) == md5:
            self._mark(name, mark)  # finished by a run that stopped before its ledger write
        if target.is_file() and self.ledger.get(name) == mark:
            self.sizes[name] = target.stat().st_size
            self.done += self.sizes[name]
            self.reporter.update(self.done)
            return
        target.unlink(missing_ok=True)
        for attempt in (1, 2):
            try:
                download_signed(self.link, name, target, md5=md5, control=self.control,
                                on_notice=self.notice, retry=self.retry, http=self.http,
                                on_progress=lambda d, t: self._progress(name, d, t))
                break
            except Md5MismatchError as err:
                what = (f"{name} does not match {checklist.name} (md5 {err.got[:12]}… instead "
                        f"of {err.want[:12]}…)")
                if attempt == 2:
                    raise HubError(f"{what} twice, so it was deleted and nothing was installed: "
                                   f"the copy on {self.link.host} or the connection damages it; "
                                   "try again later.") from None
                self.notice(f"{what}; downloading it once more.")
            except ForbiddenError as err:
                raise self._refused(err) from None
            except (ServerError, HubUnreachableError) as err:
                raise type(err)(f"{err} Start the same download again to resume: "
                                f"{format_size(kept_bytes(self.model))} are kept.") from None
        self._mark(name, mark)
        self.done += target.stat().st_size

    def _mark(self, name: str, mark: str) -> None:
        self.ledger[name] = mark
        fileio.write_text(self.root / LEDGER, json.dumps(self.ledger, indent=1))

    def _refused(self, err: ForbiddenError) -> HubError:
        """Expired or used up, or a model the link does not cover: probe the licence to tell."""
        common = err.name in COMMON_FILES
        if common and err.status == 404:
            return HubError(f"{self.link.host} has no {err.name} behind this link (HTTP 404): "
                            "is it a Llama 2 link? Llama Desk's Meta route downloads Llama 2 "
                            "(7B, 13B, 70B, base and chat).")
        if self.link.expired() or common or not self._probe("LICENSE"):
            return LinkExpiredError(expired_message(self.link, self.model))
        return NotCoveredError(
            f"The link does not cover {self.model.model_id}: {self.link.host} refused "
            f"{err.name} (HTTP {err.status}) while the link itself works. Request "
            f"{self.model.title} on {REQUEST_PAGE} (the e-mail lists the models it covers), "
            "or choose one of those.")

    def _probe(self, name: str) -> bool:
        try:
            response = self.http.get(self.link.url_for(name), headers={"Range": "bytes=0-0"})
        except Exception:  # the probe only tells two refusals apart
            return False
        return bool(response.status_code < 400)

    # ---- the whole download -------------------------------------------------------------------
    def run(self, quant: str) -> None:
        model = self.model
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / model.model_id).mkdir(exist_ok=True)
        self.reporter.stage("download", 0, f"Downloading {model.title} from {self.link.shown}")
        names = [*COMMON_FILES, *model.model_files()]
        self._guess(names, model.source_bytes // model.shards)
        self.http = new_http_client()
        try:
            for name in COMMON_FILES:
                self.fetch(name)
            self._check_listed("tokenizer_checklist.chk", COMMON_FILES)
            small, shards = names[len(COMMON_FILES):][:2], names[len(COMMON_FILES) + 2:]
            for name in small:
                self.fetch(name)
            extra = [n for n in self.listed(small[0]) if n not in names]
            self._check_disk(quant, shards + extra)
            for name in shards + extra:
                self.fetch(name)
        finally:
            self.http.close()

    def _check_listed(self, checklist: str, have: tuple[str, ...]) -> None:
        for name in self.listed(checklist):
            if name not in have:
                self.fetch(name)

    def _check_disk(self, quant: str, weights: list[str]) -> None:
        from app.convert.model import meta_sizes

        folder = self.root / self.model.model_id
        source, f16 = meta_sizes(folder / "params.json", self.root / "tokenizer.model")
        for name in weights:
            self.sizes[name] = source // len(weights)
        self.reporter.total = sum(self.sizes.values())
        here = sum(p.stat().st_size for n in weights
                   for p in (self.root / n, self.root / (n + ".part")) if p.is_file())
        needs = [("download", max(0, source - here))]
        if quant != "F16":
            needs.append(("for the F16 intermediate", f16))
        needs.append((f"for the {quant} result", result_bytes(f16, quant)))
        check_disk(paths.models_dir(), needs,
                   f"download and convert {self.model.model_id} to {quant}")


def _keep_licence(root: Path, model_path: Path) -> tuple[tuple[Path, ...], str | None]:
    """Copy LICENSE and USE_POLICY.md beside the model; their text the first time they are seen."""
    kept, texts = [], []
    for name, suffix in zip(LICENCE_FILES, SIDECARS, strict=True):
        source = root / name
        if source.is_file():
            target = model_path.with_name(model_path.name.removesuffix(".gguf") + suffix)
            shutil.copyfile(source, target)
            kept.append(target)
            texts.append(source.read_text("utf-8", errors="replace").strip())
    if not texts:
        return (), None
    seen_file = paths.data_dir() / LICENCE_SEEN
    try:
        seen = set(json.loads(seen_file.read_text("utf-8")).get("shown", []))
    except (OSError, ValueError, AttributeError):
        seen = set()
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    if digest in seen:
        return tuple(kept), None
    fileio.write_text(seen_file, json.dumps({"shown": sorted(seen | {digest})}, indent=1))
    return tuple(kept), "\n\n".join(texts)


def install_from_meta(link: MetaLink, model: MetaModel, quant: str, *, control: Control,
                      reporter: Reporter, keep_source: bool = False,
                      retry: RetryPolicy | None = None,
                      on_notice: NoticeFn | None = None) -> MetaResult:
    """Download ``model`` through ``link``, convert to ``quant``, verify, register.

    A pause keeps the downloaded files (the conversion starts over on resume); a cancel deletes
    them. The link is used for this call only and never written anywhere.
    """
    from app.hub.official import find_installed

    notice = on_notice or (lambda _t: None)
    existing = find_installed(repo_id=model.repo_id, quant=quant)
    if existing is not None:
        notice(f"{existing.name} is already installed ({existing.path}).")
        return MetaResult(existing, (), None)
    if link.expired():
        raise LinkExpiredError(expired_message(link, model))
    session = _Session(link, model, control=control, reporter=reporter,
                       retry=retry or RetryPolicy.from_env(), notice=notice)
    try:
        with stopping(control, lambda: remove_meta_sources(model)):
            session.run(quant)
            ckpt = find_checkpoint(session.root / model.model_id)
            installed = _convert_and_register(
                ckpt, quant, source=model.model_id, official=True, repo_id=model.repo_id,
                folder=None, reporter=reporter, keep_intermediate=keep_source,
                name=f"{model.title} (Meta, {quant})", label="meta", verify_md5=False)
    except DownloadStopped:
        raise
    except UserError as err:
        clean = link.scrub(str(err))
        if clean != str(err):
            raise HubError(clean) from None
        raise
    except Exception as err:  # a bug: its traceback may hold the link, so it is scrubbed
        log.error("Meta download of %s failed:\n%s", model.model_id,
                  link.scrub("".join(traceback.format_exception(err))))
        raise HubError(f"unexpected {type(err).__name__} while downloading {model.model_id}; "
                       f"details in {paths.logs_dir()}") from None
    licence, text = _keep_licence(session.root, installed.path)
    if keep_source:
        notice(f"Kept the downloaded files in {session.root}.")
    else:
        remove_meta_sources(model)
    return MetaResult(installed, licence, text)
