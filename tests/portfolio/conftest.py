"""The portfolio tests share the message builders of tests/risk/risk_testkit.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "risk"))
