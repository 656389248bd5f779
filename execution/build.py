"""Compile the on-chain arbitrage contract offline with solc-js (npm ``solc``) and write its artifact.

    python -m execution.build            # (re)write execution/artifacts/AlphaPulseArb.json
    python -m execution.build --check    # exit 1 if the committed artifact is stale

The previous contract's artifact (``AlphaPulseArb.v1.json``, :data:`PREVIOUS_ARTIFACT_PATH`) is kept
beside it, unchanged, for the gas benchmark's before/after comparison.

The compiler is the exact version pinned in :data:`SOLC_VERSION`, loaded from ``node_modules/solc``
(installed by ``npm install`` from the repository's ``package.json``) and driven through its
standard-JSON interface by :mod:`chain.solc`. Nothing is downloaded: solc-js bundles the compiler as
WebAssembly. Optimizer settings are fixed in :data:`SETTINGS`, and the metadata hash is left out
of the bytecode (``bytecodeHash: none``), so the bytecode depends only on the source, the
compiler and the settings - the committed artifact can be checked by recompiling.

The artifact records ``abi``, ``bytecode`` and ``deployedBytecode`` (0x-prefixed hex), the
compiler version, the settings and the source's sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chain import solc
from chain.solc import CompileError

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACT_NAME = "AlphaPulseArb"
SOURCE_PATH = CONTRACTS_DIR / f"{CONTRACT_NAME}.sol"
ARTIFACT_PATH = ARTIFACTS_DIR / f"{CONTRACT_NAME}.json"
# The previous contract (v1: ABI-encoded Hop[] paths, V2/V3 only), compiled by this same build
# from its source at commit c8170c9 and kept, never rebuilt, as the gas benchmark's baseline
# (`alphapulse bench gas`). Its artifact records that source's sha256, pinned here.
PREVIOUS_ARTIFACT_PATH = ARTIFACTS_DIR / f"{CONTRACT_NAME}.v1.json"
PREVIOUS_SOURCE_SHA256 = "93acd10f4ff8e078ad919362503f38ec092b87b4dc4ffb978991474465af694a"

# The exact compiler (solc-js reports "<this>.Emscripten.clang"); package.json pins solc 0.8.37.
SOLC_VERSION = "0.8.37+commit.f401782d"

# Fixed compiler settings. evmVersion cancun: transient storage (EIP-1153) is needed, and nothing
# newer is, so the contract runs on any chain from Cancun on (anvil's default hardfork is newer).
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 4_294_967_295},
    "viaIR": True,
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none"},
}


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def compile_source(name: str, text: str, contract: str) -> dict[str, Any]:
    """Compile one source file with the pinned compiler and :data:`SETTINGS`."""
    return solc.compile_source(name, text, contract, settings=SETTINGS, version=SOLC_VERSION)


def compile_contract(source_path: Path = SOURCE_PATH) -> dict[str, Any]:
    """Compile ``AlphaPulseArb.sol`` and return the artifact (what :func:`write_artifact` stores)."""
    text = source_path.read_text(encoding="utf-8")
    name = source_path.name
    compiled = compile_source(name, text, CONTRACT_NAME)
    return {
        "contractName": CONTRACT_NAME,
        "sourcePath": f"execution/contracts/{name}",
        "sourceSha256": sha256_hex(text),
        "compiler": {"name": "solc-js", "version": SOLC_VERSION, "fullVersion": compiled["compilerVersion"]},
        "settings": dict(SETTINGS),
        "abi": compiled["abi"],
        "bytecode": compiled["bytecode"],
        "deployedBytecode": compiled["deployedBytecode"],
        "warnings": compiled["warnings"],
    }


def artifact_json(artifact: Mapping[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def write_artifact(artifact: Mapping[str, Any], path: Path = ARTIFACT_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(artifact_json(artifact), encoding="utf-8")
    tmp.replace(path)
    return path


def load_artifact(path: Path = ARTIFACT_PATH) -> dict[str, Any]:
    """The committed artifact (no compiler needed)."""
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def stale_reasons(committed: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    """Why ``committed`` does not match a fresh compile (empty when it is up to date)."""
    reasons = []
    for key in ("sourceSha256", "bytecode", "deployedBytecode", "abi", "settings", "compiler"):
        if committed.get(key) != fresh.get(key):
            reasons.append(f"{key} differs")
    return reasons


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m execution.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the artifact is stale")
    args = parser.parse_args(argv)
    try:
        artifact = compile_contract()
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in artifact["warnings"]:
        print(w, file=sys.stderr)
    size = (len(artifact["deployedBytecode"]) - 2) // 2
    if args.check:
        try:
            committed = load_artifact(ARTIFACT_PATH)
        except FileNotFoundError:
            print(f"{ARTIFACT_PATH} does not exist", file=sys.stderr)
            return 1
        reasons = stale_reasons(committed, artifact)
        if reasons:
            print(f"{ARTIFACT_PATH} is stale: {', '.join(reasons)}; run `python -m execution.build`", file=sys.stderr)
            return 1
        print(f"{_display(ARTIFACT_PATH)} is up to date ({size} bytes deployed)")
        return 0
    path = write_artifact(artifact, ARTIFACT_PATH)
    print(f"wrote {_display(path)}: {CONTRACT_NAME}, solc {SOLC_VERSION}, {size} bytes deployed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
