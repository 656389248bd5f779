"""One process main for every long-running AlphaPulse process (relays, archiver, collectors,
strategy, executor, risk, portfolio).

    PROC = ProcessMain("alphapulse risk", "risk", errors={ConfigError: EXIT_CONFIG})

    def build_parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog="alphapulse risk")
        ...
        add_process_arguments(p)          # --log-level, --metrics-port, --metrics-host
        return p

    def main(argv=None) -> int:
        args = build_parser().parse_args(argv)
        return PROC.run(args, lambda: partial(run, load_config(args.config)))

``run(args, prepare)``:

1. ``setup_logging(args.log_level)`` (runtime.logging: one format everywhere);
2. ``prepare()``, synchronously: load the configuration, check files; it returns the work, an
   async function taking the process's ``ProcessMetrics``;
3. ``trio.run``: the metrics HTTP server when ``--metrics-port`` is given (first, so the
   relay clients the work creates with ``metrics=`` are served), the work, and a SIGTERM/SIGINT
   receiver that cancels everything cleanly. When the work returns, the process ends (after
   ``linger`` seconds, so a last scrape can read the final counts). SIGHUP reloads the
   configuration through ``reload`` (a :class:`runtime.reload.ConfigReload`: the keys that can
   change safely, everything else refused with the reason logged); a process without one logs that
   it has nothing to reload and carries on (SIGHUP never ends a process); and the process's
   garbage-collection keeper (:class:`runtime.gc_keeper.GcKeeper`: no multi-millisecond collection
   pauses in the middle of a decision), unless the process runs its own (``gc_keeper=False``: the
   relay daemon and the bridges tie theirs to their own state);
4. the exit status: 0 after a clean stop or when the work returned; for an exception (trio's
   groups unwrapped by runtime.errors) whose type is in ``errors``, one line
   ``<prog>: <message>`` on stderr and its exit code; Ctrl-C outside trio: 130. Any other
   exception is a bug and propagates with its traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import trio

from .errors import BadFile, find_in_group, one_line
from .files import UnsafePathError
from .gc_keeper import GcKeeper
from .logging import default_log_level, log_level, setup_logging
from .metrics import ProcessMetrics, serve_process_metrics
from .reload import ConfigReload

log = logging.getLogger("runtime.process")

Work = Callable[[ProcessMetrics], Awaitable[object]]

EXIT_OK = 0
EXIT_INTERRUPTED = 130


def add_process_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags every process main takes: ``--log-level``, ``--metrics-port``, ``--metrics-host``."""
    parser.add_argument("--log-level", type=log_level, default=default_log_level(), metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR (default $ALPHAPULSE_LOG_LEVEL, else INFO)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off; 0: any free port)")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="address for --metrics-port (default 127.0.0.1: loopback only)")
    return parser


async def serve_process(
    process: str,
    work: Work,
    *,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    metrics: ProcessMetrics | None = None,
    linger: float = 0.0,
    reload: ConfigReload[Any] | None = None,
    gc_keeper: GcKeeper | None = None,
    task_status: trio.TaskStatus[ProcessMetrics] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The trio side of a process main: metrics server, ``work(metrics)``, clean stop on
    SIGTERM/SIGINT, configuration reload on SIGHUP, the ``gc_keeper`` if given (it changes the
    whole interpreter's collector: only a process's own main passes one); returns when the work
    returns (after ``linger`` s) or a stop signal arrives."""
    pm = metrics or ProcessMetrics(process)
    reloads = pm.counter("alphapulse_config_reloads_total",
                         "SIGHUP configuration reloads, by result (applied, unchanged, refused, unsupported).",
                         ["result"])
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_process_metrics, metrics_port, pm.registry, metrics_host,
                                        ready=pm.readiness))

            async def run_then_stop() -> None:
                await work(pm)
                if metrics_port is not None and linger > 0:
                    await trio.sleep(linger)
                nursery.cancel_scope.cancel()

            nursery.start_soon(run_then_stop)
            if gc_keeper is not None:
                gc_keeper.observe(pm)
                nursery.start_soon(gc_keeper.run)
            task_status.started(pm)
            async for signum in signals:
                if signum == signal.SIGHUP:
                    if reload is None:
                        log.warning("SIGHUP: %s has no reloadable configuration; nothing changed", process)
                        reloads.labels(result="unsupported").inc()
                    else:
                        reloads.labels(result=reload.reload()).inc()
                    continue
                log.info("%s received, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


ErrorKinds = type[BaseException] | tuple[type[BaseException], ...]
ErrorMap = Mapping[ErrorKinds, int | tuple[int, str]]


def _error_table(errors: ErrorMap | None) -> list[tuple[ErrorKinds, int, str]]:
    return [(kind, v, "{}") if isinstance(v, int) else (kind, *v) for kind, v in (errors or {}).items()]


class ProcessMain:
    """The main of one process: ``prog`` names it in error lines, ``process`` in its metrics
    (``alphapulse_process_info{process}``).

    ``errors`` maps expected exceptions to exit codes, checked in order (put subclasses first);
    a value may also be ``(code, template)`` where the template words the line, e.g.
    ``{RelayUnavailable: (1, "no market-data relay answering: {}")}``. ``prepare_errors`` are
    mapped the same way but only while ``prepare()`` runs (a ``ValueError`` reading the
    configuration is the user's; one while running is a bug and keeps its traceback).
    ``gc_keeper=False`` for a process that runs its own :class:`GcKeeper`."""

    def __init__(self, prog: str, process: str, *, errors: ErrorMap | None = None,
                 prepare_errors: ErrorMap | None = None, gc_keeper: bool = True) -> None:
        self.prog = prog
        self.process = process
        self.gc_keeper = gc_keeper
        # a bad file or an unsafe directory is the user's to fix in every process: one line, exit 1
        self.errors = _error_table(errors) + _error_table({BadFile: 1, UnsafePathError: 1})
        self.prepare_errors = _error_table(prepare_errors) + self.errors

    def run(self, args: argparse.Namespace, prepare: Callable[[], Work], *, linger: float = 0.0,
            reload: ConfigReload[Any] | None = None) -> int:
        setup_logging(args.log_level)
        try:
            work = prepare()
        except BaseException as exc:  # noqa: BLE001 - mapped to an exit code, or re-raised
            return self.exit_code(exc, self.prepare_errors)
        try:
            trio.run(lambda: serve_process(self.process, work, metrics_port=args.metrics_port,
                                           metrics_host=args.metrics_host, linger=linger, reload=reload,
                                           gc_keeper=GcKeeper() if self.gc_keeper else None))
        except BaseException as exc:  # noqa: BLE001 - mapped to an exit code, or re-raised
            return self.exit_code(exc)
        return EXIT_OK

    def exit_code(self, exc: BaseException, table: list[tuple[ErrorKinds, int, str]] | None = None) -> int:
        """The exit status for ``exc`` (one line on stderr), or re-raise it when it is a bug."""
        for kind, code, template in self.errors if table is None else table:
            found = find_in_group(exc, kind)
            if found is not None:
                self.say(template.format(one_line(found)))
                return code
        if find_in_group(exc, KeyboardInterrupt) is not None:
            return EXIT_INTERRUPTED
        raise exc

    def say(self, text: str) -> None:
        print(f"{self.prog}: {text}", file=sys.stderr)


__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "ProcessMain", "Work", "add_process_arguments", "serve_process"]
