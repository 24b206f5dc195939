"""Light or dark (as the OS asks, or as chosen): Fusion, a matching palette, colours and one style sheet."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEMES = ("system", "light", "dark")


@dataclass(frozen=True)
class Colors:
    """The window's colours; every widget takes its colours from here (or the palette)."""

    dark: bool
    window: str  # the chat surface
    sidebar: str
    surface: str  # raised things: the composer box, menus, cards
    user_bubble: str
    text: str
    muted: str
    faint: str  # borders, separators
    hover: str
    selected: str
    accent: str
    accent_text: str
    link: str
    code_bg: str
    code_header: str
    code_inline: str
    danger: str
    warning: str
    success: str
    table_header: str


# Each colour of Colors as (light, dark), side by side so the two themes stay in step.
_ROLES: dict[str, tuple[str, str]] = {
    "window":       ("#ffffff", "#212224"),
    "sidebar":      ("#f6f7f9", "#18191b"),
    "surface":      ("#ffffff", "#2a2b2e"),
    "user_bubble":  ("#eef1f5", "#303236"),
    "text":         ("#1f2328", "#e8e8ea"),
    "muted":        ("#667085", "#a0a4ab"),
    "faint":        ("#e3e6ea", "#3a3c40"),
    "hover":        ("#eceef2", "#2c2e31"),
    "selected":     ("#e2e6ee", "#35383d"),
    "accent":       ("#2f6fde", "#5b8def"),
    "accent_text":  ("#ffffff", "#ffffff"),
    "link":         ("#1f62d0", "#8ab4ff"),
    "code_bg":      ("#f6f8fa", "#17181a"),
    "code_header":  ("#eceff3", "#2a2c30"),
    "code_inline":  ("#eef0f3", "#34363b"),
    "danger":       ("#c0392b", "#ff7b72"),
    "warning":      ("#9a6700", "#e3b341"),
    "success":      ("#1a7f37", "#56d364"),
    "table_header": ("#f2f4f7", "#2a2c30"),
}
# The banners' (background, text, border), per kind, as (light, dark).
BANNERS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "error": (("#fdecea", "#611a15", "#f5c6cb"), ("#3b1f1f", "#ffb4ab", "#6e2f2b")),
    "warning": (("#fff4e5", "#663c00", "#ffd8a8"), ("#3a2e12", "#f2cc60", "#6b5420")),
    "info": (("#e8f1fd", "#0b3a75", "#b6d4fe"), ("#1d2a3d", "#a8c7fa", "#2f4a6e")),
}
LIGHT = Colors(dark=False, **{role: pair[0] for role, pair in _ROLES.items()})
DARK = Colors(dark=True, **{role: pair[1] for role, pair in _ROLES.items()})
_choice = "system"  # the app's theme setting: "system", "light" or "dark"


def set_choice(choice: str) -> None:
    """Use ``choice`` ("system", "light", "dark") from now on (call apply_theme after)."""
    global _choice
    _choice = choice if choice in THEMES else "system"


def system_is_dark() -> bool:
    """Whether the OS asks for a dark colour scheme."""
    hints = QGuiApplication.styleHints()
    return bool(hints.colorScheme() == Qt.ColorScheme.Dark)


def is_dark() -> bool:
    """Whether the window is dark now: the theme setting, else the OS's colour scheme."""
    if _choice != "system":
        return _choice == "dark"
    return system_is_dark()


def colors() -> Colors:
    return DARK if is_dark() else LIGHT


def dark_palette() -> QPalette:
    """Fusion's roles in dark greys with light text (Fusion has no dark palette of its own)."""
    return _palette(DARK)


def _palette(c: Colors) -> QPalette:
    p = QPalette()
    window = QColor(c.sidebar if c.dark else "#f3f4f6")
    base, text = QColor(c.window), QColor(c.text)
    muted = QColor(c.muted)
    for role, color in (
        (QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, QColor(c.hover)),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor(c.surface)),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.ToolTipBase, QColor(c.surface)),
        (QPalette.ColorRole.ToolTipText, text), (QPalette.ColorRole.Highlight, QColor(c.accent)),
        (QPalette.ColorRole.HighlightedText, QColor(c.accent_text)),
        (QPalette.ColorRole.Link, QColor(c.link)), (QPalette.ColorRole.LinkVisited, QColor(c.link)),
        (QPalette.ColorRole.PlaceholderText, muted), (QPalette.ColorRole.Mid, QColor(c.faint)),
        (QPalette.ColorRole.Light, QColor(c.surface)), (QPalette.ColorRole.Dark, QColor(c.faint)),
    ):
        p.setColor(role, color)
    # Disabled things must look disabled (a disabled Send looked enabled in the dark).
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(c.faint if c.dark else "#a8adb5"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, window)
    return p


def chevron(c: Colors) -> str:
    """The combo boxes' arrow, a local SVG (resources/ui) in the theme's muted colour."""
    from app import paths

    name = "chevron-dark.svg" if c.dark else "chevron-light.svg"
    return (paths.resources_dir() / "ui" / name).as_posix()


def banner_rules(c: Colors) -> str:
    """The banners' colours, in the app's style sheet so live banners follow a theme change."""
    rules = []
    for kind, pair in BANNERS.items():
        background, text, border = pair[1 if c.dark else 0]
        rules.append(
            f"QFrame#banner-{kind} {{ background-color: {background}; color: {text};"
            f" border: 1px solid {border}; border-radius: 8px; }}\n"
            f"QFrame#banner-{kind} QLabel {{ color: {text}; background: transparent;"
            " border: none; }\n")
    return "".join(rules)


def style_sheet(c: Colors, point_size: int) -> str:
    """The app's one style sheet, sized from the font-size setting (sidebar included)."""
    small = max(6, point_size - 2)
    return f"""
QMainWindow, QDialog {{ background: {c.window}; }}
QDialogButtonBox {{ dialogbuttonbox-buttons-have-icons: 0; }}
QToolTip {{ color: {c.text}; background: {c.surface}; border: 1px solid {c.faint};
    padding: 4px 6px; border-radius: 4px; }}
QWidget#sidebar {{ background: {c.sidebar}; }}
QWidget#sidebar QListWidget {{ background: transparent; border: none; outline: none; }}
QWidget#sidebar QListWidget::item {{ border-radius: 8px; }}
QWidget#chatArea, QWidget#chatColumnHost, QScrollArea#chatView, QWidget#chatViewport
    {{ background: {c.window}; border: none; }}
QWidget#topBar {{ background: {c.window}; border-bottom: 1px solid {c.faint}; }}
QLabel[muted="true"] {{ color: {c.muted}; }}
QLabel[strong="true"] {{ font-weight: 600; }}
QLabel[danger="true"], QLabel[tone="danger"] {{ color: {c.danger}; }}
QLabel[tone="warning"] {{ color: {c.warning}; }}
QLabel#cutMarker {{ color: {c.warning}; padding: 6px; }}
QTextBrowser#richText {{ background: transparent; border: none; }}
QLabel[small="true"] {{ font-size: {small}pt; }}
QLineEdit, QPlainTextEdit, QComboBox {{
    border: 1px solid {c.faint}; border-radius: 6px; padding: 4px 6px;
    background: {c.surface}; color: {c.text}; selection-background-color: {c.accent}; }}
QLineEdit:focus, QPlainTextEdit:focus, QComboBox:focus {{ border: 1px solid {c.accent}; }}
QLineEdit:disabled, QPlainTextEdit:disabled, QComboBox:disabled {{ color: {c.muted};
    background: {c.hover}; }}
QSpinBox, QDoubleSpinBox {{ padding: 3px 4px; }}
QComboBox::drop-down {{ border: none; width: 18px; }}
QComboBox::down-arrow {{ image: url({chevron(c)}); width: 12px; height: 12px; }}
QComboBox#modelPicker {{ border: 1px solid transparent; font-weight: 600; padding: 4px 8px;
    background: transparent; }}
QComboBox#modelPicker:hover {{ background: {c.hover}; }}
QComboBox#modelPicker:focus {{ border: 1px solid {c.accent}; }}
QComboBox QAbstractItemView {{ background: {c.surface}; color: {c.text};
    border: 1px solid {c.faint}; selection-background-color: {c.selected};
    selection-color: {c.text}; outline: none; }}
QPushButton {{ border: 1px solid {c.faint}; border-radius: 6px; padding: 5px 12px;
    background: {c.surface}; color: {c.text}; }}
QPushButton:hover {{ background: {c.hover}; }}
QPushButton:pressed, QPushButton:checked {{ background: {c.selected}; }}
QPushButton:focus {{ border: 1px solid {c.accent}; }}
QPushButton:disabled {{ color: {c.muted}; background: {c.hover}; border-color: {c.hover}; }}
QPushButton[primary="true"] {{ background: {c.accent}; color: {c.accent_text};
    border: 1px solid {c.accent}; }}
QPushButton[primary="true"]:hover {{ background: {QColor(c.accent).darker(110).name()}; }}
QPushButton[primary="true"]:disabled {{ background: {c.faint}; color: {c.muted};
    border-color: {c.faint}; }}
QPushButton[danger="true"] {{ color: {c.danger}; }}
QToolButton {{ border: none; border-radius: 6px; padding: 4px; background: transparent;
    color: {c.muted}; }}
QToolButton:hover {{ background: {c.hover}; color: {c.text}; }}
QToolButton:pressed, QToolButton:checked {{ background: {c.selected}; color: {c.text}; }}
QToolButton:focus {{ border: 1px solid {c.accent}; }}
QToolButton:disabled {{ color: {c.faint}; }}
QFrame#composerBox {{ background: {c.surface}; border: 1px solid {c.faint};
    border-radius: 14px; }}
QFrame#composerBox[focused="true"] {{ border: 1px solid {c.accent}; }}
QFrame#composerBox QPlainTextEdit {{ border: none; background: transparent; padding: 2px; }}
QToolButton#sendButton {{ background: {c.text}; color: {c.window}; border-radius: 15px;
    padding: 6px; }}
QToolButton#sendButton:hover {{ background: {c.muted}; }}
QToolButton#sendButton:disabled {{ background: {c.faint}; color: {c.muted}; }}
QToolButton#sendButton:focus {{ border: 2px solid {c.accent}; }}
QFrame#exampleCard {{ background: {c.surface}; border: 1px solid {c.faint};
    border-radius: 12px; }}
QFrame#exampleCard:hover {{ background: {c.hover}; }}
QFrame#exampleCard:focus {{ border: 1px solid {c.accent}; }}
QFrame#userBubble {{ background: {c.user_bubble}; border-radius: 16px; }}
QFrame#codeBlock {{ background: {c.code_bg}; border: 1px solid {c.faint}; border-radius: 8px; }}
QWidget#codeHeader {{ background: {c.code_header}; border-top-left-radius: 8px;
    border-top-right-radius: 8px; }}
QFrame#progressBlock {{ background: {c.hover}; border-radius: 10px; }}
QProgressBar {{ border: none; border-radius: 3px; background: {c.faint}; max-height: 6px;
    text-align: center; }}
QProgressBar::chunk {{ background: {c.accent}; border-radius: 3px; }}
QProgressBar[textVisible="true"] {{ max-height: 18px; color: {c.text}; }}
QTabWidget::pane {{ border: 1px solid {c.faint}; border-radius: 6px; top: -1px; }}
QTabBar::tab {{ padding: 6px 14px; border: none; color: {c.muted}; }}
QTabBar::tab:selected {{ color: {c.text}; border-bottom: 2px solid {c.accent}; }}
QTreeView::item, QTableView::item {{ padding: 3px 10px 3px 2px; }}
QTreeWidget, QTableWidget, QListWidget {{ background: {c.window}; color: {c.text};
    border: 1px solid {c.faint}; border-radius: 6px; alternate-background-color: {c.hover};
    selection-background-color: {c.selected}; selection-color: {c.text}; outline: none; }}
QHeaderView::section {{ background: {c.table_header}; color: {c.muted}; border: none;
    border-bottom: 1px solid {c.faint}; padding: 5px 8px; }}
QListWidget#settingsPages {{ border: none; background: transparent; }}
QListWidget#settingsPages::item {{ padding: 7px 10px; border-radius: 6px; }}
QListWidget#settingsPages::item:selected {{ background: {c.selected}; }}
QGroupBox {{ border: 1px solid {c.faint}; border-radius: 8px; margin-top: 14px;
    padding: 10px 8px 8px 8px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {c.muted}; }}
QStatusBar {{ background: {c.sidebar}; color: {c.muted}; border-top: 1px solid {c.faint}; }}
QStatusBar QLabel {{ color: {c.muted}; padding: 0 6px; }}
QStatusBar::item {{ border: none; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar::handle:vertical {{ background: {c.faint}; border-radius: 3px; min-height: 30px; }}
QScrollBar::handle:vertical:hover {{ background: {c.muted}; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 2px; }}
QScrollBar::handle:horizontal {{ background: {c.faint}; border-radius: 3px; min-width: 30px; }}
QScrollBar::handle:horizontal:hover {{ background: {c.muted}; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: transparent; }}
QSplitter::handle {{ background: {c.faint}; }}
QMenu {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.faint}; padding: 4px; }}
QMenu::item {{ padding: 5px 18px; border-radius: 4px; }}
QMenu::item:selected {{ background: {c.hover}; }}
{banner_rules(c)}"""


def set_style_property(widget: QWidget, name: str, value: object) -> None:
    """Set a property the app's style sheet selects on (``[danger="true"]``) and restyle
    ``widget`` at once (Qt does not when a property changes); nothing when it has it already
    (an unset property counts as False or "": a new widget is not restyled for nothing)."""
    current = widget.property(name)
    if current != value and (current or value):
        widget.setProperty(name, value)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


def set_tone(label: QWidget, tone: str = "") -> None:
    """Colour ``label`` "danger", "warning" or plain ("") through the app's style sheet, so
    that it follows a theme change (a colour set on the widget itself would not)."""
    set_style_property(label, "tone", tone)


def apply_theme(app: QApplication, point_size: int | None = None) -> None:
    """Fusion style with the light or dark palette and style sheet; the app font at
    ``point_size`` (the font-size setting) so every widget follows it."""
    if app.style().name().lower() != "fusion" and not app.styleSheet():
        app.setStyle("Fusion")  # once (a style sheet wraps the style, which then has no name)
    c = colors()
    if point_size is not None:
        font = QFont(app.font())
        font.setPointSize(point_size)
        app.setFont(font)
    size = app.font().pointSize()
    app.setPalette(_palette(c))
    app.setStyleSheet(style_sheet(c, size if size > 0 else 10))
