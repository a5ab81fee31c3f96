"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""


class RsiBenchError(Exception):
    """Base class: the message is shown to the user as is, so it must say what to do."""


class TaskFormatError(RsiBenchError):
    """A task file or dataset row is malformed (the message names the file and field)."""


class SuiteError(RsiBenchError):
    """An unknown suite, an unknown task id, or a suite that cannot be loaded."""


class SandboxUnavailable(RsiBenchError):
    """A sandbox backend cannot run here (no daemon, no image, missing binary)."""


class InputError(RsiBenchError):
    """Malformed user input, such as a solutions file."""
