"""Errors every part of the service shares. Each message is one line that names the fix."""


class ReconError(Exception):
    """Base of the service's own errors; the CLI prints the message and exits non-zero."""

    exit_code = 1


class ConfigError(ReconError):
    """A bad setting, flag or file. The message names the setting and how to fix it."""

    exit_code = 2


class PermanentFault(ReconError):
    """A fault retrying will not cure (wrong credentials, missing topic, schema mismatch...)."""

    exit_code = 3
