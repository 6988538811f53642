"""The errors a user can act on, in one family: the CLI catches :class:`UserError`, prints its message without a
traceback and exits with the class's code.

| class         | exit code | what happened                                                          |
|---------------|-----------|------------------------------------------------------------------------|
| ConfigError   | 2         | a flag or config value to change (argparse's usage errors are 2 too)   |
| InputError    | 3         | an input that cannot be found or read at all                           |
| ResumeError   | 4         | the output directory cannot be used (another configuration, not ours)  |
| EngineError   | 5         | the engine as a whole cannot go on (cannot load, died, server down)    |

A bad *record* is never one of these: it is rejected with its reason and the run goes on. Each class also derives
from the built-in type it replaced (``ValueError`` / ``RuntimeError``), so ``except ValueError`` still catches it.
Stopping on a signal is not an error: see :mod:`instructpt.runtime` (exit codes 143 and 130).
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user must fix; the message says what and where."""

    exit_code = 1


class ConfigError(UserError, ValueError):
    """A config value or key the user must change; the message names it."""

    exit_code = 2


class InputError(UserError, ValueError):
    """An input the user named cannot be found or read at all."""

    exit_code = 3


class ResumeError(UserError, RuntimeError):
    """The output directory cannot be used: written with another configuration, not a directory, unreadable."""

    exit_code = 4


class EngineError(UserError, RuntimeError):
    """The engine as a whole cannot go on (as opposed to one failed request)."""

    exit_code = 5


EXIT_CODES = {
    cls.__name__: cls.exit_code for cls in (UserError, ConfigError, InputError, ResumeError, EngineError)
}
