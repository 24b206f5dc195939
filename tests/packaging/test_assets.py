"""The app icon files (PNG sizes, ICO, ICNS), the icon generator and the Linux menu entry."""

from __future__ import annotations

import configparser
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"
DESKTOP = ROOT / "resources" / "llama-desk.desktop"
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def ico_sizes(data: bytes) -> list[int]:
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1), "not an icon file"
    sizes = []
    for i in range(count):
        w, h, _colors, _res, _planes, bpp, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * i: 22 + 16 * i]
        )
        image = data[offset: offset + length]
        assert len(image) == length
        size = w or 256
        assert (w, h) == (size % 256, size % 256) and bpp == 32
        assert png_size(image) == (size, size)
        sizes.append(size)
    return sizes


def icns_sizes(data: bytes) -> dict[str, int]:
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    found, pos = {}, 8
    while pos < len(data):
        kind, length = data[pos: pos + 4].decode(), struct.unpack(">I", data[pos + 4: pos + 8])[0]
        width, height = png_size(data[pos + 8: pos + length])
        assert width == height
        found[kind] = width
        pos += length
    assert pos == len(data)
    return found


def check_icon_set(folder: Path) -> None:
    for size in PNG_SIZES:
        assert png_size((folder / f"llama-desk-{size}.png").read_bytes()) == (size, size)
    assert ico_sizes((folder / "llama-desk.ico").read_bytes()) == [16, 24, 32, 48, 64, 128, 256]
    icns = icns_sizes((folder / "llama-desk.icns").read_bytes())
    assert icns == {
        "icp4": 16, "icp5": 32, "icp6": 64, "ic07": 128, "ic08": 256, "ic09": 512, "ic10": 1024,
        "ic11": 32, "ic12": 64, "ic13": 256, "ic14": 512,
    }


def test_committed_icons_have_every_size() -> None:
    assert (ICONS / "llama-desk.svg").read_text().lstrip().startswith("<?xml")
    check_icon_set(ICONS)


def test_make_icons_renders_the_svg(tmp_path: Path) -> None:
    out = tmp_path / "icons"
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "make_icons.py"), str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    check_icon_set(out)
    # Not blank: the 64 px render has opaque pixels of more than one colour.
    from PySide6.QtGui import QImage

    image = QImage(str(out / "llama-desk-64.png"))
    colours = {image.pixel(x, y) for x in range(0, 64, 4) for y in range(0, 64, 4)}
    assert len(colours) > 3
    assert image.pixelColor(0, 0).alpha() == 0  # the rounded corner is transparent
    assert image.pixelColor(32, 50).alpha() == 255


@pytest.mark.qt_log_ignore("Cannot read file")
def test_make_icons_rejects_a_broken_svg(tmp_path: Path, qapp: object) -> None:
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import make_icons
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    bad = tmp_path / "bad.svg"
    bad.write_text("<svg this is not xml")
    with pytest.raises(SystemExit, match="cannot read the icon source"):
        make_icons.make_icons(tmp_path / "out", bad)


def read_desktop(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def test_desktop_entry_has_the_required_keys() -> None:
    entry = read_desktop(DESKTOP)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Llama Desk"
    assert entry["Exec"] == "llama-desk"
    assert entry["Icon"] == "llama-desk"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate not installed (apt: desktop-file-utils)")
def test_desktop_entry_passes_desktop_file_validate() -> None:
    done = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
