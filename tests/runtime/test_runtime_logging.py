"""runtime.logging: one format for every process and CLI."""

from __future__ import annotations

import argparse
import io
import logging
import os
import re

import pytest

from runtime.logging import LOG_FORMAT, default_log_level, log_level, setup_logging


def test_log_level_argument() -> None:
    assert log_level("debug") == "DEBUG" and log_level(" Warning ") == "WARNING"
    with pytest.raises(argparse.ArgumentTypeError):
        log_level("loud")


def test_default_level_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHAPULSE_LOG_LEVEL", raising=False)
    assert default_log_level() == "INFO"
    monkeypatch.setenv("ALPHAPULSE_LOG_LEVEL", "debug")
    assert default_log_level() == "DEBUG"


def test_setup_logging_writes_the_one_format() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []
    out = io.StringIO()
    try:
        setup_logging("warning", stream=out)
        logging.getLogger("relays.daemon").info("not shown")
        logging.getLogger("relays.daemon").warning("shown")
        setup_logging("INFO", stream=io.StringIO())  # configured already: only the level changes
        logging.getLogger("risk").info("now shown")
    finally:
        for h in root.handlers:
            root.removeHandler(h)
        root.handlers = saved_handlers
        root.setLevel(saved_level)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} WARNING relays\.daemon\[{os.getpid()}\]: shown",
                        lines[0]), lines[0]
    assert lines[1].endswith(f"INFO risk[{os.getpid()}]: now shown")
    assert LOG_FORMAT == "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
