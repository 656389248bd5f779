"""``alphapulse report``: ``portfolio.report`` with the database an operator means by default.

Without ``--db`` or ``--archive``: the books at the configured default path when they exist, else the
newest live demo run's (``var/demo/<run>/data/portfolio.sqlite``), and it says which it took.
"""

from __future__ import annotations

import sys

from portfolio.books import default_db_path
from portfolio.report import main as report_main

from .demo import latest_demo_db


def main(argv: list[str]) -> int:
    if not any(a in ("--db", "--archive") or a.startswith(("--db=", "--archive=")) for a in argv) \
            and not {"-h", "--help"} & set(argv) and not default_db_path().exists():
        db = latest_demo_db()
        if db is not None:
            print(f"alphapulse report: the latest demo run's database {db}", file=sys.stderr)
            argv = ["--db", str(db), *argv]
    return report_main(argv)
