"""runtime.files: private directories and files, created with their mode, never through a symlink."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from runtime.errors import BadFile
from runtime.files import (
    UnsafePathError,
    check_private_dir,
    create_private_file,
    ensure_private_dir,
    open_private,
    open_sqlite,
    write_private,
)

NOBODY = 65534


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.fixture
def loose_umask():  # type: ignore[no-untyped-def]
    old = os.umask(0o022)  # the usual umask: without explicit modes files come out 0644
    try:
        yield
    finally:
        os.umask(old)


def test_directories_are_created_0700_and_refused_when_not_ours(tmp_path: Path, loose_umask: None) -> None:
    d = ensure_private_dir(tmp_path / "a" / "b")
    assert mode(d) == 0o700 and mode(tmp_path / "a") == 0o700
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match="owned by uid 65534"):
        ensure_private_dir(foreign)
    writable = tmp_path / "writable"
    writable.mkdir()
    os.chmod(writable, 0o777)
    with pytest.raises(UnsafePathError, match="mode 0777"):
        check_private_dir(writable)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    check_private_dir(shared)  # readable by others is fine for a directory the user chose
    with pytest.raises(UnsafePathError, match="must be 0700"):
        check_private_dir(shared, exact_mode=True)
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(UnsafePathError, match="symlink"):
        ensure_private_dir(link)


def test_files_are_0600_from_the_first_byte_and_symlinks_are_not_followed(tmp_path: Path, loose_umask: None) -> None:
    fd = open_private(tmp_path / "f")
    os.close(fd)
    assert mode(tmp_path / "f") == 0o600
    write_private(tmp_path / "w", "x\n")
    assert mode(tmp_path / "w") == 0o600 and (tmp_path / "w").read_text() == "x\n"
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "planted").symlink_to(victim)
    with pytest.raises(OSError):
        os.close(open_private(tmp_path / "planted"))
    with pytest.raises(OSError):
        create_private_file(tmp_path / "planted")
    assert victim.read_text() == "precious"


def test_sqlite_files_are_private_and_a_corrupt_one_is_one_line(tmp_path: Path, loose_umask: None) -> None:
    db = open_sqlite(tmp_path / "d" / "x.sqlite", "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    db.execute("INSERT INTO t VALUES (1)")
    assert mode(tmp_path / "d") == 0o700
    for name in ("x.sqlite", "x.sqlite-wal", "x.sqlite-shm"):
        assert mode(tmp_path / "d" / name) == 0o600, name
    db.close()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BadFile) as info:
        open_sqlite(bad, "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(open_sqlite(":memory:", "CREATE TABLE t (a);"), sqlite3.Connection)


def test_a_readonly_sqlite_open_checks_the_file_before_any_query(tmp_path: Path) -> None:
    from runtime.files import open_sqlite_readonly

    good = open_sqlite(tmp_path / "g.sqlite", "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    good.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5000)])
    good.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    good.close()
    db = open_sqlite_readonly(tmp_path / "g.sqlite", tables=["t"])
    assert db.execute("SELECT count(*) FROM t").fetchone() == (5000,)
    with pytest.raises(sqlite3.OperationalError):
        db.execute("INSERT INTO t VALUES (1)")  # read-only
    db.close()
    data = (tmp_path / "g.sqlite").read_bytes()
    cases = {"cut.sqlite": data[: len(data) // 2], "noise.sqlite": b"\x00\x01garbage" * 300,
             "empty.sqlite": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    for name, says in (("cut.sqlite", "is not a usable SQLite database"),
                       ("noise.sqlite", "is not a usable SQLite database"),
                       ("empty.sqlite", "is not a ledger: it has no table t"),
                       ("absent.sqlite", "does not exist")):
        with pytest.raises(BadFile) as info:
            open_sqlite_readonly(tmp_path / name, tables=["t"], what="ledger")
        assert str(tmp_path / name) in str(info.value) and says in str(info.value) and "\n" not in str(info.value)
