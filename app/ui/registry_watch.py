"""Watches the model registry file: a model imported or removed elsewhere (the CLI) is seen at once."""

from __future__ import annotations

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

SETTLE_MS = 200  # the registry file is replaced atomically: re-read once it settles


class RegistryWatch(QObject):
    """Emits ``changed`` when the registry's content changed (its size or time, once settled)."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from app.hub.installed import registry_path

        self.registry = registry_path()
        self.registry.parent.mkdir(parents=True, exist_ok=True)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.addPath(str(self.registry.parent))
        if self.registry.exists():
            self._watcher.addPath(str(self.registry))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SETTLE_MS)
        self._timer.timeout.connect(self._check)
        self._watcher.directoryChanged.connect(lambda _p: self._timer.start())
        self._watcher.fileChanged.connect(lambda _p: self._timer.start())
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int]:
        try:
            stat = self.registry.stat()
        except OSError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    def _check(self) -> None:
        if self.registry.exists() and str(self.registry) not in self._watcher.files():
            self._watcher.addPath(str(self.registry))  # replaced by a rename: watch the new one
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            self.changed.emit()
