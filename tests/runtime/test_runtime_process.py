"""runtime.process: the one process main (flags, logging, metrics server, clean stop on
SIGTERM/SIGINT, exceptions mapped to exit codes with one line on stderr)."""

from __future__ import annotations

import argparse
import os
import signal

import httpx
import pytest
import trio

from runtime.metrics import ProcessMetrics, parse_text
from runtime.process import EXIT_INTERRUPTED, ProcessMain, add_process_arguments, serve_process
from tools.devnet.anvil import free_port


class Refused(Exception):
    pass


def _args(*argv: str) -> argparse.Namespace:
    return add_process_arguments(argparse.ArgumentParser(prog="t")).parse_args(list(argv))


def test_common_flags() -> None:
    args = _args()
    assert args.metrics_port is None and args.metrics_host == "127.0.0.1" and args.log_level in ("INFO", "DEBUG",
                                                                                                  "WARNING", "ERROR",
                                                                                                  "CRITICAL")
    args = _args("--metrics-port", "0", "--metrics-host", "::1", "--log-level", "debug")
    assert args.metrics_port == 0 and args.metrics_host == "::1" and args.log_level == "DEBUG"
    with pytest.raises(SystemExit):
        _args("--log-level", "chatty")


async def test_work_gets_the_process_metrics_and_its_return_ends_the_process() -> None:
    seen: list[ProcessMetrics] = []

    async def work(pm: ProcessMetrics) -> None:
        seen.append(pm)
        pm.counter("alphapulse_unit_done_total", "Done.").inc()

    with trio.fail_after(5):
        await serve_process("unit", work)
    assert seen and seen[0].process == "unit"
    assert parse_text(seen[0].render().decode())["alphapulse_unit_done_total"].samples[0][2] == 1


async def test_metrics_served_while_working_and_sigterm_stops_cleanly() -> None:
    cancelled = trio.Event()
    port = free_port()

    async def work(pm: ProcessMetrics) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with trio.open_nursery() as n:
        await n.start(lambda task_status: serve_process("unit", work, metrics_port=port, task_status=task_status))
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert parse_text(text)["alphapulse_process_info"].samples[0][1] == {"process": "unit"}
        with trio.fail_after(5):
            os.kill(os.getpid(), signal.SIGTERM)  # caught by serve_process's signal receiver
            await cancelled.wait()
    # serve_process returned by itself: nothing left running in the nursery


def test_expected_errors_are_one_line_and_an_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    async def work(pm: ProcessMetrics) -> None:
        async with trio.open_nursery() as n:  # arrives wrapped in (nested) exception groups
            async def fail() -> None:
                raise Refused("no relay answering\n  at /tmp/x.sock")

            n.start_soon(fail)

    proc = ProcessMain("alphapulse unit", "unit", errors={Refused: (4, "refused: {}")})
    assert proc.run(_args(), lambda: work) == 4
    err = capsys.readouterr().err
    assert err == "alphapulse unit: refused: no relay answering at /tmp/x.sock\n"
    assert "Traceback" not in err


def test_prepare_errors_map_only_while_preparing(capsys: pytest.CaptureFixture[str]) -> None:
    proc = ProcessMain("alphapulse unit", "unit", prepare_errors={ValueError: 2})

    def bad_config() -> None:
        raise ValueError("risk.toml: risk.source_id: expected an integer")

    assert proc.run(_args(), bad_config) == 2  # type: ignore[arg-type]
    assert capsys.readouterr().err == "alphapulse unit: risk.toml: risk.source_id: expected an integer\n"

    async def buggy(pm: ProcessMetrics) -> None:
        raise ValueError("a bug while running")

    with pytest.raises(BaseException) as info:  # a bug keeps its traceback
        proc.run(_args(), lambda: buggy)
    assert info.group_contains(ValueError) if isinstance(info.value, BaseExceptionGroup) \
        else isinstance(info.value, ValueError)


def test_ctrl_c_outside_trio_is_130() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    assert ProcessMain("p", "p").run(_args(), interrupted) == EXIT_INTERRUPTED  # type: ignore[arg-type]
