"""Errors that reach the user as one clear line (never a traceback)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment: printed as one line, exit code 2."""

    exit_code = 2


class DataError(UserError):
    """A download, cache or data file problem."""


class ConfigError(UserError):
    """A task or model config that does not validate."""
