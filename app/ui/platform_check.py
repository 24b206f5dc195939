"""Before the window starts on Linux: are the X11 libraries Qt's xcb platform plugin needs there?

Without them Qt prints "Could not load the Qt platform plugin xcb" and aborts the process; this
check names the missing libraries and the command that installs them instead. It uses no Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

# soname -> (Debian/Ubuntu package, Fedora package): what Qt 6's xcb plugin loads beyond libxcb.
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(env: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will try the xcb plugin (Linux, no other platform asked for, no Wayland)."""
    env = dict(os.environ) if env is None else env
    if not (platform or sys.platform).startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")  # on Wayland Qt uses its wayland plugin first


def missing_xcb_libraries(loads: Callable[[str], bool] = _loads) -> list[str]:
    """The sonames of XCB_LIBRARIES that cannot be loaded here."""
    return [soname for soname in XCB_LIBRARIES if not loads(soname)]


def xcb_message(missing: list[str]) -> str:
    """One line: what is missing and how to install it on Debian/Ubuntu and on Fedora."""
    debian = sorted({XCB_LIBRARIES[s][0] for s in missing})
    fedora = sorted({XCB_LIBRARIES[s][1] for s in missing})
    return (f"llama-desk: error: the window needs X11 libraries that are not installed "
            f"({', '.join(missing)}); install them with `sudo apt install {' '.join(debian)}` "
            f"(Debian/Ubuntu) or `sudo dnf install {' '.join(fedora)}` (Fedora), or use the "
            "command line (`llama-desk chat`).")


def check_display(env: dict[str, str] | None = None,
                  loads: Callable[[str], bool] = _loads) -> str | None:
    """The error line to print instead of starting Qt, or None when the window can start."""
    if not uses_xcb(env):
        return None
    missing = missing_xcb_libraries(loads)
    return xcb_message(missing) if missing else None
