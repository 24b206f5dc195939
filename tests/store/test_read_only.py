"""A read-only home or data folder: every command says "read-only" in one line, reading still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import paths
from app.store import Store
from tests import sandbox
from tests.store.damage import fill

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home_with_history(llama_desk_home: Path) -> Path:
    fill(paths.database_path(), conversations=3, turns=2)
    for folder in ("config", "cache", "logs"):
        getattr(paths, f"{folder}_dir")()
    return llama_desk_home


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_reading_works_on_a_read_only_home(home_with_history: Path) -> None:
    home = home_with_history
    for args, expect in ((("history", "list"), "conversation 2"),
                         (("history", "show", "1"), "walrus"),
                         (("history", "search", "tusks"), "tusks"),
                         (("history", "export", "--all", "--format", "json", "-o", "-"),
                          "llama-desk-conversations"),
                         (("history", "trash"), "The trash is empty")):
        proc = sandbox.cli(home, *args, read_only=[home])
        no_traceback(proc)
        assert proc.returncode == 0, (args, proc.stderr)
        assert expect in proc.stdout, (args, proc.stdout)
        # The log file cannot be written: said once, in one line, and the command goes on.
        assert proc.stderr.count("\n") == 1 and "no log file this time" in proc.stderr.lower()
        assert "read-only" in proc.stderr
    exported = sandbox.cli(home, "history", "export", "--all", "--format", "json", "-o", "-",
                           read_only=[home])
    assert len(json.loads(exported.stdout)["conversations"]) == 3


@pytest.mark.slow
def test_changes_on_a_read_only_database_say_read_only(home_with_history: Path) -> None:
    home = home_with_history
    data = home / "data"
    for args in (("history", "rename", "1", "x"), ("history", "delete", "1"),
                 ("history", "import", str(ROOT / "pyproject.toml")),
                 ("history", "export", "1", "-o", str(data / "out.md"))):
        proc = sandbox.cli(home, *args, read_only=[data])
        no_traceback(proc)
        assert proc.returncode == 1, (args, proc.stdout)
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("llama-desk: error: "), proc.stderr
        if args[1] != "import":  # a TOML file is refused before the database is touched
            assert "read-only" in last, last
        assert "corrupt" not in last and "Move it aside" not in last
    with Store.open() as store:  # nothing changed
        assert store.get_conversation(1).title == "conversation 0"


@pytest.mark.slow
def test_the_window_and_self_test_start_on_a_read_only_home(home_with_history: Path) -> None:
    home = home_with_history
    env = {**os.environ, "LLAMA_DESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
           "LLAMA_DESK_REPORT_SHOWN": "1"}
    window = sandbox.run([sys.executable, "main.py"], read_only=[home], env=env, timeout=180)
    no_traceback(window)
    assert window.returncode == 0 and "shown_after_run_app_s" in window.stdout, window.stderr
    self_test = sandbox.cli(home, "--self-test", read_only=[home], timeout=300)
    no_traceback(self_test)
    assert self_test.returncode == 0, self_test.stdout + self_test.stderr


@pytest.mark.slow
def test_a_fresh_read_only_home_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    proc = sandbox.cli(home, "history", "list", read_only=[home])
    no_traceback(proc)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("llama-desk: error: Cannot create the folder") and "read-only" in last


def _another_user_can_run_the_app() -> bool:
    """Root, setpriv, and a checkout and interpreter that user 65534 may read (a checkout in a
    private folder, e.g. one made by mktemp -d, is not)."""
    if not hasattr(os, "getuid") or os.getuid() != 0 or not Path("/usr/bin/setpriv").exists():
        return False
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "main.py", "--version"], cwd=ROOT,
                           capture_output=True, timeout=60, check=False)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _another_user_can_run_the_app(),
                    reason="needs root, setpriv and a checkout another user may read")
def test_a_log_file_owned_by_another_user() -> None:
    """The user's home is theirs but the log file is root's (an earlier `sudo llama-desk`)."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="llama-desk-other-user-"))  # others may look inside
    try:
        os.chmod(top, 0o755)
        home = top / "user-home"
        for folder in (home, home / "logs"):
            folder.mkdir()
            os.chown(folder, 65534, 65534)
        (home / "logs" / "llama-desk.log").write_text("root's\n")
        env = {**os.environ, "LLAMA_DESK_HOME": str(home), "HOME": str(home)}
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               sys.executable, "main.py", "history", "list"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(top)
    no_traceback(proc)
    assert proc.returncode == 0 and "No conversations yet." in proc.stdout, proc.stderr
    assert "permission denied" in proc.stderr and proc.stderr.count("\n") == 1
