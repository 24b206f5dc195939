"""Conversion failures the user can act on, and the cancel signal raised between tensors."""

from __future__ import annotations

from app.errors import UserError


class ConvertError(UserError):
    """A checkpoint cannot be converted; the message names the file and what to do."""


class ConvertCancelled(Exception):
    """Raised between tensors (or while quantizing) once the job's cancel event is set."""
