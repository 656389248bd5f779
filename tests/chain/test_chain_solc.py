"""chain.solc: the solc-js driver (needs node and node_modules/solc, as the devnet does)."""

from __future__ import annotations

import shutil

import pytest

from chain import solc

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (solc.node_modules_dir() / "solc" / "package.json").is_file(),
    reason="needs node and node_modules/solc (npm install)",
)
SETTINGS = {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun"}
SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract Answer { function answer() external pure returns (uint256) { return 42; } }
"""


def test_compile_source_gives_abi_and_bytecode() -> None:
    out = solc.compile_source("Answer.sol", SOURCE, "Answer", settings=SETTINGS)
    assert [e["name"] for e in out["abi"]] == ["answer"]
    assert out["bytecode"].startswith("0x60") and out["deployedBytecode"].startswith("0x60")
    assert out["compilerVersion"].startswith(solc.solc_version() + "+") and out["warnings"] == []


def test_errors_are_compile_errors() -> None:
    with pytest.raises(solc.CompileError, match="ParserError|Expected"):
        solc.compile_source("Bad.sol", "contract {", "Bad", settings=SETTINGS)
    with pytest.raises(solc.CompileError, match="not found"):
        solc.compile_source("Answer.sol", SOURCE, "Missing", settings=SETTINGS)
    with pytest.raises(solc.CompileError, match="expected 0.0.1"):
        solc.standard_json({"Answer.sol": SOURCE}, settings=SETTINGS, version="0.0.1")


def test_missing_solc_is_a_compile_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ALPHAPULSE_NODE_MODULES", str(tmp_path))
    with pytest.raises(solc.CompileError, match="npm install"):
        solc.solc_version()
