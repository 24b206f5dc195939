"""One model download end to end: resolve parts, fetch each resumably, join, validate, register."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.hub import catalogue, client
from app.hub.client import RemoteFile, RetryPolicy
from app.hub.download import (
    Control,
    NoticeFn,
    ProgressFn,
    check_disk_space,
    discard_partial,
    download_file,
    new_http_client,
    part_paths,
)
from app.hub.errors import HubError, NotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobFiles:
    """Where a job writes: the final file, its parts (split uploads) and the parts ledger."""

    dest: Path
    parts: tuple[Path, ...]
    ledger: Path


def filename_for_quant(repo_id: str, quant: str, token: str | None) -> str:
    """The .gguf of ``repo_id`` in quantization ``quant`` (catalogue first, then the Hub)."""
    known = catalogue.find(repo_id, quant=quant)
    if known:
        return known.filename
    choices = catalogue.refresh(repo_id, token)
    matches = [f for f in choices if f.quantization.upper() == quant.upper()]
    if len(matches) == 1:
        return matches[0].filename
    if matches:
        names = ", ".join(f.filename for f in matches)
        raise NotFoundError(f"Several {quant} files in {repo_id} ({names}): name one of them.")
    quants = ", ".join(sorted({f.quantization for f in choices})) or "no .gguf files"
    raise NotFoundError(f"No {quant} file in {repo_id}; it has: {quants}.")


def _remote_files(repo_id: str, filename: str, *, revision: str, token: str | None,
                  retry: RetryPolicy, on_notice: NoticeFn) -> list[RemoteFile]:
    known = catalogue.find(repo_id, filename=filename)
    if known and known.parts:
        names = list(known.parts)
    else:
        try:
            return [client.file_metadata(repo_id, filename, token=token, revision=revision,
                                         retry=retry, on_retry=on_notice)]
        except NotFoundError:
            listing = client.repo_listing(repo_id, token=token, revision=revision, retry=retry)
            catalogue.store_listing(listing)
            names = sorted(f.filename for f in listing.files
                           if f.filename.startswith(filename + "-split-"))
            if not names:
                ggufs = [f.filename for f in listing.files if ".gguf" in f.filename.lower()]
                shown = ", ".join(ggufs[:12]) + (" …" if len(ggufs) > 12 else "")
                raise NotFoundError(
                    f"File {filename} not found in {repo_id}; its .gguf files: "
                    f"{shown or 'none'}."
                ) from None
    return [client.file_metadata(repo_id, name, token=token, revision=revision, retry=retry,
                                 on_retry=on_notice) for name in names]


def _ledger(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_ledger(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1), "utf-8")


def _recover_join(files: JobFiles) -> None:
    """Undo a join interrupted by a crash: cut the first part back to its own size."""
    state = _ledger(files.ledger)
    joining = state.get("joining")
    if not joining or not files.parts:
        return
    first = files.parts[0]
    if first.exists():
        with first.open("r+b") as fh:
            fh.truncate(int(joining))
    state["joining"] = None
    _save_ledger(files.ledger, state)


def _join(files: JobFiles) -> None:
    """Concatenate the verified parts into the final file, appending in place (no 2× space)."""
    first = files.parts[0]
    state = _ledger(files.ledger)
    state["joining"] = first.stat().st_size
    _save_ledger(files.ledger, state)
    with first.open("ab") as out:
        for part in files.parts[1:]:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 8 * 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    os.replace(first, files.dest)
    for part in files.parts[1:]:
        part.unlink()
    files.ledger.unlink()


def forget_job(files: JobFiles) -> None:
    """Delete everything a cancelled job left behind (never the final installed file)."""
    for path in (files.dest, *files.parts):
        discard_partial(path)
    for part in files.parts:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    with contextlib.suppress(FileNotFoundError):
        files.ledger.unlink()


def _already_installed(repo_id: str, filename: str, dest: Path, remotes: list[RemoteFile]) -> bool:
    from app.hub import installed

    if not dest.is_file() or dest.stat().st_size != sum(r.size for r in remotes):
        return False
    for model in installed.list_installed():
        if model.path == dest and model.repo_id == repo_id and model.filename == filename:
            return len(remotes) > 1 or model.sha256 == remotes[0].sha256
    return False


def fetch_job(
    repo_id: str, filename: str, *, revision: str = "main", token: str | None, dest_dir: Path,
    control: Control, retry: RetryPolicy, register: bool = True,
    on_files: Callable[[JobFiles], None] | None = None, on_progress: ProgressFn | None = None,
    on_notice: NoticeFn | None = None, on_state: Callable[[str], None] | None = None,
) -> Path:
    """Download ``filename`` (joined from its parts when split), verify, validate and register."""
    from app.engine.modelfile import check_model_file
    from app.errors import ModelFileError
    from app.hub import installed

    def notice(text: str) -> None:
        if on_notice:
            on_notice(text)

    def state(name: str) -> None:
        if on_state:
            on_state(name)

    dest = dest_dir / Path(filename).name
    remotes = _remote_files(repo_id, filename, revision=revision, token=token, retry=retry,
                            on_notice=notice)
    split = len(remotes) > 1 or remotes[0].filename != filename
    parts = tuple(dest_dir / Path(r.filename).name for r in remotes) if split else ()
    files = JobFiles(dest, parts, dest.with_name(dest.name + ".parts.json"))
    if on_files:
        on_files(files)
    total = sum(r.size for r in remotes)
    if _already_installed(repo_id, filename, dest, remotes):
        notice(f"{filename} is already installed and verified.")
        return dest
    _recover_join(files)
    ledger = _ledger(files.ledger) if split else {}
    verified: dict[str, str | None] = ledger.get("verified", {})
    targets = parts or (dest,)
    have = 0
    for remote, target in zip(remotes, targets, strict=True):
        if verified.get(remote.filename, "-") == remote.sha256 and target.is_file():
            have += target.stat().st_size
        elif part_paths(target)[0].is_file():
            have += part_paths(target)[0].stat().st_size
    check_disk_space(dest_dir, total - have, filename)
    state("downloading")
    offset = 0
    http = new_http_client()
    try:
        for remote, target in zip(remotes, targets, strict=True):
            if split and verified.get(remote.filename, "-") == remote.sha256 and (
                target.is_file() and target.stat().st_size == remote.size
            ):
                offset += remote.size
                continue
            base = offset

            def progress(done: int, _total: int, base: int = base) -> None:
                if on_progress:
                    on_progress(base + done, total)

            download_file(remote, target, token=token, control=control, on_progress=progress,
                          on_notice=notice, retry=retry, http=http)
            offset += remote.size
            if split:
                verified[remote.filename] = remote.sha256
                _save_ledger(files.ledger, {"verified": verified, "joining": None})
    finally:
        http.close()
    state("verifying")
    if split:
        notice(f"Joining {len(parts)} parts into {dest.name}.")
        _join(files)
    if dest.suffix == ".gguf":
        try:
            check_model_file(dest)
        except ModelFileError as err:
            bad = dest.parent / "quarantine" / dest.name
            bad.parent.mkdir(exist_ok=True)
            os.replace(dest, bad)
            raise HubError(f"The downloaded file is not a usable model ({err}); it was moved "
                           f"to {bad}.") from None
    if register:
        installed.add_download(dest, repo_id=repo_id, filename=filename,
                               quantization=catalogue.quant_of(filename),
                               sha256=None if split else remotes[0].sha256)
    return dest
