"""The project's error family.

Every error a user can cause (bad input file, bad option, missing extra) derives from
:class:`RscovlmError`, so the command line can turn it into one clear line and a non-zero exit
while real bugs still show a traceback.
"""

from __future__ import annotations


class RscovlmError(Exception):
    """Base class of errors caused by input, configuration or environment, not by a bug."""


class InputError(RscovlmError, ValueError):
    """An input file, record, image or argument is malformed or out of range."""


class MissingExtraError(RscovlmError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
