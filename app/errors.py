"""One root exception; each subclass is a kind of user-facing failure.

Messages say what went wrong and where, in one line, so pages and the CLI can show them as is.
"""
from __future__ import annotations


class TpodError(Exception):
    """Root of every error the core raises on purpose."""


class NotFound(TpodError):
    """A project, video, class, box, version, run or model does not exist."""


class Conflict(TpodError):
    """A name is taken, or a row changed since the caller read it."""


class BadInput(TpodError):
    """A file, archive, name or parameter the core refuses."""


class TooLarge(BadInput):
    """An upload or archive over a configured limit."""


class DatabaseBusy(TpodError):
    """Another process held the DuckDB file for longer than the retry budget."""


class JobFailed(TpodError):
    """A background job ended in failure."""


class PermissionDenied(TpodError):
    """The current user may not do this."""
