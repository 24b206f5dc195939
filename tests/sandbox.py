"""Failing machines for the tests: a read-only folder or a full disk, in a private mount namespace.

``unshare -rm`` gives the child its own user and mount namespaces, so a bind mount remounted
read-only, or a tiny tmpfs, is real to the child (EROFS, ENOSPC from the kernel) and vanishes
with it; nothing changes for the rest of the machine.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs none /mnt 2>/dev/null "
                            "|| mount -t tmpfs none /tmp"], capture_output=True, timeout=30)
    return probe.returncode == 0


def need_namespaces() -> None:
    if not namespaces_work():
        pytest.skip("needs `unshare -rm` (user + mount namespaces) to make a read-only or full disk")


def run(command: Sequence[str], *, read_only: Sequence[Path] = (), full: Path | None = None,
        full_bytes: int = 64 * 1024, env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with each ``read_only`` folder remounted read-only, and ``full`` (a folder)
    replaced by a tmpfs of ``full_bytes`` that is already filled to the brim."""
    need_namespaces()
    steps = []
    for folder in read_only:
        q = shlex.quote(str(folder))
        steps.append(f"mount --bind {q} {q} && mount -o remount,bind,ro {q} {q}")
    if full is not None:
        q = shlex.quote(str(full))
        steps.append(f"mount -t tmpfs -o size={full_bytes} none {q}"
                     f" && (dd if=/dev/zero of={q}/.filler bs=4096 2>/dev/null; true)")
    steps.append("exec " + " ".join(shlex.quote(c) for c in command))
    return subprocess.run(["unshare", "-rm", "sh", "-c", " && ".join(steps)], cwd=ROOT,
                          env=env if env is not None else dict(os.environ), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def cli(home: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """`python main.py ARGS` with LLAMA_DESK_HOME=home, under ``run``'s failing machine."""
    env = {**os.environ, "LLAMA_DESK_HOME": str(home)}
    return run([sys.executable, "main.py", *args], env=env, **kwargs)  # type: ignore[arg-type]
