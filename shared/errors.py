"""The exception hierarchy that every kit raises for user-facing problems.

CLIs turn any :class:`PaperkitsError` into a one-line message and exit code 2, so a user mistake never
shows a traceback. Programming errors stay ordinary Python exceptions.
"""


class PaperkitsError(Exception):
    """A problem the user can fix: the message says what and how."""


class DataError(PaperkitsError):
    """A dataset is missing, empty, or does not have the expected schema."""


class ConfigError(PaperkitsError):
    """A configuration file or override is invalid (unknown key, wrong type, bad value)."""


class TrainingDivergedError(PaperkitsError):
    """Training produced a non-finite loss or parameter; nothing already saved is overwritten."""
