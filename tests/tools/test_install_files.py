"""What ``./run`` installs from: the Python project's metadata and the npm lock, as committed."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    """``license = { text = ... }`` makes setuptools print its ``project.license`` deprecation banner on every
    install; the SPDX string form needs setuptools >= 77."""
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert doc["project"]["license"] == "MIT"
    assert (ROOT / doc["project"]["license-files"][0]).is_file()
    (req,) = [r for r in doc["build-system"]["requires"] if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=(\d+)", req)
    assert m and int(m.group(1)) >= 77, req


def test_the_npm_lock_is_complete_so_installing_does_not_rewrite_it() -> None:
    """npm records every optional (per-platform) dependency in the lock; a lock without them is rewritten
    by the first ``npm install``. ``./run`` installs with ``npm ci``, which never writes the lock."""
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = lock["packages"]
    declared = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert packages[""]["dependencies"] == declared
    missing = [f"{name} (optional dependency of {path})"
               for path, entry in packages.items()
               for name in entry.get("optionalDependencies", {})
               if f"node_modules/{name}" not in packages and f"{path}/node_modules/{name}" not in packages]
    assert not missing, missing
    run = (ROOT / "run").read_text()
    assert "npm ci " in run and "package-lock.json" in run
