"""The window's line icons: small SVG drawings made here, in the theme's colours (nothing fetched)."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractButton, QWidget

# 24×24 stroke drawings (currentColor is replaced by the colour asked for).
PATHS = {
    "copy": '<rect x="9" y="9" width="11" height="11" rx="2"/><path d="M5 15V6a2 2 0 0 1 2-2h8"/>',
    "check": '<path d="M5 12.5l4.5 4.5L19 7.5"/>',
    "edit": '<path d="M4 20h4L19 9a2.1 2.1 0 0 0-4-4L4 16z"/><path d="M13.5 6.5l4 4"/>',
    "regenerate": '<path d="M20 11a8 8 0 1 0-2.3 5.7"/><path d="M20 4v7h-7"/>',
    "prompt": ('<rect x="5" y="3" width="14" height="18" rx="2"/>'
               '<path d="M9 8h6M9 12h6M9 16h3"/>'),
    "code": '<path d="M9 7l-5 5 5 5M15 7l5 5-5 5"/>',
    "prev": '<path d="M15 5l-7 7 7 7"/>',
    "next": '<path d="M9 5l7 7-7 7"/>',
    "send": '<path d="M12 19V5M6 11l6-6 6 6"/>',
    "stop": '<rect x="7" y="7" width="10" height="10" rx="1.5" fill="currentColor"/>',
    "new": ('<path d="M11 4H6a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-5"/>'
            '<path d="M18.5 2.5a2.1 2.1 0 0 1 3 3L12 15l-4 1 1-4z"/>'),
    "search": '<circle cx="11" cy="11" r="7"/><path d="M20 20l-4-4"/>',
    "trash": '<path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"/>',
    "settings": ('<path d="M4 6h9M17 6h3M4 12h3M11 12h9M4 18h11M19 18h1"/>'
                 '<circle cx="15" cy="6" r="2"/><circle cx="9" cy="12" r="2"/>'
                 '<circle cx="17" cy="18" r="2"/>'),
    "sidebar": '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M9 4v16"/>',
    "pin": ('<path d="M12 3.5l2.6 5.3 5.9.9-4.3 4.1 1 5.8L12 16.9l-5.2 2.7 1-5.8-4.3-4.1'
            ' 5.9-.9z"/>'),
    "download": '<path d="M12 4v11M7 10l5 5 5-5M5 20h14"/>',
    "close": '<path d="M6 6l12 12M18 6L6 18"/>',
    "restore": '<path d="M9 14L4 9l5-5"/><path d="M4 9h10a6 6 0 0 1 0 12h-3"/>',
    "model": ('<rect x="6" y="6" width="12" height="12" rx="2"/>'
              '<path d="M9 2v4M15 2v4M9 18v4M15 18v4M2 9h4M2 15h4M18 9h4M18 15h4"/>'),
    "more": ('<circle cx="5" cy="12" r="1.3" fill="currentColor"/><circle cx="12" cy="12"'
             ' r="1.3" fill="currentColor"/><circle cx="19" cy="12" r="1.3" fill="currentColor"/>'),
    "keyboard": ('<rect x="2" y="6" width="20" height="12" rx="2"/>'
                 '<path d="M6 10h0M10 10h0M14 10h0M18 10h0M7 14h10"/>'),
    "chat": '<path d="M4 5h16v11H9l-5 4z"/>',
}


def svg(name: str, color: str) -> bytes:
    body = PATHS[name].replace("currentColor", color)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" '
            f'stroke="{color}" stroke-width="1.8" stroke-linecap="round" '
            f'stroke-linejoin="round">{body}</svg>').encode()


def pixmap(name: str, color: str, size: int = 18, ratio: float = 2.0) -> QPixmap:
    """``name`` drawn in ``color`` at ``size`` logical pixels (sharp on high-DPI screens)."""
    px = QPixmap(int(size * ratio), int(size * ratio))
    px.fill(Qt.GlobalColor.transparent)
    renderer = QSvgRenderer(QByteArray(svg(name, color)))
    painter = QPainter(px)
    renderer.render(painter, QRectF(0, 0, px.width(), px.height()))
    painter.end()
    px.setDevicePixelRatio(ratio)
    return px


@lru_cache(maxsize=256)
def icon(name: str, color: str, active: str = "", disabled: str = "", size: int = 18) -> QIcon:
    """A QIcon of ``name``: ``color`` normally, ``active`` on hover, ``disabled`` when disabled."""
    result = QIcon()
    drawn: dict[str, QPixmap] = {}  # each colour drawn once
    for mode, wanted in ((QIcon.Mode.Normal, color), (QIcon.Mode.Active, active or color),
                         (QIcon.Mode.Selected, active or color),
                         (QIcon.Mode.Disabled, disabled or color)):
        if wanted not in drawn:
            drawn[wanted] = pixmap(name, wanted, size)
        result.addPixmap(drawn[wanted], mode)
    return result


def themed(name: str, size: int = 18) -> QIcon:
    """``name`` in the current theme's muted colour, brighter on hover."""
    from app.ui.theme import colors

    c = colors()
    return icon(name, c.muted, c.text, c.faint, size)


def retheme(root: QWidget) -> None:
    """Redraw the themed icons of ``root``'s buttons in the current theme's colours."""
    for button in root.findChildren(QAbstractButton):
        name = button.property("icon_name")
        if name:
            button.setIcon(themed(str(name), button.iconSize().width() or 18))
