"""The relay against a hostile local user (issue 17): its runtime directory, file modes, planted
symlinks and sockets, and peer text in its log."""

from __future__ import annotations

import dataclasses
import os
import socket as stdsocket
from pathlib import Path

import pytest
import trio
from test_relay_server import MsgReader, config, sysf

from protocol.system import Hello, Role, Subscribe, SubscribeMode, Welcome
from protocol.tlv import UnknownTLV
from relays.client import RelayConsumer, RelayProducer
from relays.server import Relay, RelayError, serve


def _mode(p: str | Path) -> int:
    return os.lstat(p).st_mode & 0o777


async def test_socket_and_every_data_file_get_explicit_private_modes(short_dir: Path) -> None:
    old = os.umask(0o022)  # the usual umask: without explicit modes all of this came out 0755/0644
    try:
        run = short_dir / "run"
        cfg = dataclasses.replace(config(run, segment_bytes=4096), socket_path=str(run / "md.sock"))
        async with trio.open_nursery() as n:
            await n.start(serve, cfg)
            async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3) as p:
                for i in range(200):  # several segments: sidecars get written
                    await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(40, "little")))
                await p.flush()
            assert _mode(run) == 0o700 and _mode(cfg.socket_path) == 0o600
            n.cancel_scope.cancel()
        data = Path(cfg.data_dir)
        files = [f for f in data.rglob("*") if f.is_file()]  # noqa: ASYNC240 - the relay is gone
        assert {f.suffix for f in files} >= {".seg", ".src"} and (data / "epoch") in files
        assert {str(f.relative_to(data)): _mode(f) for f in files} == {
            str(f.relative_to(data)): 0o600 for f in files}
        assert _mode(data) == 0o700 and _mode(data / "journal") == 0o700
    finally:
        os.umask(old)


async def test_a_runtime_dir_taken_over_by_another_user_is_refused(short_dir: Path) -> None:
    taken = short_dir / "taken"
    taken.mkdir(mode=0o700)
    os.chown(taken, 65534, 65534)  # as if another local user had created /tmp/alphapulse-$UID first
    cfg = dataclasses.replace(config(short_dir, fsync="off"), socket_path=str(taken / "md.sock"))
    with pytest.raises(RelayError, match="owned by uid 65534"), trio.fail_after(5):
        await Relay(cfg).serve()
    assert not os.path.lexists(taken / "md.sock")  # noqa: ASYNC240


async def test_a_planted_socket_never_receives_a_hello(short_dir: Path) -> None:
    from runtime.files import UnsafePathError

    taken = short_dir / "taken"
    taken.mkdir(mode=0o700)
    planted = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    planted.bind(str(taken / "md.sock"))
    planted.listen(4)
    planted.setblocking(False)
    os.chown(taken, 65534, 65534)
    try:
        with pytest.raises(UnsafePathError, match="owned by uid 65534"), trio.fail_after(5):
            async with RelayConsumer.connect("market_data", str(taken / "md.sock"), connect_timeout=1.0):
                pass
        with pytest.raises(BlockingIOError):
            planted.accept()  # nobody ever connected
    finally:
        planted.close()


async def test_a_symlink_planted_where_the_journal_writes_is_not_followed(short_dir: Path) -> None:
    victim = short_dir / "victim"
    victim.write_text("the user's own file")
    cfg = config(short_dir, fsync="off")
    journal = Path(cfg.data_dir) / "journal"
    journal.mkdir(parents=True)
    (journal / "00000000000000000001.seg").symlink_to(victim)
    with pytest.raises(RelayError, match="not a regular file"):
        Relay(cfg)  # recovery used to read it and truncate the victim to its "valid" length, 0
    assert victim.read_text() == "the user's own file"


async def test_hello_name_is_logged_escaped(short_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(short_dir, fsync="off")
    evil = "x\x1b[2J\x1b]0;pwned\x07\n2026-01-01 00:00:00,000 INFO relays.server[1]: fake line"
    with caplog.at_level("INFO", logger="relays.server"):
        async with trio.open_nursery() as n:
            relay = await n.start(serve, cfg)
            s = await trio.open_unix_socket(cfg.socket_path)
            await s.send_all(sysf(Hello(role=Role.CONSUMER, protocol_version=1, source_id=0, name=evil),
                                  Subscribe(mode=SubscribeMode.FROM_NOW, from_seq=0, types=())))
            m = await MsgReader(s).next()
            assert m is not None and isinstance(m.tlvs[0], Welcome)
            names = [c.name for c in relay.conns]
            await s.aclose()
            n.cancel_scope.cancel()
    lines = [r.getMessage() for r in caplog.records if "hello" in r.getMessage()]
    assert lines and all("\x1b" not in t and "\n" not in t and "\x07" not in t for t in lines)
    assert any("x\\x1b[2J" in t for t in lines)
    assert all(n.isprintable() for n in names)
