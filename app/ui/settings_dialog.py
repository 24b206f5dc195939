"""Settings: the conversation's system prompt and sampling; app-wide context, GPU, format, font."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.types import LLAMA2_DEFAULT_SYSTEM_PROMPT, SAMPLING_RANGES, Sampling
from app.errors import SettingsError
from app.settings import AppSettings
from app.ui.plain import plain_label

FORMAT_CHOICES = (
    ("Automatic (Llama-2 reference, or the model's own template)", "auto"),
    ("Llama-2-chat (Meta's reference format)", "llama-2"),
    ("The model's embedded chat template", "template"),
)


INT_MAX = 2**31 - 1  # QSpinBox holds a C int


def _double(name: str, value: float) -> QDoubleSpinBox:
    """A spin box over the engine's range for sampling setting ``name``."""
    allowed = SAMPLING_RANGES[name]
    box = QDoubleSpinBox()
    box.setDecimals(allowed.decimals)
    box.setRange(allowed.low, allowed.high)
    box.setSingleStep(allowed.step)
    box.setValue(value)
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
    return box


class SettingsDialog(QDialog):
    """Edits a conversation's settings and the app settings; validated before it closes."""

    def __init__(self, system_prompt: str, sampling: Sampling, app_settings: AppSettings,
                 parent: QWidget | None = None, model_path: str | None = None) -> None:
        super().__init__(parent)
        self.model_path = model_path
        self.setWindowTitle("Settings")
        self.app_settings = app_settings
        self.system = QPlainTextEdit(system_prompt)
        self.system.setAccessibleName("System prompt")
        self.system.setPlaceholderText("Optional instructions the model sees before the chat")
        self.system.setTabChangesFocus(True)
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

        conv = QGroupBox("This conversation")
        form = QFormLayout(conv)
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(preset)
        buttons_row.addWidget(clear)
        buttons_row.addStretch(1)
        form.addRow("System prompt", self.system)
        form.addRow("", self._wrap(buttons_row))
        form.addRow("Temperature", self.temperature)
        form.addRow("Top p", self.top_p)
        form.addRow("Top k (0 = off)", self.top_k)
        form.addRow("Min p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Presence penalty", self.presence_penalty)
        form.addRow("Frequency penalty", self.frequency_penalty)
        form.addRow("Max new tokens", self.max_tokens)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)
        form.addRow("Seed", self._wrap(seed_row))

        self.context = _int(256, 1_048_576, app_settings.context_size)
        self.context.setSingleStep(512)
        self.auto_gpu = QCheckBox("Automatic")
        self.gpu_layers = _int(-1, 1000, app_settings.gpu_layers if app_settings.gpu_layers
                               is not None else -1)
        self.gpu_layers.setToolTip("-1 = all layers, 0 = CPU only")
        self.auto_gpu.setChecked(app_settings.gpu_layers is None)
        self.gpu_layers.setEnabled(app_settings.gpu_layers is not None)
        self.auto_gpu.toggled.connect(lambda on: self.gpu_layers.setEnabled(not on))
        self.font_size = _int(6, 48, app_settings.font_size)
        self.prompt_format = QComboBox()
        self.prompt_format.setAccessibleName("Prompt format for this model")
        for label, value in FORMAT_CHOICES:
            self.prompt_format.addItem(label, value)
        current = app_settings.prompt_formats.get(model_path, "auto") if model_path else "auto"
        self.prompt_format.setCurrentIndex(max(0, self.prompt_format.findData(current)))
        self.prompt_format.setEnabled(model_path is not None)
        app = QGroupBox("App (context and GPU layers apply when the model is next loaded)")
        app_form = QFormLayout(app)
        app_form.addRow("Context size (tokens)", self.context)
        gpu_row = QHBoxLayout()
        gpu_row.addWidget(self.gpu_layers, 1)
        gpu_row.addWidget(self.auto_gpu)
        app_form.addRow("GPU layers", self._wrap(gpu_row))
        app_form.addRow("Prompt format (this model)", self.prompt_format)
        app_form.addRow("Font size", self.font_size)
        app_form.addRow("Theme", QLabel("Follows the system (light or dark)"))

        self.error = plain_label("")  # the message quotes values the user typed
        self.error.setStyleSheet("color:#c0392b;")
        self.error.setWordWrap(True)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(conv)
        layout.addWidget(app)
        # -- hook: Local API server page (app/ui/api_server.py) --
        from app.ui.api_server import ApiServerPage

        self.api_page = ApiServerPage(app_settings, self)
        layout.addWidget(self.api_page)
        # -- end hook --
        layout.addWidget(self.error)
        layout.addWidget(box)
        self.resize(560, 820)

    @staticmethod
    def _wrap(row: QHBoxLayout) -> QWidget:
        widget = QWidget()
        row.setContentsMargins(0, 0, 0, 0)
        widget.setLayout(row)
        return widget

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

    def apply_app_settings(self) -> bool:
        """Copy the app fields into the settings object; True when a reload is needed."""
        s = self.app_settings
        gpu = None if self.auto_gpu.isChecked() else self.gpu_layers.value()
        reload = s.context_size != self.context.value() or s.gpu_layers != gpu
        s.context_size, s.gpu_layers, s.font_size = self.context.value(), gpu, self.font_size.value()
        self.api_page.apply(s)  # hook: Local API server fields (and its key, in the keyring)
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
        except SettingsError as err:
            self.error.setText(str(err))
            return
        api_error = self.api_page.error()  # hook: Local API server fields
        if api_error:
            self.error.setText(api_error)
            return
        super().accept()
