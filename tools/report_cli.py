"""``alphapulse report``: ``portfolio.report`` with the database an operator means by default, and with
tokens named (``tools.registry``).

Without ``--db`` or ``--archive``: the books at the configured default path when they exist, else the
newest live demo run's (``var/demo/<run>/data/portfolio.sqlite``), and it says which it took. Tokens and
pools come from the deployment file beside the database's run (``<run>/deployment.json``) or
``--deployment FILE``, the valuation token from the run's ``configs/portfolio.toml`` or
``--portfolio-config FILE``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portfolio.books import default_db_path
from portfolio.report import main as report_main

from .demo import latest_demo_db


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--db")
    ap.add_argument("--archive")
    ap.add_argument("--deployment", help="deployment file naming the tokens and pools")
    ap.add_argument("--portfolio-config", help="the portfolio's config (its valuation token)")
    ours, rest = ap.parse_known_args(argv)
    db = Path(ours.db) if ours.db else None
    if db is None and not ours.archive and not {"-h", "--help"} & set(rest) and not default_db_path().exists():
        db = latest_demo_db()
        if db is not None:
            print(f"alphapulse report: the latest demo run's database {db}", file=sys.stderr)
    if db is not None:
        rest = ["--db", str(db), *rest]
    if ours.archive:
        rest = ["--archive", ours.archive, *rest]
    run = db.resolve().parent.parent if db is not None else None
    deployment = Path(ours.deployment) if ours.deployment else (run / "deployment.json" if run else None)
    portfolio_cfg = (Path(ours.portfolio_config) if ours.portfolio_config
                     else (run / "configs" / "portfolio.toml" if run else None))
    from .registry import load_registry

    registry = load_registry([deployment] if deployment is not None and deployment.is_file() else None, cache=None)
    valuation: list[int] = []
    if portfolio_cfg is not None and portfolio_cfg.is_file():
        from portfolio.config import load_config

        valuation = [val for val, _wrapped in load_config(portfolio_cfg).valuation().values()]
    return report_main(rest, registry=registry, valuation_tokens=valuation)
