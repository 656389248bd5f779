"""Creation bytecode and ABIs: the official Uniswap builds from npm, and our DevToken.

The Uniswap bytecode is used exactly as published. That matters: the periphery contracts
compute pair / pool addresses from init-code hashes baked into their bytecode
(``chain.addresses.UNISWAP_V2_INIT_CODE_HASH`` / ``UNISWAP_V3_INIT_CODE_HASH``), and the
published creation code of UniswapV2Pair / UniswapV3Pool hashes to exactly those values
(:func:`check_init_code_hashes`). Each artifact is a :class:`chain.abi.Artifact`.

``DevToken`` (tools/devnet/contracts/DevToken.sol) is a minimal ERC-20 with configurable
decimals and an open mint. It is compiled with solc-js from node_modules on first use and
cached under ``node_modules/.cache/alphapulse-devnet`` (keyed by source, compiler and settings).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from chain import solc
from chain.abi import Artifact
from chain.addresses import UNISWAP_V2_INIT_CODE_HASH, UNISWAP_V3_INIT_CODE_HASH

from .paths import DevnetSetupError, node_modules_dir, require_file

V2_ARTIFACTS = {
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "ERC20": "@uniswap/v2-core/build/ERC20.json",
    "UniswapV2Router02": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
}
V3_ARTIFACTS = {
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "NonfungiblePositionManager": (
        "@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json"
    ),
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
}
V4_ARTIFACTS = {
    "PoolManager": "@uniswap/v4-core/out/PoolManager.sol/PoolManager.json",
}
# The Balancer V2 Vault (the zero-fee flash lender of FLASH_BALANCER) and its Authorizer, from the
# official deployment tasks of @balancer-labs/v2-deployments (the bytecode deployed on mainnet).
BALANCER_ARTIFACTS = {
    "BalancerVault": "@balancer-labs/v2-deployments/dist/tasks/20210418-vault/artifact/Vault.json",
    "BalancerAuthorizer": "@balancer-labs/v2-deployments/dist/tasks/20210418-authorizer/artifact/Authorizer.json",
}
# Ours, compiled with solc-js: the router/liquidity helper and the two hooks of the V4 devnet.
LOCAL_CONTRACTS = {
    "DevToken": "DevToken.sol",
    "V4DevnetRouter": "V4Devnet.sol",
    "SwapCounterHook": "V4Devnet.sol",
    "SkimHook": "V4Devnet.sol",
    "DevBridge": "DevBridge.sol",
    # A faithful Solidity port of the classic Curve StableSwap swap path (no package ships Curve's bytecode).
    "StableSwapDevnet": "StableSwapDevnet.sol",
}
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
SOLC_SETTINGS: dict[str, Any] = {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun"}
SOLC_OUTPUTS = ("abi", "evm.bytecode.object")


def _hex_bytes(code: str, where: str) -> bytes:
    code = code[2:] if code.startswith("0x") else code
    if "__" in code:
        raise DevnetSetupError(f"{where}: bytecode has unresolved link references")
    return bytes.fromhex(code)


@functools.cache
def load(name: str) -> Artifact:
    """Load one official artifact by contract name (see V2_ARTIFACTS / V3_ARTIFACTS /
    V4_ARTIFACTS), or one of ours (LOCAL_CONTRACTS)."""
    if name in LOCAL_CONTRACTS:
        return compile_solidity(LOCAL_CONTRACTS[name], name)
    rel = V2_ARTIFACTS.get(name) or V3_ARTIFACTS.get(name) or V4_ARTIFACTS.get(name) or BALANCER_ARTIFACTS.get(name)
    if rel is None:
        raise KeyError(f"unknown artifact {name!r}")
    path = require_file(rel)
    data = json.loads(path.read_text())
    code = data["bytecode"]
    if isinstance(code, dict):  # some build formats nest it
        code = code["object"]
    return Artifact(name, tuple(data["abi"]), _hex_bytes(code, str(path)), str(path))


def compile_solidity(filename: str, contract: str) -> Artifact:
    """Compile ``tools/devnet/contracts/<filename>`` with solc-js from node_modules (cached; one
    compilation caches every contract of the file)."""
    src_path = CONTRACTS_DIR / filename
    source = src_path.read_text()
    try:
        version = solc.solc_version()
    except solc.CompileError as exc:
        raise DevnetSetupError(str(exc)) from None
    key_input = [version, filename, source, SOLC_SETTINGS, SOLC_OUTPUTS]
    key = hashlib.sha256(json.dumps(key_input, sort_keys=True).encode()).hexdigest()[:16]
    cache = node_modules_dir() / ".cache" / "alphapulse-devnet" / f"{contract}-{key}.json"
    if cache.is_file():
        data = json.loads(cache.read_text())
        return Artifact(contract, tuple(data["abi"]), bytes.fromhex(data["bytecode"]), str(src_path))
    try:
        out = solc.standard_json({filename: source}, settings=SOLC_SETTINGS, outputs=SOLC_OUTPUTS, timeout=120)
    except solc.CompileError as exc:
        raise DevnetSetupError(f"solc-js: {exc}") from None
    cache.parent.mkdir(parents=True, exist_ok=True)
    for name, compiled in out["contracts"][filename].items():
        path = cache.with_name(f"{name}-{key}.json")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"solc": version, "abi": compiled["abi"],
                                   "bytecode": compiled["evm"]["bytecode"]["object"]}))
        tmp.replace(path)
    compiled = out["contracts"][filename][contract]
    return Artifact(contract, tuple(compiled["abi"]), bytes.fromhex(compiled["evm"]["bytecode"]["object"]),
                    str(src_path))


def dev_token() -> Artifact:
    return load("DevToken")


def check_init_code_hashes() -> None:
    """Raise if the npm creation code no longer matches the hashes baked into the periphery."""
    for name, want in (("UniswapV2Pair", UNISWAP_V2_INIT_CODE_HASH), ("UniswapV3Pool", UNISWAP_V3_INIT_CODE_HASH)):
        got = load(name).init_code_hash
        if got != want:
            raise DevnetSetupError(f"{name} init code hash 0x{got.hex()} != 0x{want.hex()}")
