"""Where the devnet finds its npm packages, and the error raised when they are missing."""

from __future__ import annotations

from pathlib import Path

from chain import solc

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_RELPATH = Path("@foundry-rs/anvil-linux-amd64/bin/anvil")


class DevnetSetupError(RuntimeError):
    """Something the devnet needs is not installed (npm packages, node)."""


def node_modules_dir() -> Path:
    """``chain.solc.node_modules_dir()`` (``$ALPHAPULSE_NODE_MODULES`` or ``<repo>/node_modules``),
    which must exist."""
    path = solc.node_modules_dir()
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
