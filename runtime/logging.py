"""One logging set-up and one log line format for every AlphaPulse process and CLI.

    setup_logging(args.log_level)      # after parsing arguments, before anything logs

Lines go to stderr (systemd's journal, the supervisor's log files)::

    2026-12-06 18:49:37,123 INFO relays.daemon[4242]: market_data relay serving /tmp/...

``LOG_FORMAT`` is that format; ``log_level`` is the argparse type for ``--log-level`` (a level
name, any case); ``default_log_level()`` reads ``$ALPHAPULSE_LOG_LEVEL`` (default INFO).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def log_level(text: str) -> str:
    """argparse ``type=`` for ``--log-level``: a level name in any case, returned upper case."""
    level = text.strip().upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"log level must be one of {', '.join(LEVELS)} (got {text!r})")
    return level


def default_log_level() -> str:
    return os.environ.get("ALPHAPULSE_LOG_LEVEL", "INFO").upper()


def setup_logging(level: str | int = "INFO", *, stream: TextIO | None = None) -> None:
    """Configure the root logger once: ``LOG_FORMAT`` on ``stream`` (stderr) at ``level``.

    Like ``logging.basicConfig``, a process that already configured logging keeps its handlers;
    only the level is applied then."""
    level = level.upper() if isinstance(level, str) else level
    root = logging.getLogger()
    if root.handlers:
        root.setLevel(level)
        return
    logging.basicConfig(level=level, stream=stream or sys.stderr, format=LOG_FORMAT)


def printable(text: str, limit: int = 64) -> str:
    """``text`` from a peer (a Hello's name, ...) made safe for a log line or a terminal: every
    non-printable character (escape sequences, newlines that would forge a log line) becomes a
    ``\\xNN``/``\\uNNNN`` escape, and more than ``limit`` characters are cut with ``...``."""
    out = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit])
    return out + "..." if len(text) > limit else out


__all__ = ["LOG_FORMAT", "default_log_level", "log_level", "printable", "setup_logging"]
