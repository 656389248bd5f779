"""Static analysis of the arbitrage contract: slither, compiled by our solc-js (``./run lint``).

    python -m tools.contract_lint [--show]

slither (PyPI ``slither-analyzer``) compiles through crytic-compile, which runs a native ``solc``
command line. We give it ``python -m chain.solc`` instead (a stand-in for ``solc --version`` and
``solc --standard-json`` over the pinned solc-js of ``node_modules``), with the contract's own
build settings (:data:`execution.build.SETTINGS`: viaIR, optimizer, cancun), so the code slither
analyses is exactly what ``execution.build`` compiles.

Exit 1 on any finding of high or medium impact, and on any low / informational / optimization
finding whose detector is not listed, with its reason, in the "Static analysis" table of
``execution/contracts/README.md``: every finding is either fixed or accepted in writing.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from execution.build import REPO_ROOT, SETTINGS, SOURCE_PATH

README = SOURCE_PATH.parent / "README.md"
FAILING_IMPACTS = ("High", "Medium")


def accepted_detectors(readme: Path = README) -> dict[str, str]:
    """``detector -> reason`` from the README's table rows ``| `detector` | impact | reason |``."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Static analysis", 1)[1] if "## Static analysis" in text else ""
    rows = re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|[^|]*\|\s*(.+?)\s*\|\s*$", section, flags=re.M)
    return dict(rows)


def _solc_shim(directory: Path) -> Path:
    """An executable ``solc`` that is ``python -m chain.solc`` with this interpreter and checkout."""
    shim = directory / "solc"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}" '
                    f'exec "{sys.executable}" -m chain.solc "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return shim


def run_slither() -> list[dict[str, Any]]:
    """slither's findings on AlphaPulseArb.sol: ``{"check", "impact", "confidence", "description"}``."""
    import logging

    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    logging.getLogger("CryticCompile").setLevel(logging.ERROR)
    logging.getLogger("Slither").setLevel(logging.ERROR)
    settings = {k: v for k, v in SETTINGS.items() if k != "metadata"}
    source = os.path.relpath(SOURCE_PATH, Path.cwd())
    std_input = {"language": "Solidity", "sources": {source: {"urls": [source]}}, "settings": settings}
    with tempfile.TemporaryDirectory(prefix="alphapulse-slither-") as tmp:
        sl = Slither(SolcStandardJson(std_input), solc=str(_solc_shim(Path(tmp))))
        for obj in vars(all_detectors).values():
            if isinstance(obj, type) and issubclass(obj, AbstractDetector) and obj is not AbstractDetector:
                sl.register_detector(obj)
        results = [r for per_detector in sl.run_detectors() for r in per_detector]
    return [{"check": r["check"], "impact": r["impact"], "confidence": r["confidence"],
             "description": r["description"].strip()} for r in results]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.contract_lint", description=__doc__.splitlines()[0])
    ap.add_argument("--show", action="store_true", help="print every finding, accepted ones too")
    args = ap.parse_args(argv)
    try:
        findings = run_slither()
    except Exception as exc:  # slither/crytic-compile raise their own exception trees; one line, no traceback
        print(f"error: slither could not analyse {SOURCE_PATH.name}: {str(exc).strip().splitlines()[-1:]}",
              file=sys.stderr)
        return 2
    accepted = accepted_detectors()
    failing = [f for f in findings if f["impact"] in FAILING_IMPACTS or f["check"] not in accepted]
    for f in findings if args.show else failing:
        mark = "accepted" if f not in failing else "FAIL"
        print(f"[{mark}] {f['check']} ({f['impact']}, {f['confidence']}): {f['description']}")
    counts: dict[str, int] = {}
    for f in findings:
        counts[f["impact"]] = counts.get(f["impact"], 0) + 1
    summary = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items())) or "no findings"
    if failing:
        print(f"slither: {SOURCE_PATH.name}: {len(failing)} finding(s) not accepted ({summary}); high and medium "
              f"must be fixed, others fixed or listed with a reason in {README.relative_to(REPO_ROOT)}", file=sys.stderr)
        return 1
    print(f"slither: {SOURCE_PATH.name}: no high or medium findings ({summary}, all accepted in the README)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
