"""Operator commands: publish an ``EmergencyStop`` or a ``Resume`` on the execution relay.

For ``relay-cli stop`` / ``relay-cli resume`` (wired by tools/relay_cli.py)::

    await send_stop(socket, scope, scope_value, reason, sender)            -> stop_id
    await send_resume(socket, scope, scope_value, reason, sender, stop_id=0)
    stop_main(argv) / resume_main(argv)                                    -> exit code

``scope`` is a ``StopScope`` or its name (all, chain, venue, strategy); ``socket`` None means
the default execution relay socket. A Resume with ``stop_id`` 0 resumes every stop in scope
(scope ``all``: every stop). Both commands are logged (stderr) with who and why, and the risk
process logs and persists the resume it receives. Each waits until the relay has journaled
the message before returning (bound the wait with ``trio.fail_after``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time

import trio

from protocol.header import Domain
from protocol.system import EmergencyStop, Resume, StopScope
from relays.client import RelayProducer, RelayUnavailable
from runtime.errors import find_in_group, one_line
from runtime.logging import setup_logging
from runtime.paths import socket_path

log = logging.getLogger("risk.cli")

OPERATOR_SOURCE_ID = 7999


def _scope(scope: StopScope | int | str) -> StopScope:
    if isinstance(scope, str):
        try:
            return StopScope[scope.upper()]
        except KeyError:
            raise ValueError(f"scope must be one of {', '.join(s.name.lower() for s in StopScope)}") from None
    return StopScope(scope)


async def _publish(socket: str | os.PathLike[str] | None, tlv: EmergencyStop | Resume, source_id: int,
                   connect_timeout: float | None) -> None:
    path = socket if socket is not None else socket_path(Domain.EXECUTION)
    async with RelayProducer.connect(Domain.EXECUTION, path, source_id=source_id, name="operator",
                                     connect_timeout=connect_timeout) as p:
        await p.publish(tlv)
        await p.flush()


async def send_resume(
    socket: str | os.PathLike[str] | None, scope: StopScope | int | str, scope_value: int, reason: str,
    sender: str, *, stop_id: int = 0, source_id: int = OPERATOR_SOURCE_ID,
    connect_timeout: float | None = 10.0,
) -> None:
    """Publish an operator ``Resume`` and wait until the execution relay has persisted it."""
    await _send(Resume, socket, scope, scope_value, reason, sender, stop_id, source_id, connect_timeout)


async def send_stop(
    socket: str | os.PathLike[str] | None, scope: StopScope | int | str, scope_value: int, reason: str,
    sender: str, *, stop_id: int = 0, source_id: int = OPERATOR_SOURCE_ID,
    connect_timeout: float | None = 10.0,
) -> int:
    """Publish an operator ``EmergencyStop``; returns its stop id (default: time-based)."""
    sid = stop_id or (time.time_ns() // 1000)  # operator ids live far above the risk process's counter
    await _send(EmergencyStop, socket, scope, scope_value, reason, sender, sid, source_id, connect_timeout)
    return sid


async def _send(kind: type[EmergencyStop] | type[Resume], socket: str | os.PathLike[str] | None,
                scope: StopScope | int | str, scope_value: int, reason: str, sender: str, stop_id: int,
                source_id: int, connect_timeout: float | None) -> None:
    sc = _scope(scope)
    what = "resume" if kind is Resume else "stop"
    if not reason.strip() or not sender.strip():
        raise ValueError(f"a {what} needs a reason and a sender" + (" (who is resuming)" if kind is Resume else ""))
    log.warning("operator %r %ss scope %s/%d (stop %d): %s", sender, what, sc.name.lower(), scope_value, stop_id,
                reason)
    await _publish(socket, kind(scope=int(sc), scope_value=scope_value, stop_id=stop_id, reason=reason,
                                sender=sender), source_id, connect_timeout)


def _parser(cmd: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"relay-cli {cmd}", description=f"Publish an operator {cmd} on the execution relay.")
    p.add_argument("--socket", help="execution relay socket (default from runtime.paths)")
    p.add_argument("--scope", default="all", choices=[s.name.lower() for s in StopScope])
    p.add_argument("--value", type=int, default=0, help="chain id / venue code / strategy id (0 with scope all)")
    p.add_argument("--stop-id", type=int, default=0, help="resume: one stop only (0: every stop in scope)")
    p.add_argument("--reason", required=True)
    p.add_argument("--sender", default=f"operator:{getpass.getuser()}")
    p.add_argument("--timeout", type=float, default=10.0)
    return p


def _run(cmd: str, argv: list[str] | None) -> int:
    args = _parser(cmd).parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging("INFO")
    fn = send_resume if cmd == "resume" else send_stop
    try:
        async def go() -> None:
            with trio.fail_after(args.timeout):
                await fn(args.socket, args.scope, args.value, args.reason, args.sender, stop_id=args.stop_id,
                         connect_timeout=args.timeout)

        trio.run(go)
    except BaseException as exc:  # noqa: BLE001 - one line for the operator, or re-raised
        found = find_in_group(exc, (ValueError, trio.TooSlowError, OSError, RelayUnavailable))
        if found is None:
            raise
        print(f"relay-cli {cmd}: {one_line(found)}", file=sys.stderr)
        return 1
    return 0


def resume_main(argv: list[str] | None = None) -> int:
    return _run("resume", argv)


def stop_main(argv: list[str] | None = None) -> int:
    return _run("stop", argv)
