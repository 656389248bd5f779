"""Creation bytecode and ABIs: the official Uniswap builds from npm, and our DevToken.

The Uniswap bytecode is used exactly as published. That matters: the periphery contracts
compute pair / pool addresses from init-code hashes baked into their bytecode
(``UNISWAP_V2_PAIR_INIT_CODE_HASH`` / ``UNISWAP_V3_POOL_INIT_CODE_HASH`` below), and the
published creation code of UniswapV2Pair / UniswapV3Pool hashes to exactly those values.

``DevToken`` (tools/devnet/contracts/DevToken.sol) is a minimal ERC-20 with configurable
decimals and an open mint. It is compiled with solc-js from node_modules on first use and
cached under ``node_modules/.cache/alphapulse-devnet`` (keyed by source, compiler and settings).
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eth_abi
from eth_utils import function_signature_to_4byte_selector, keccak

from .paths import DevnetSetupError, node_modules_dir, require_file

UNISWAP_V2_PAIR_INIT_CODE_HASH = "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"
UNISWAP_V3_POOL_INIT_CODE_HASH = "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"

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
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}


def abi_type(param: dict[str, Any]) -> str:
    """The canonical type string of an ABI parameter, tuples expanded: ``(address,uint24)[]``."""
    typ = param["type"]
    if typ.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){typ[len('tuple'):]}"
    return str(typ)


@dataclass(frozen=True)
class Function:
    name: str
    signature: str
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]

    def encode(self, *args: Any) -> bytes:
        return self.selector + eth_abi.encode(list(self.input_types), list(args))

    def decode(self, data: bytes) -> tuple[Any, ...]:
        return tuple(eth_abi.decode(list(self.output_types), data))


@dataclass(frozen=True)
class Event:
    name: str
    signature: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    data: tuple[tuple[str, str], ...]  # (name, type) in data order

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (name, typ), topic in zip(self.indexed, topics[1:], strict=True):
            out[name] = eth_abi.decode([typ], topic)[0]
        values = eth_abi.decode([t for _, t in self.data], data)
        out.update({name: v for (name, _), v in zip(self.data, values, strict=True)})
        return out


@dataclass(frozen=True, eq=False)
class Artifact:
    """A contract's ABI and creation bytecode (bytes, no link references left)."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    source: str
    _functions: dict[str, list[Function]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for entry in self.abi:
            if entry.get("type") == "function":
                ins = tuple(abi_type(p) for p in entry.get("inputs", []))
                outs = tuple(abi_type(p) for p in entry.get("outputs", []))
                sig = f"{entry['name']}({','.join(ins)})"
                fn = Function(entry["name"], sig, function_signature_to_4byte_selector(sig), ins, outs)
                self._functions.setdefault(entry["name"], []).append(fn)

    def fn(self, name: str, nargs: int | None = None) -> Function:
        """The function ``name`` (or a full signature ``name(type,...)``); ``nargs`` picks an overload."""
        if "(" in name:
            for fn in self._functions.get(name.split("(")[0], []):
                if fn.signature == name:
                    return fn
            raise KeyError(f"{self.name} has no function {name}")
        fns = self._functions.get(name, [])
        if nargs is not None:
            fns = [f for f in fns if len(f.input_types) == nargs]
        if len(fns) != 1:
            raise KeyError(f"{self.name}.{name}: {len(fns)} matching functions, give a signature")
        return fns[0]

    def encode(self, name: str, *args: Any) -> bytes:
        return self.fn(name, len(args)).encode(*args)

    def event(self, name: str) -> Event:
        for entry in self.abi:
            if entry.get("type") == "event" and entry["name"] == name:
                ins = entry.get("inputs", [])
                sig = f"{name}({','.join(abi_type(p) for p in ins)})"
                return Event(
                    name,
                    sig,
                    keccak(text=sig),
                    tuple((p["name"], abi_type(p)) for p in ins if p.get("indexed")),
                    tuple((p["name"], abi_type(p)) for p in ins if not p.get("indexed")),
                )
        raise KeyError(f"{self.name} has no event {name}")

    def deploy_data(self, *args: Any) -> bytes:
        """Creation code followed by the ABI-encoded constructor arguments."""
        ctor = next((e for e in self.abi if e.get("type") == "constructor"), None)
        types = [abi_type(p) for p in ctor.get("inputs", [])] if ctor else []
        if len(types) != len(args):
            raise TypeError(f"{self.name} constructor takes {len(types)} arguments, got {len(args)}")
        return self.bytecode + (eth_abi.encode(types, list(args)) if types else b"")

    @property
    def init_code_hash(self) -> str:
        return "0x" + keccak(self.bytecode).hex()


def _hex_bytes(code: str, where: str) -> bytes:
    code = code[2:] if code.startswith("0x") else code
    if "__" in code:
        raise DevnetSetupError(f"{where}: bytecode has unresolved link references")
    return bytes.fromhex(code)


@functools.cache
def load(name: str) -> Artifact:
    """Load one official artifact by contract name (see V2_ARTIFACTS / V3_ARTIFACTS), or
    ``"DevToken"``."""
    if name == "DevToken":
        return dev_token()
    rel = V2_ARTIFACTS.get(name) or V3_ARTIFACTS.get(name)
    if rel is None:
        raise KeyError(f"unknown artifact {name!r}")
    path = require_file(rel)
    data = json.loads(path.read_text())
    code = data["bytecode"]
    if isinstance(code, dict):  # some build formats nest it
        code = code["object"]
    return Artifact(name, tuple(data["abi"]), _hex_bytes(code, str(path)), str(path))


def _solc_version() -> str:
    pkg = json.loads(require_file("solc/package.json").read_text())
    return str(pkg["version"])


_COMPILE_JS = (
    "const solc=require(process.argv[1]);let s='';process.stdin.setEncoding('utf8');"
    "process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(solc.compile(s)));"
)


def compile_solidity(filename: str, contract: str) -> Artifact:
    """Compile ``tools/devnet/contracts/<filename>`` with solc-js from node_modules (cached)."""
    src_path = CONTRACTS_DIR / filename
    source = src_path.read_text()
    version = _solc_version()
    std_input = {"language": "Solidity", "sources": {filename: {"content": source}}, "settings": SOLC_SETTINGS}
    key = hashlib.sha256(json.dumps([version, std_input], sort_keys=True).encode()).hexdigest()[:16]
    cache = node_modules_dir() / ".cache" / "alphapulse-devnet" / f"{contract}-{key}.json"
    if cache.is_file():
        data = json.loads(cache.read_text())
        return Artifact(contract, tuple(data["abi"]), bytes.fromhex(data["bytecode"]), str(src_path))
    node = shutil.which("node")
    if node is None:
        raise DevnetSetupError("`node` is not on PATH; it is needed once to compile the devnet token")
    solc_dir = node_modules_dir() / "solc"
    proc = subprocess.run(
        [node, "-e", _COMPILE_JS, str(solc_dir)],
        input=json.dumps(std_input), capture_output=True, text=True, check=False, timeout=120,
    )
    if proc.returncode != 0:
        raise DevnetSetupError(f"solc-js failed: {proc.stderr.strip()[-2000:]}")
    out = json.loads(proc.stdout)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise DevnetSetupError("solc: " + "\n".join(e.get("formattedMessage", str(e)) for e in errors))
    compiled = out["contracts"][filename][contract]
    bytecode = compiled["evm"]["bytecode"]["object"]
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"solc": version, "abi": compiled["abi"], "bytecode": bytecode}))
    tmp.replace(cache)
    return Artifact(contract, tuple(compiled["abi"]), bytes.fromhex(bytecode), str(src_path))


@functools.cache
def dev_token() -> Artifact:
    return compile_solidity("DevToken.sol", "DevToken")


def check_init_code_hashes() -> None:
    """Raise if the npm creation code no longer matches the hashes baked into the periphery."""
    pair = load("UniswapV2Pair").init_code_hash
    pool = load("UniswapV3Pool").init_code_hash
    if pair != UNISWAP_V2_PAIR_INIT_CODE_HASH:
        raise DevnetSetupError(f"UniswapV2Pair init code hash {pair} != {UNISWAP_V2_PAIR_INIT_CODE_HASH}")
    if pool != UNISWAP_V3_POOL_INIT_CODE_HASH:
        raise DevnetSetupError(f"UniswapV3Pool init code hash {pool} != {UNISWAP_V3_POOL_INIT_CODE_HASH}")
