"""Settings, in pages: this chat's system prompt and sampling (a default for new chats only when
asked), the model options, and the look. Other parts add their own pages with ``add_page``."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.engine.types import LLAMA2_DEFAULT_SYSTEM_PROMPT, SAMPLING_RANGES, Sampling
from app.errors import SettingsError
from app.settings import AppSettings
from app.ui.sizing import CheckRow, ElidedLabel, resize_within_screen

FORMAT_CHOICES = (
    ("Automatic (Llama-2 reference, or the model's own template)", "auto"),
    ("Llama-2-chat (Meta's reference format)", "llama-2"),
    ("The model's embedded chat template", "template"),
)
THEME_CHOICES = (("Follow the system", "system"), ("Light", "light"), ("Dark", "dark"))
INT_MAX = 2**31 - 1  # QSpinBox holds a C int
SPIN_WIDTH = 200
PAGE_PADDING = 2 * 10 + 12  # the style sheet's item padding each side, and room for the frame


def _double(name: str, value: float) -> QDoubleSpinBox:
    """A spin box over the engine's range for sampling setting ``name``."""
    allowed = SAMPLING_RANGES[name]
    box = QDoubleSpinBox()
    box.setDecimals(allowed.decimals)
    box.setRange(allowed.low, allowed.high)
    box.setSingleStep(allowed.step)
    box.setValue(value)
    box.setMaximumWidth(SPIN_WIDTH)
    return box


def _whole(name: str, value: int) -> QSpinBox:
    """A spin box over the engine's range for whole-number sampling setting ``name``."""
    allowed = SAMPLING_RANGES[name]
    box = _int(int(allowed.low), min(INT_MAX, int(allowed.high)), min(INT_MAX, value))
    box.setSingleStep(int(allowed.step))
    return box


def _int(low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setMaximumWidth(SPIN_WIDTH)
    return box


def _choices(name: str, choices: tuple[tuple[str, str], ...], current: str) -> QComboBox:
    """A combo box of ``(label, value)`` choices showing ``current`` (else the first)."""
    box = QComboBox()
    box.setAccessibleName(name)
    for label, value in choices:
        box.addItem(label, value)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setProperty("muted", True)
    label.setProperty("small", True)
    return label


def _row(*widgets: QWidget, stretch: bool = True) -> QWidget:
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget)
    if stretch:
        row.addStretch(1)
    return holder


class SettingsDialog(QDialog):
    """Edits a conversation's settings and the app settings; validated before it closes.

    ``conversation``: the open conversation's title (None: the settings are for the next new
    chat). Nothing here changes the defaults for new chats unless "make default" is ticked.
    """

    def __init__(self, system_prompt: str, sampling: Sampling, app_settings: AppSettings,
                 parent: QWidget | None = None, model_path: str | None = None,
                 conversation: str | None = None) -> None:
        super().__init__(parent)
        self.model_path = model_path
        self.setWindowTitle("Settings")
        self.app_settings = app_settings
        self.pages = QListWidget(self)
        self.pages.setObjectName("settingsPages")
        self.pages.setAccessibleName("Settings pages")
        self.stack = QStackedWidget(self)
        self.pages.currentRowChanged.connect(self.stack.setCurrentIndex)
        self._chat_page(self.add_form_page("Chat"), system_prompt, sampling, conversation)
        self._model_page(self.add_form_page("Model"))
        self._appearance_page(self.add_form_page("Appearance"))
        from app.ui.api_server import ApiServerPage

        self.api_page = ApiServerPage(app_settings, self)
        self.add_page("Local API server", self.api_page)

        self.error = QLabel("")
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # it quotes values the user typed
        self.error.setProperty("danger", True)  # the app's style sheet colours it, per theme
        self.error.setWordWrap(True)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        ok = box.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Save")
        ok.setProperty("primary", True)
        body = QHBoxLayout()
        body.addWidget(self.pages)
        body.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.error)
        layout.addWidget(box)
        self.pages.setCurrentRow(0)
        self.fit_page_list()
        resize_within_screen(self, 760, 660)

    def add_page(self, title: str, page: QWidget) -> QWidget:
        """Add a page (a scrolling form) under ``title`` in the list on the left."""
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(page)
        scroll.viewport().setAutoFillBackground(False)
        page.setAutoFillBackground(False)
        self.pages.addItem(title)
        self.stack.addWidget(scroll)
        self.fit_page_list()
        return page

    def fit_page_list(self) -> None:
        """The page list is as wide as its widest entry in the current font (plus padding)."""
        metrics = self.pages.fontMetrics()
        widest = max((metrics.horizontalAdvance(self.pages.item(row).text())
                      for row in range(self.pages.count())), default=0)
        styled = self.pages.sizeHintForColumn(0)  # what the style sheet's item padding makes it
        self.pages.setFixedWidth(max(widest + PAGE_PADDING, styled + PAGE_PADDING - 20)
                                 + 2 * self.pages.frameWidth())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.fit_page_list()
        super().changeEvent(event)

    def add_form_page(self, title: str) -> QFormLayout:
        """Add an empty form page under ``title``; the caller fills the form returned. A field
        too wide for its row (a large font) moves under its label rather than widening the page."""
        page = QWidget()
        self.add_page(title, page)
        form = QFormLayout(page)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        return form

    # -- pages ---------------------------------------------------------------------------------
    def _chat_page(self, form: QFormLayout, system_prompt: str, sampling: Sampling,
                   conversation: str | None) -> None:
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        where = (f"For this conversation: “{conversation}”" if conversation is not None
                 else "For the next new chat")
        self.heading = ElidedLabel(where)  # a long title must not widen the dialog
        self.heading.setProperty("strong", True)
        form.addRow(self.heading)
        self.system = QPlainTextEdit(system_prompt)
        self.system.setAccessibleName("System prompt")
        self.system.setPlaceholderText("Optional instructions the model sees before the chat")
        self.system.setTabChangesFocus(True)
        self.system.setMinimumHeight(110)
        preset = QPushButton("Use Llama-2 default")
        preset.setToolTip("Meta's default Llama-2-chat system prompt")
        preset.clicked.connect(lambda: self.system.setPlainText(LLAMA2_DEFAULT_SYSTEM_PROMPT))
        clear = QPushButton("Clear")
        clear.clicked.connect(self.system.clear)
        self.temperature = _double("temperature", sampling.temperature)
        self.top_p = _double("top_p", sampling.top_p)
        self.top_k = _whole("top_k", sampling.top_k)
        self.min_p = _double("min_p", sampling.min_p)
        self.repeat_penalty = _double("repeat_penalty", sampling.repeat_penalty)
        self.presence_penalty = _double("presence_penalty", sampling.presence_penalty)
        self.frequency_penalty = _double("frequency_penalty", sampling.frequency_penalty)
        self.max_tokens = _whole("max_tokens", sampling.max_tokens)
        self.random_seed = QCheckBox("Random")
        self.seed = _whole("seed", sampling.seed or 0)
        # A seed above INT_MAX (valid for the engine, e.g. set by the CLI) shows clamped and is
        # kept unless the user changes it.
        self._big_seed = sampling.seed if (sampling.seed or 0) > INT_MAX else None
        self.random_seed.setChecked(sampling.seed is None)
        self.seed.setEnabled(sampling.seed is not None)
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))
        default_row = CheckRow("Also make these the defaults for new chats")
        self.default_box = default_row.box
        self.default_box.setAccessibleName("Make default for new chats")
        form.addRow("System prompt", self.system)
        form.addRow("", _row(preset, clear))
        form.addRow("Temperature", self.temperature)
        form.addRow("Top p", self.top_p)
        form.addRow("Top k (0 = off)", self.top_k)
        form.addRow("Min p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Presence penalty", self.presence_penalty)
        form.addRow("Frequency penalty", self.frequency_penalty)
        form.addRow("Max new tokens", self.max_tokens)
        form.addRow("Seed", _row(self.seed, self.random_seed))
        form.addRow("", default_row)
        default_prompt = self.app_settings.default_system_prompt.strip()
        form.addRow("", _note("New chats start with "
                              + (f"the system prompt “{default_prompt[:80]}”"
                                 + ("…" if len(default_prompt) > 80 else "")
                                 if default_prompt else "no system prompt")
                              + " and the default sampling; tick the box above to change that."))

    def _model_page(self, form: QFormLayout) -> None:
        s = self.app_settings
        self.context = _int(256, 1_048_576, s.context_size)
        self.context.setSingleStep(512)
        self.auto_gpu = QCheckBox("Automatic")
        self.gpu_layers = _int(-1, 1000, s.gpu_layers if s.gpu_layers is not None else -1)
        self.gpu_layers.setToolTip("-1 = all layers, 0 = CPU only")
        self.auto_gpu.setChecked(s.gpu_layers is None)
        self.gpu_layers.setEnabled(s.gpu_layers is not None)
        self.auto_gpu.toggled.connect(lambda on: self.gpu_layers.setEnabled(not on))
        path = self.model_path
        current = s.prompt_formats.get(path, "auto") if path else "auto"
        self.prompt_format = _choices("Prompt format for this model", FORMAT_CHOICES, current)
        # Long choices: the box shows what fits and its list shows them whole.
        self.prompt_format.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.prompt_format.setMinimumContentsLength(16)
        self.prompt_format.setEnabled(path is not None)
        form.addRow(_note("These apply when the model is next loaded (it reloads on Save)."))
        form.addRow("Context size (tokens)", self.context)
        form.addRow("GPU layers", _row(self.gpu_layers, self.auto_gpu))
        form.addRow("Prompt format (this model)", self.prompt_format)
        self.workers = QLineEdit(", ".join(s.workers))
        self.workers.setAccessibleName("RPC workers")
        self.workers.setPlaceholderText("none (e.g. 192.168.1.20:50052, 192.168.1.21:50052)")
        form.addRow("Workers (llama.cpp RPC)", self.workers)
        form.addRow(_note("Machines running `llama-desk worker` to spread a model over. RPC is "
                          "unauthenticated: use workers only on a network you trust."))

    def _appearance_page(self, form: QFormLayout) -> None:
        s = self.app_settings
        self.font_size = _int(6, 48, s.font_size)
        self.font_size.setSuffix(" pt")
        self.theme = _choices("Theme", THEME_CHOICES, s.theme)
        self.theme.setMaximumWidth(SPIN_WIDTH + 60)
        form.addRow("Theme", self.theme)
        form.addRow("Font size", self.font_size)
        form.addRow(_note("The font size applies to the whole window: chat, sidebar and "
                          "dialogs."))

    # -- values --------------------------------------------------------------------------------
    def sampling(self) -> Sampling:
        def number(name: str, box: QDoubleSpinBox) -> float:
            return round(box.value(), SAMPLING_RANGES[name].decimals)

        return Sampling(
            temperature=number("temperature", self.temperature),
            top_p=number("top_p", self.top_p), top_k=self.top_k.value(),
            min_p=number("min_p", self.min_p),
            repeat_penalty=number("repeat_penalty", self.repeat_penalty),
            presence_penalty=number("presence_penalty", self.presence_penalty),
            frequency_penalty=number("frequency_penalty", self.frequency_penalty),
            max_tokens=self.max_tokens.value(),
            seed=None if self.random_seed.isChecked() else self._seed(),
        )

    def _seed(self) -> int:
        value = self.seed.value()
        return self._big_seed if self._big_seed is not None and value == INT_MAX else value

    def system_prompt(self) -> str:
        return self.system.toPlainText().strip()

    def make_default(self) -> bool:
        """Whether this chat's system prompt and sampling become the new-chat defaults."""
        return self.default_box.isChecked()

    def apply_app_settings(self) -> bool:
        """Copy the app fields into the settings object; True when a reload is needed."""
        s = self.app_settings
        gpu = None if self.auto_gpu.isChecked() else self.gpu_layers.value()
        reload = s.context_size != self.context.value() or s.gpu_layers != gpu
        s.context_size, s.gpu_layers, s.font_size = self.context.value(), gpu, self.font_size.value()
        s.theme = str(self.theme.currentData())
        workers = list(self._workers())
        reload = reload or workers != s.workers
        s.workers = workers
        self.api_page.apply(s)  # the Local API server fields (its key goes to the keyring)
        if self.model_path:
            fmt = self.prompt_format.currentData()
            reload = reload or s.prompt_formats.get(self.model_path, "auto") != fmt
            if fmt == "auto":
                s.prompt_formats.pop(self.model_path, None)
            else:
                s.prompt_formats[self.model_path] = fmt
        return reload

    def accept(self) -> None:
        try:
            sampling = self.sampling()
            if sampling.max_tokens >= self.context.value():
                raise SettingsError(
                    f"Max new tokens ({sampling.max_tokens:,}) must be below the context size "
                    f"({self.context.value():,})."
                )
            self._workers()
        except SettingsError as err:
            self.error.setText(str(err))
            return
        api_error = self.api_page.error()
        if api_error:
            self.error.setText(api_error)
            return
        super().accept()

    def _workers(self) -> tuple[str, ...]:
        """The Workers field as checked ``host:port`` endpoints (SettingsError if malformed)."""
        from app.engine.rpc import parse_endpoints

        text = self.workers.text().strip()
        return parse_endpoints(text) if text else ()
