"""The one exception type whose message is shown to the user as-is."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can act on; ``str(err)`` is one readable, actionable line.

    Subclasses group errors by area. Anything that is not a ``UserError`` is a bug: the CLI and
    the window log its traceback and show a short generic message instead.
    """


class ModelFileError(UserError):
    """A model file is missing, corrupt, truncated or of an unsupported kind."""


class ContextOverflowError(UserError):
    """A prompt cannot fit in the model's context window."""


class SettingsError(UserError):
    """A sampling or load setting is unknown or out of range."""


class ModelTooLargeError(UserError):
    """A model needs more memory than this machine has free."""


class Cancelled(UserError):
    """A request was stopped before it produced anything (faces show no error for it)."""
