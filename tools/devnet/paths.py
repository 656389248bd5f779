"""Where the devnet finds its npm packages, and the error raised when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_RELPATH = Path("@foundry-rs/anvil-linux-amd64/bin/anvil")


class DevnetSetupError(RuntimeError):
    """Something the devnet needs is not installed (npm packages, node)."""


def node_modules_dir() -> Path:
    """``$ALPHAPULSE_NODE_MODULES`` if set, else ``<repo>/node_modules``."""
    env = os.environ.get("ALPHAPULSE_NODE_MODULES")
    path = Path(env) if env else REPO_ROOT / "node_modules"
    if not path.is_dir():
        raise DevnetSetupError(
            f"{path} does not exist: the devnet needs the npm packages from package.json "
            f"(anvil, the Uniswap contracts, solc). `./run devnet` installs them, "
            f"or run `npm install` in {REPO_ROOT}."
        )
    return path


def require_file(relpath: Path | str) -> Path:
    path = node_modules_dir() / relpath
    if not path.is_file():
        raise DevnetSetupError(
            f"{path} is missing: node_modules is incomplete. Run `npm install` in {REPO_ROOT} "
            f"(or `./run devnet`)."
        )
    return path
