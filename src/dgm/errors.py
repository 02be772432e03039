"""User-facing errors.

Every error a user can cause (bad data, bad config, bad run directory) is a :class:`DgmError`
whose message is one line that names the problem and, where there is one, the fix. The CLI
prints such errors without a traceback; anything else is a bug in dgm.
"""


class DgmError(ValueError):
    """A problem with the user's input, stated in one line with the fix where there is one."""


class ConfigError(DgmError):
    """An unknown configuration key, a value of the wrong type, or an invalid combination."""


class DataError(DgmError):
    """Data that cannot be loaded or that a model cannot take as given."""


class RunError(DgmError):
    """A run directory that is missing, incomplete or inconsistent."""
