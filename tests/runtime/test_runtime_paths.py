"""runtime.paths: the runtime directory is ours (0700, owner checked at every start and connect)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime import paths
from runtime.files import UnsafePathError


def test_the_default_run_dir_is_created_0700_and_must_stay_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = tmp_path / "alphapulse-0"
    monkeypatch.delenv(paths.ENV_RUN_DIR, raising=False)
    monkeypatch.setattr(paths, "default_run_dir", lambda: default)
    old = os.umask(0o022)
    try:
        assert paths.ensure_run_dir() == default
    finally:
        os.umask(old)
    assert stat.S_IMODE(default.stat().st_mode) == 0o700
    os.chmod(default, 0o755)  # the default lives in shared /tmp: exactly 0700 or refused
    with pytest.raises(UnsafePathError, match="0755"):
        paths.ensure_run_dir()
    with pytest.raises(UnsafePathError):
        paths.check_socket_dir(paths.socket_path("signal"))


def test_a_run_dir_created_by_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = tmp_path / "taken"
    taken.mkdir(mode=0o700)
    os.chown(taken, 65534, 65534)
    monkeypatch.setenv(paths.ENV_RUN_DIR, str(taken))
    with pytest.raises(UnsafePathError, match="owned by uid 65534"):
        paths.ensure_run_dir()
    with pytest.raises(UnsafePathError, match="owned by uid 65534"):
        paths.check_socket_dir(paths.socket_path("market_data"))
    # a symlink to a directory of ours is refused too (it can be re-pointed by whoever planted it)
    ours = tmp_path / "ours"
    ours.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(ours)
    with pytest.raises(UnsafePathError, match="symlink"):
        paths.ensure_run_dir(link)
    paths.check_socket_dir(tmp_path / "missing" / "x.sock")  # nothing there yet: the connect fails by itself


def test_a_socket_in_a_shared_sticky_directory_must_itself_be_ours(tmp_path):
    """``--socket /tmp/x.sock``: /tmp is world-writable but sticky and root's, so the socket file
    decides: ours (or absent) is fine, a symlink or a non-socket planted there is refused."""
    import socket
    import stat as st

    if not paths.shared_sticky_dir("/tmp"):
        pytest.skip("/tmp is not a root-owned sticky directory here")
    name = f"/tmp/ap-test-{os.getpid()}-{tmp_path.name[-8:]}"
    sock_path, link_path, file_path = name + ".sock", name + ".lnk", name + ".file"
    try:
        paths.check_socket_dir(sock_path)  # nothing there yet
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock_path)
        assert st.S_ISSOCK(os.lstat(sock_path).st_mode)
        paths.check_socket_dir(sock_path)  # ours
        s.close()
        os.symlink(sock_path, link_path)
        with pytest.raises(UnsafePathError, match="symlink"):
            paths.check_socket_dir(link_path)
        with open(file_path, "w"):
            pass
        with pytest.raises(UnsafePathError, match="not a socket"):
            paths.check_socket_dir(file_path)
    finally:
        for p in (sock_path, link_path, file_path):
            if os.path.lexists(p):
                os.unlink(p)
    assert not paths.shared_sticky_dir(tmp_path)  # a private directory is checked as before


def test_a_named_run_dir_others_can_write_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``$ALPHAPULSE_RUN_DIR`` (e.g. under ``$XDG_RUNTIME_DIR``) need not be exactly 0700, but anyone who
    can write there could plant a socket or replace ours: group/other-writable is refused, by the relay
    at start and by every client before it connects."""
    named = tmp_path / "xdg" / "alphapulse"
    named.mkdir(parents=True, mode=0o700)
    monkeypatch.setenv(paths.ENV_RUN_DIR, str(named))
    os.chmod(named, 0o750)  # readable by the group on purpose: fine
    assert paths.ensure_run_dir() == named
    paths.check_socket_dir(paths.socket_path("signal"))
    for loose in (0o770, 0o757):
        os.chmod(named, loose)
        with pytest.raises(UnsafePathError, match=f"mode {loose:04o}"):
            paths.ensure_run_dir()
        with pytest.raises(UnsafePathError, match="not writable by group or others"):
            paths.check_socket_dir(paths.socket_path("signal"))
