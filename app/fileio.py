"""Safe file writes (atomic replace, private modes, one clear line per failure) and registry reads.

Every file the app writes (settings, the model registry, caches, download ledgers, exports)
goes through ``write_text``/``write_bytes``:

* a new path or a regular file is replaced atomically: the data goes to a temporary file in
  the same folder, is fsync'ed, then renamed over the target (and the folder fsync'ed), so a
  crash or a full disk leaves either the old file or the new one, never half of one;
* a symbolic link is written through: its target is replaced as above and the link stays;
* a FIFO or a character device (``/dev/null``, ``/dev/stdout``, a terminal) is written
  through in place, never renamed over; a block device, a socket or a folder is refused;
* new files are created 0600 (private); a replaced file keeps its owner's permission bits
  but loses any for group and others (conversations and settings are private);
* an OSError becomes a ``WriteError`` naming the path and the cause (read-only, disk full,
  permission denied...), and the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from app.errors import UserError

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
MAX_LINK_DEPTH = 40


class WriteError(UserError):
    """A file could not be written (the message names the path and the reason)."""


def reason(err: OSError) -> str:
    """A short, actionable reason for an OSError."""
    if err.errno == errno.EROFS:
        return "the file system is read-only"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full; free some space and try again"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; check the file's and its folder's permissions"
    if err.errno == errno.ELOOP:
        return "it is a loop of symbolic links"
    if err.errno == errno.ENOENT:
        return "its folder does not exist"
    if err.errno == errno.ENOTDIR:
        return "a part of the path is not a folder"
    if err.errno == errno.EISDIR:
        return "it is a folder"
    if err.errno == errno.ENAMETOOLONG:
        return "the name is too long"
    return err.strerror or str(err)


def _target(path: Path) -> tuple[Path, os.stat_result | None]:
    """Follow symbolic links to the path that will really be written, with its lstat."""
    current = path
    for _ in range(MAX_LINK_DEPTH):
        try:
            st = current.lstat()
        except FileNotFoundError:
            return current, None
        if not stat.S_ISLNK(st.st_mode):
            return current, st
        link = Path(os.readlink(current))
        current = link if link.is_absolute() else current.parent / link
    raise OSError(errno.ELOOP, "Too many levels of symbolic links", str(path))


def write_bytes(path: str | Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Write ``data`` to ``path`` by the policy in the module docstring; WriteError on failure."""
    path = Path(path)
    try:
        target, st = _target(path)
        if st is None or stat.S_ISREG(st.st_mode):
            _replace(target, data, mode if st is None else stat.S_IMODE(st.st_mode) & ~0o077)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            with open(target, "wb") as fh:  # a device or a pipe: written in place, never renamed
                fh.write(data)
        else:
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else (
                "a block device" if stat.S_ISBLK(st.st_mode) else "not a regular file")
            raise WriteError(f"Cannot write {path}: it is {kind}; choose a file name.")
    except OSError as err:
        raise WriteError(f"Cannot write {path}: {reason(err)}.") from err


def write_text(path: str | Path, text: str, *, mode: int = PRIVATE_FILE) -> None:
    """``write_bytes`` of ``text`` in UTF-8."""
    write_bytes(path, text.encode("utf-8"), mode=mode)


def _replace(target: Path, data: bytes, mode: int) -> None:
    folder = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (before another library opens
    it: SQLite and logging create files with the umask's wider default)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def make_private(folder: Path) -> None:
    """Folder 0700 and the files directly inside it 0600 (ours only; errors only logged).

    Fixes data written by earlier versions under a 022 umask (0755 folders, 0644 files).
    """
    if os.name == "nt":  # no POSIX modes: the per-user profile folder is already private
        return
    try:
        st = folder.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(folder, stat.S_IMODE(st.st_mode) & ~0o077)
        for entry in os.scandir(folder):
            if not entry.is_file(follow_symlinks=False):
                continue
            est = entry.stat(follow_symlinks=False)
            if est.st_uid == os.getuid() and stat.S_IMODE(est.st_mode) & 0o077:
                os.chmod(entry.path, stat.S_IMODE(est.st_mode) & ~0o077)
    except OSError as err:  # a read-only or foreign folder: reading it still works
        log.debug("cannot make %s private: %s", folder, err)


def read_json_list(path: Path, key: str) -> list[Any]:
    """The list under ``key`` in the JSON object stored at ``path`` (a registry's entries).

    A missing file reads as []; so does an unreadable or malformed one, or one whose ``key``
    holds no list (logged, never raised: a damaged registry reads as empty, the app goes on).
    """
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        log.warning("unreadable %s: %s", path, err)
        return []
    items = raw.get(key, []) if isinstance(raw, dict) else []
    if not isinstance(items, list):
        log.warning("unreadable %s: %r is not a list", path, key)
        return []
    return items
