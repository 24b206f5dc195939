"""Bug 11: missing X11 libraries are named, with the install commands, before Qt can abort."""

from __future__ import annotations

from typing import Any

from app.ui import platform_check
from app.ui.platform_check import XCB_LIBRARIES, check_display, uses_xcb, xcb_message


def test_only_an_xcb_start_on_linux_is_checked() -> None:
    assert uses_xcb({}, "linux")
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not uses_xcb({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not uses_xcb({}, "darwin") and not uses_xcb({}, "win32")


def test_missing_libraries_make_one_line_with_both_install_commands() -> None:
    gone = {"libxcb-cursor.so.0", "libxkbcommon-x11.so.0"}
    line = check_display({}, loads=lambda soname: soname not in gone)
    assert line is not None and "\n" not in line
    assert line.startswith("llama-desk: error:")
    assert "libxcb-cursor.so.0" in line and "libxkbcommon-x11.so.0" in line
    assert "sudo apt install libxcb-cursor0 libxkbcommon-x11-0" in line
    assert "sudo dnf install libxkbcommon-x11 xcb-util-cursor" in line
    assert check_display({}, loads=lambda soname: True) is None
    assert check_display({"QT_QPA_PLATFORM": "offscreen"}, loads=lambda s: False) is None


def test_the_issue_s_four_libraries_are_checked() -> None:
    for soname in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1",
                   "libxkbcommon-x11.so.0"):
        assert soname in XCB_LIBRARIES
    assert "libxcb-icccm4" in xcb_message(["libxcb-icccm.so.4"])


def test_run_app_prints_the_line_and_exits_before_qt(monkeypatch: Any, capsys: Any) -> None:
    import app.ui.application as application

    monkeypatch.setattr(application.QApplication, "instance", staticmethod(lambda: None))
    monkeypatch.setattr(platform_check, "check_display", lambda: "llama-desk: error: no xcb")

    def no_qt(*_args: Any) -> Any:
        raise AssertionError("the QApplication must not be created")

    monkeypatch.setattr(application, "create_app", no_qt)
    assert application.run_app([]) == 1
    assert capsys.readouterr().err.strip() == "llama-desk: error: no xcb"
