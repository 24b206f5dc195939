"""Safe writes: atomic and private for files, through links, in place for devices and FIFOs."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from app import fileio
from app.fileio import WriteError
from tests import sandbox


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_are_private_and_replace_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    fileio.write_text(target, "one")
    assert target.read_text() == "one" and mode(target) == 0o600
    os.chmod(target, 0o744)  # the owner's bits are kept on replace, group and others' dropped
    fileio.write_text(target, "two")
    assert target.read_text() == "two" and mode(target) == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary left


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "settings.json"
    target.write_text("old")

    def boom(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(WriteError, match=r"Cannot write .*settings.json: the disk is full"):
        fileio.write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to("real.md")
    fileio.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "created.md")
    fileio.write_text(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "created.md").read_text() == "made"
    loop = tmp_path / "loop.md"
    loop.symlink_to(loop)
    with pytest.raises(WriteError, match="loop of symbolic links"):
        fileio.write_text(loop, "x")


def test_fifos_and_character_devices_are_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    fileio.write_text(fifo, "through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.lstat().st_mode)
    fileio.write_text("/dev/null", "gone")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # never renamed over


def test_folders_and_other_special_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="it is a folder"):
        fileio.write_text(tmp_path, "x")
    with pytest.raises(WriteError, match="its folder does not exist"):
        fileio.write_text(tmp_path / "no" / "such.md", "x")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_make_private_fixes_folders_and_files_left_by_a_wide_umask(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    (folder / "conversations.sqlite3").write_text("x")
    os.chmod(folder / "conversations.sqlite3", 0o644)
    fileio.make_private(folder)
    assert mode(folder) == 0o700 and mode(folder / "conversations.sqlite3") == 0o600


def test_read_only_and_full_disks_are_named(tmp_path: Path) -> None:
    """Real EROFS and ENOSPC from the kernel, in a private mount namespace."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "kept.txt").write_text("old")
    code = ("import sys; from app import fileio\n"
            "try:\n    fileio.write_text(sys.argv[1], 'new' * 100000)\n"
            "except fileio.WriteError as e:\n    print(e)\n")
    ro = sandbox.run([sys.executable, "-c", code, str(folder / "kept.txt")], read_only=[folder])
    assert "the file system is read-only" in ro.stdout, ro.stdout + ro.stderr
    full = sandbox.run([sys.executable, "-c", code + "import pathlib\n"
                        "print(sorted(p.name for p in pathlib.Path(sys.argv[1]).parent.iterdir()))",
                        str(folder / "new.txt")], full=folder)
    assert "the disk is full" in full.stdout, full.stdout + full.stderr
    assert "['.filler']" in full.stdout  # the temporary file was removed
    assert (folder / "kept.txt").read_text() == "old"


def test_a_registry_read_gives_its_list_and_empty_for_anything_else(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "registry.json"
    assert fileio.read_json_list(path, "items") == []  # missing: empty, nothing logged
    assert not caplog.records
    path.write_text('{"items": [{"a": 1}, 2], "other": []}')
    assert fileio.read_json_list(path, "items") == [{"a": 1}, 2]
    assert fileio.read_json_list(path, "absent") == []
    path.write_text('["items"]')  # JSON, but no object: no entries
    assert fileio.read_json_list(path, "items") == []
    for text in ("{not json", '{"items": 5}', '{"items": "abc"}'):  # damaged: empty, logged
        caplog.clear()
        path.write_text(text)
        assert fileio.read_json_list(path, "items") == []
        assert [r.levelname for r in caplog.records if str(path) in r.getMessage()] == ["WARNING"]
    path.write_bytes(b"\xff\xfe")  # not UTF-8: unreadable
    assert fileio.read_json_list(path, "items") == []
