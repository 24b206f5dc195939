"""Official Llama weights (transformers or Meta layout): download exactly the needed files, convert,
quantize, verify and register; also the same for a checkpoint folder already on disk."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app import paths
from app.convert.errors import ConvertCancelled
from app.convert.layout import META, Checkpoint, RemoteLayout, find_checkpoint, remote_layout
from app.convert.pipeline import check_disk, convert, result_bytes
from app.convert.progress import Reporter
from app.errors import UserError
from app.hub import client
from app.hub.client import RemoteFile, RepoFileInfo, RetryPolicy
from app.hub.download import Control, download_file, new_http_client
from app.hub.errors import DownloadStopped
from app.hub.installed import InstalledModel

log = logging.getLogger(__name__)

SOURCES_DIR = "sources"
LEDGER = ".verified.json"
NoticeFn = Callable[[str], None]


class JobControl(Control):
    """Pause/cancel for a whole job: downloads check the flag, the converter the event."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def pause(self) -> None:
        super().pause()
        self.event.set()

    def cancel(self) -> None:
        super().cancel()
        self.event.set()

    def reset(self) -> None:
        super().reset()
        self.event.clear()


@dataclass(frozen=True)
class RemoteCheckpoint:
    """A Hub repo holding a convertible checkpoint: the files to fetch, with sizes and sha256."""

    repo_id: str
    revision: str
    layout: RemoteLayout
    files: tuple[RepoFileInfo, ...]  # small files first, then the weights

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def weight_bytes(self) -> int:
        weights = set(self.layout.weights)
        return sum(f.size or 0 for f in self.files if f.filename in weights)


def inspect_repo(repo_id: str, *, token: str | None, revision: str = "main",
                 retry: RetryPolicy | None = None) -> RemoteCheckpoint | None:
    """The repo's checkpoint (network: one listing call), or None when it holds GGUF or nothing known."""
    listing = client.repo_listing(repo_id, token=token, revision=revision, retry=retry)
    if any(f.filename.lower().endswith(".gguf") for f in listing.files):
        return None
    layout = remote_layout(f.filename for f in listing.files)
    if layout is None:
        return None
    by_name = {f.filename: f for f in listing.files}
    files = tuple(by_name[n] for n in (*layout.small, *layout.weights))
    return RemoteCheckpoint(repo_id, revision, layout, files)


_LLAMA2 = re.compile(r"llama-?2-(\d+)b(-chat)?", re.IGNORECASE)


def base_name(source: str) -> str:
    """"Llama 2 7B Chat" for meta-llama/Llama-2-7b-chat-hf or a download.sh `llama-2-7b-chat`."""
    match = _LLAMA2.search(source)
    if match:
        return f"Llama 2 {match.group(1)}B" + (" Chat" if match.group(2) else "")
    return source.rsplit("/", 1)[-1]


def display_name(source: str, quant: str, *, official: bool) -> str:
    return f"{base_name(source)} ({'official' if official else 'converted'}, {quant})"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "model"


def _output_path(stem: str, quant: str, owner: Callable[[InstalledModel], bool]) -> Path:
    """``<models>/<stem>.<quant>.gguf``, numbered when another model already owns that name."""
    from app.hub import installed

    taken = {m.path.resolve(): m for m in installed.list_installed()}
    n = 1
    while True:
        name = f"{stem}.{quant}.gguf" if n == 1 else f"{stem}-{n}.{quant}.gguf"
        path = paths.models_dir() / name
        other = taken.get(path.resolve())
        if other is None or owner(other):
            return path
        n += 1


def find_installed(*, repo_id: str | None = None, folder: Path | None = None,
                   quant: str) -> InstalledModel | None:
    """The converted model already registered for this source and quantization."""
    from app.hub import installed

    for m in installed.list_installed():
        if m.source != "converted" or m.quantization != quant or not m.exists:
            continue
        if repo_id and (m.repo_id or "").lower() == repo_id.lower():
            return m
        if folder and m.filename and Path(m.filename) == folder:
            return m
    return None


def source_dir(repo_id: str) -> Path:
    return paths.models_dir() / SOURCES_DIR / repo_id.replace("/", "--")


def remove_sources(repo_id: str) -> None:
    """Delete a job's downloaded files (and the sources folder once it is empty)."""
    folder = source_dir(repo_id)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()


def _ledger(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / LEDGER).read_text("utf-8"))
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _mark(f: RepoFileInfo) -> str:
    return f.sha256 or f"size:{f.size}"


def _download(remote: RemoteCheckpoint, folder: Path, *, token: str | None, control: Control,
              reporter: Reporter, retry: RetryPolicy, on_notice: NoticeFn) -> None:
    """Fetch every needed file into ``folder``: resumable, sha256-verified, skipped when done."""
    folder.mkdir(parents=True, exist_ok=True)
    ledger = _ledger(folder)
    reporter.stage("download", remote.total_bytes, f"Downloading {len(remote.files)} files")
    done = 0
    http = new_http_client()

    def quiet(text: str) -> None:
        if not text.startswith("The Hub published no sha256"):  # small non-LFS text files
            on_notice(text)

    try:
        for f in remote.files:
            target = folder / f.filename
            if ledger.get(f.filename) == _mark(f) and target.is_file() and (
                    f.size is None or target.stat().st_size == f.size):
                done += target.stat().st_size
                reporter.update(done)
                continue
            meta: RemoteFile = client.file_metadata(remote.repo_id, f.filename, token=token,
                                                    revision=remote.revision, retry=retry,
                                                    on_retry=on_notice)
            def progress(n: int, _total: int, base: int = done) -> None:
                reporter.update(base + n)

            download_file(meta, target, token=token, control=control, retry=retry, http=http,
                          on_notice=quiet, on_progress=progress)
            done += meta.size
            ledger[f.filename] = _mark(f)
            (folder / LEDGER).write_text(json.dumps(ledger, indent=1), "utf-8")
            if f.filename == "config.json":
                _early_config_check(target)
    finally:
        http.close()


def _early_config_check(config: Path) -> None:
    """Refuse a non-Llama repo before its weights are downloaded."""
    from app.convert.errors import ConvertError
    from app.convert.model import LLAMA_ARCHS
    from app.convert.vocab import read_json

    data = read_json(config, "model configuration")
    archs = data.get("architectures") or []
    if not (set(archs) & LLAMA_ARCHS) and data.get("model_type") != "llama":
        kind = ", ".join(map(str, archs)) or str(data.get("model_type") or "unknown")
        raise ConvertError(f"This repo holds a {kind} model, not Llama: Llama Desk converts Llama "
                           "checkpoints only (nothing else was downloaded).")


def _convert_and_register(ckpt: Checkpoint, quant: str, *, source: str, official: bool,
                          repo_id: str | None, folder: Path | None, reporter: Reporter,
                          keep_intermediate: bool, name: str | None = None,
                          label: str | None = None, verify_md5: bool = True) -> InstalledModel:
    """Convert into ``<models>/<source>.<label>.<quant>.gguf`` (label: official / converted)."""
    from app.hub import installed

    def owner(m: InstalledModel) -> bool:
        return m.source == "converted" and (
            (repo_id is not None and m.repo_id == repo_id)
            or (folder is not None and m.filename == str(folder)))

    label = label or ("official" if official else "converted")
    out = _output_path(f"{_slug(source.rsplit('/', 1)[-1])}.{label}", quant, owner)
    name = name or display_name(source, quant, official=official)
    convert(ckpt, out, quant, name=name, reporter=reporter,
            work_dir=ckpt.folder if repo_id else paths.models_dir(),
            keep_intermediate=keep_intermediate, verify_md5=verify_md5)
    return installed.add_converted(out, name=name, quantization=quant, repo_id=repo_id,
                                   source_folder=folder)


@contextlib.contextmanager
def stopping(control: Control, on_cancel: Callable[[], None]) -> Iterator[None]:
    """A pause or cancel anywhere in a job (a download or the converter) leaves as
    DownloadStopped with the reason asked for; a cancel first runs ``on_cancel``."""
    try:
        yield
    except (DownloadStopped, ConvertCancelled) as stop:
        reason = control.stop_reason or "cancelled"
        if reason == "cancelled":
            on_cancel()
        if isinstance(stop, DownloadStopped) and stop.reason == reason:
            raise
        raise DownloadStopped(reason) from stop


def install_from_hub(remote: RemoteCheckpoint, quant: str, *, token: str | None,
                     control: Control, reporter: Reporter, keep_source: bool = False,
                     retry: RetryPolicy | None = None,
                     on_notice: NoticeFn | None = None) -> InstalledModel:
    """Download, convert to ``quant``, verify and register; sources deleted unless ``keep_source``.

    A pause keeps the downloaded files for the next run (the conversion starts over); a cancel
    deletes them. Raises DownloadStopped for both, UserError for everything the user can act on.
    """
    notice = on_notice or (lambda _t: None)
    existing = find_installed(repo_id=remote.repo_id, quant=quant)
    if existing is not None:
        notice(f"{existing.name} is already installed ({existing.path}).")
        return existing
    folder = source_dir(remote.repo_id)
    ledger = _ledger(folder)
    have = sum(f.size or 0 for f in remote.files
               if ledger.get(f.filename) == _mark(f) and (folder / f.filename).is_file())
    partial = sum((folder / (f.filename + ".part")).stat().st_size for f in remote.files
                  if (folder / (f.filename + ".part")).is_file())
    f16 = remote.weight_bytes
    needs = [("download", remote.total_bytes - have - partial)]
    if quant != "F16":
        needs.append(("for the F16 intermediate", f16))
    needs.append((f"for the {quant} result", result_bytes(f16, quant)))
    check_disk(paths.models_dir(), needs, f"download and convert {remote.repo_id} to {quant}")
    official = remote.repo_id.lower().startswith("meta-llama/")
    with stopping(control, lambda: remove_sources(remote.repo_id)):
        _download(remote, folder, token=token, control=control, reporter=reporter,
                  retry=retry or RetryPolicy.from_env(), on_notice=notice)
        model = _convert_and_register(find_checkpoint(folder), quant, source=remote.repo_id,
                                      official=official, repo_id=remote.repo_id, folder=None,
                                      reporter=reporter, keep_intermediate=keep_source)
    if keep_source:
        notice(f"Kept the downloaded files in {folder}.")
    else:
        remove_sources(remote.repo_id)
    return model


def install_from_folder(path: str | Path, quant: str, *, reporter: Reporter,
                        name: str | None = None) -> InstalledModel:
    """Convert the checkpoint in folder ``path`` into the models folder (the folder is only read)."""
    ckpt = find_checkpoint(path)
    existing = find_installed(folder=ckpt.folder, quant=quant)
    if existing is not None:
        raise UserError(f"{ckpt.folder} is already installed as {existing.name!r} "
                        f"({existing.path}); remove it first to convert it again.")
    source = ckpt.folder.name
    return _convert_and_register(ckpt, quant, source=source, official=ckpt.kind == META,
                                 repo_id=None, folder=ckpt.folder, reporter=reporter,
                                 keep_intermediate=False, name=name)


def describe_official(repo_id: str, quant: str) -> list[str]:
    """What the catalogue knows about an official repo: gating, page, token, disk and time."""
    from app.hub import catalogue, token_store
    from app.units import format_estimate, format_size

    lines = []
    known = catalogue.official(repo_id)
    account = token_store.account_name()
    token = "set" + (f" ({account})" if account else "") if token_store.get_token() else \
        "not set (add one with `llama-desk token set` or the window's Hugging Face token button)"
    if known is not None:
        lines.append(f"{known.title}: {catalogue.OFFICIAL_NOTE} on {known.page}")
        lines.append(f"Needs ~{format_size(known.disk_bytes(quant))} of disk at the peak "
                     f"(~{format_size(known.source_bytes)} download), then "
                     f"{format_estimate(known.convert_seconds(quant))} to convert to "
                     f"{quant} on this machine.")
    lines.append(f"Hugging Face token: {token}.")
    return lines
