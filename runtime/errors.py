"""Exception groups, unwrapped once for every process and CLI.

trio's nurseries wrap whatever escapes them in ``ExceptionGroup``s, often one inside another
with a single member each. A user must read the one real error, as one line, never a traceback
of group wrappers. Every place that used to unwrap groups by hand uses these:

* ``unwrap_group(exc)``: the one exception inside nested single-member groups (``exc`` itself
  when it is not a group, or a group with several members).
* ``find_in_group(exc, types)``: the first exception (depth first) that is one of ``types``,
  wherever it sits in the group tree; ``None`` if there is none.
* ``reraise_unwrapped()``: a context manager that lets a single wrapped exception leave as itself.
* ``one_line(exc)``: the text a user reads (the message, else the exception's class name).

``BadFile`` is what a reader raises for a file it cannot use (a corrupt database, Parquet file or
journal file): its message names the file and what to do, and every process main turns it into
that one line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class BadFile(Exception):
    """A file on disk cannot be read back (corrupt, truncated, not what it should be)."""


def unwrap_group(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def find_in_group(
    exc: BaseException, types: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    """``exc`` itself, or the first member of its group tree (depth first), that is one of ``types``."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for member in exc.exceptions:
            found = find_in_group(member, types)
            if found is not None:
                return found
    return None


@contextmanager
def reraise_unwrapped() -> Iterator[None]:
    """Let an exception raised inside leave as itself, not as a single-member group (with its
    own traceback and cause). Groups of several exceptions pass unchanged."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf = unwrap_group(group)
        if leaf is group:
            raise
        raise leaf.with_traceback(leaf.__traceback__) from leaf.__cause__


def one_line(exc: BaseException) -> str:
    """What a user reads: the exception's message on one line (its class name when it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
