"""Private files and directories: created with their mode from the first byte, never through a symlink.

Everything a component writes (journal segments, epoch and sidecar files, SQLite books, the executor's
state with raw signed transactions, password files, unit environment files) is the user's alone:
directories ``0700``, files ``0600``, set by ``os.open``/``os.mkdir`` at creation -- never a
``chmod`` afterwards, which leaves a window in which the umask's mode (often ``0644``) applies.
Files are opened with ``O_NOFOLLOW``: a symlink planted where we write is refused, not followed.

:func:`check_private_dir` is the ownership test of a directory we put sockets or data in: owned
by us (or root, e.g. ``/run``), a real directory (not a symlink), and not writable by anyone else.
A failure is an :class:`UnsafePathError` whose message names the path and what is wrong.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote

from .errors import BadFile

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(OSError):
    """A directory or file we would use is not safely ours (owner, mode, symlink)."""


def check_owned(path: str | os.PathLike[str], is_kind: Callable[[int], bool], kind: str) -> os.stat_result:
    """``lstat`` ``path`` and refuse it if it is a symlink, not ``kind`` or owned by someone other
    than us (or root); return its stat. A missing ``path`` raises ``FileNotFoundError``."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path} is a symlink; refusing to use it")
    if not is_kind(st.st_mode):
        raise UnsafePathError(f"{path} is not {kind}")
    if st.st_uid not in (os.getuid(), 0):
        raise UnsafePathError(f"{path} is owned by uid {st.st_uid}, not by us (uid {os.getuid()}); refusing to use it")
    return st


def check_private_dir(path: str | os.PathLike[str], *, exact_mode: bool = False) -> Path:
    """Refuse ``path`` unless it is a real directory owned by us (or root) that nobody else can write.

    ``exact_mode``: also refuse any group/other permission (the ``0700`` a runtime directory must have).
    """
    p = Path(path)
    try:
        st = check_owned(p, stat.S_ISDIR, "a directory")
    except FileNotFoundError:
        raise UnsafePathError(f"{p} does not exist") from None
    mode = stat.S_IMODE(st.st_mode)
    bad = 0o077 if exact_mode else 0o022
    if mode & bad:
        want = "0700" if exact_mode else "not writable by group or others"
        raise UnsafePathError(f"{p} has mode {mode:04o} (must be {want}); refusing to use it")
    return p


def ensure_private_dir(path: str | os.PathLike[str], *, exact_mode: bool = False) -> Path:
    """Create ``path`` (and missing parents) with mode 0700, then :func:`check_private_dir` it."""
    p = Path(path)
    try:
        make_dirs(p)
    except OSError as exc:
        raise UnsafePathError(f"cannot create {p}: {exc.strerror or exc}") from None
    return check_private_dir(p, exact_mode=exact_mode)


def make_dirs(path: str | os.PathLike[str], mode: int = DIR_MODE) -> None:
    """``mkdir -p`` whose every new directory gets ``mode`` (0700; ``Path.mkdir`` gives new parents
    the umask's mode). A wider ``mode`` is for a directory shared on purpose (an archive's 0750)."""
    p = Path(path)
    missing = []
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            continue
        if mode & ~DIR_MODE:  # mkdir's mode passes the umask: a share is set explicitly, before use
            os.chmod(d, mode)


def open_private(path: str | os.PathLike[str], flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 mode: int = FILE_MODE) -> int:
    """``os.open`` that never follows a symlink and creates the file with ``mode`` (0600)."""
    return os.open(path, flags | _NOFOLLOW, mode)


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Make sure ``path`` exists as a regular file of ours, created 0600 if new (e.g. before
    SQLite opens it: SQLite gives its -wal/-shm files the database file's mode)."""
    fd = open_private(path, os.O_RDWR | os.O_CREAT)
    os.close(fd)


def open_sqlite(path: str | os.PathLike[str], schema: str, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """The one way a component opens its SQLite file: created 0600 in a 0700 directory (SQLite
    gives the -wal/-shm files the database's mode), WAL, ``synchronous`` (FULL unless the caller
    argues for NORMAL), autocommit
    (explicit ``BEGIN`` where needed), ``schema`` applied. ``":memory:"`` is allowed.

    A file that is not a usable database raises :class:`~runtime.errors.BadFile` naming it."""
    name = os.fspath(path)
    if name != ":memory:":
        make_dirs(Path(name).parent)
        create_private_file(name)
    db = sqlite3.connect(name, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise bad_sqlite(name, exc) from None
    return db


def bad_sqlite(path: str | os.PathLike[str], exc: BaseException) -> BadFile:
    """The one wording of a SQLite file we cannot use (raise it, or catch ``sqlite3.DatabaseError``
    around a reader's queries and raise this: a page can be damaged past every check at open)."""
    return BadFile(f"{os.fspath(path)} is not a usable SQLite database ({' '.join(str(exc).split())}); restore it "
                   f"from a backup or move it aside to start empty")


def open_sqlite_readonly(path: str | os.PathLike[str], *, tables: Iterable[str] = (),
                         what: str = "database") -> sqlite3.Connection:
    """Open an existing SQLite file read-only (a report, a history) after checking that it is one:
    it opens, ``PRAGMA quick_check`` finds every page sound, and it has ``tables``. Anything else
    -- missing, not SQLite, truncated, damaged, another program's database -- is a
    :class:`~runtime.errors.BadFile` naming the file, never a traceback at the first query."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise BadFile(f"{name} does not exist (or is not a file)")
    try:
        db = sqlite3.connect(f"file:{quote(name)}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise bad_sqlite(name, exc) from None
    try:
        verdict = [row[0] for row in db.execute("PRAGMA quick_check")]
        if verdict != ["ok"]:
            raise BadFile(f"{name} is damaged (SQLite's quick_check: {'; '.join(map(str, verdict[:3]))}); "
                          f"restore it from a backup")
        have = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        lacking = [t for t in tables if t not in have]
        if lacking:
            raise BadFile(f"{name} is not a {what}: it has no table {', '.join(lacking)}")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise bad_sqlite(name, exc) from None
    except BadFile:
        db.close()
        raise
    return db


def write_private(path: str | os.PathLike[str], data: bytes | str, *, fsync: bool = True) -> None:
    """Atomically replace ``path`` with ``data``: a 0600 temporary file beside it, then rename."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


__all__ = ["DIR_MODE", "FILE_MODE", "UnsafePathError", "bad_sqlite", "check_private_dir", "create_private_file",
           "ensure_private_dir", "make_dirs", "open_private", "open_sqlite", "open_sqlite_readonly", "write_private"]
