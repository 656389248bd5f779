"""The solc-js driver: compile Solidity offline with the npm ``solc`` package through node.

solc-js bundles the compiler as WebAssembly, so nothing is downloaded: ``node -e`` loads
``node_modules/solc`` and runs its standard-JSON interface on our input (stdin) and writes the
output (stdout). Used by ``execution.build`` (the arbitrage contract, with a pinned compiler
version) and ``tools.devnet.artifacts`` (the devnet token, cached).

``python -m chain.solc`` is a stand-in for the native ``solc`` command line, the two options
tools such as slither (through crytic-compile) call: ``--version`` and ``--standard-json``
(input on stdin, sources given by ``content`` or by ``urls`` naming local files).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OUTPUTS",
    "REPO_ROOT",
    "CompileError",
    "compile_source",
    "node_modules_dir",
    "solc_version",
    "standard_json",
    "warnings_of",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUTS = ("abi", "evm.bytecode.object", "evm.deployedBytecode.object")

# Reads a standard-JSON input on stdin, writes {"version", "output"} on stdout.
_NODE_SCRIPT = r"""
const solc = require(process.argv[1]);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const output = JSON.parse(solc.compile(input));
  process.stdout.write(JSON.stringify({ version: solc.version(), output }));
});
"""


class CompileError(RuntimeError):
    """solc reported errors, or solc-js / node is missing or the wrong version."""


def node_modules_dir() -> Path:
    """``$ALPHAPULSE_NODE_MODULES`` if set, else ``<repo>/node_modules``."""
    env = os.environ.get("ALPHAPULSE_NODE_MODULES")
    return Path(env) if env else REPO_ROOT / "node_modules"


def _solc_dir() -> Path:
    solc_dir = node_modules_dir() / "solc"
    if not (solc_dir / "package.json").is_file():
        raise CompileError(f"{solc_dir} is missing: run `npm install` in {REPO_ROOT} (package.json lists solc)")
    return solc_dir


def solc_version() -> str:
    """The installed solc-js package's version (e.g. ``0.8.37``), without running it."""
    return str(json.loads((_solc_dir() / "package.json").read_text())["version"])


def _run_node(std_input: str, timeout: float) -> dict[str, Any]:
    """solc-js on one standard-JSON input: ``{"version", "output"}``."""
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not on PATH: solc-js needs Node.js")
    solc_dir = _solc_dir()
    try:
        proc = subprocess.run(
            [node, "-e", _NODE_SCRIPT, str(solc_dir)],
            input=std_input, capture_output=True, text=True, check=False, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise CompileError(f"solc-js did not finish in {timeout:g} s") from None
    if proc.returncode != 0:
        raise CompileError(f"solc-js failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    reply: dict[str, Any] = json.loads(proc.stdout)
    return reply


def standard_json(
    sources: Mapping[str, str],
    *,
    settings: Mapping[str, Any],
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    version: str | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Compile ``{file name: source text}`` with solc-js; returns solc's standard-JSON output,
    plus ``compilerVersion`` (the full version solc-js reports).

    Raises :class:`CompileError` on any error-severity diagnostic, or when ``version`` is given
    and the compiler is another one.
    """
    std_settings = dict(settings)
    std_settings["outputSelection"] = {"*": {"*": list(outputs)}}
    std_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": std_settings,
    }
    reply = _run_node(json.dumps(std_input), timeout)
    got = str(reply["version"])
    if version is not None and not got.startswith(version + "."):
        raise CompileError(f"solc-js in {_solc_dir()} is {got}, expected {version} (run `npm install`)")
    output: dict[str, Any] = reply["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage") or e.get("message", "") for e in errors))
    output["compilerVersion"] = got
    return output


def warnings_of(output: Mapping[str, Any]) -> list[str]:
    return [
        e.get("formattedMessage") or e.get("message", "")
        for e in output.get("errors", [])
        if e.get("severity") != "error"
    ]


def compile_source(name: str, text: str, contract: str, *, settings: Mapping[str, Any],
                   version: str | None = None) -> dict[str, Any]:
    """Compile one source file and return ``{"abi", "bytecode", "deployedBytecode",
    "compilerVersion", "warnings"}`` of ``contract`` (bytecode as 0x-hex)."""
    output = standard_json({name: text}, settings=settings, version=version)
    try:
        c = output["contracts"][name][contract]
    except KeyError:
        raise CompileError(f"{contract} not found in {name}") from None
    return {
        "abi": c["abi"],
        "bytecode": "0x" + c["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
        "compilerVersion": output["compilerVersion"],
        "warnings": warnings_of(output),
    }


def _inline_urls(std_input: dict[str, Any], base: Path) -> None:
    """solc-js has no file system: a source given by ``urls`` gets its ``content`` read here."""
    for name, src in std_input.get("sources", {}).items():
        if "content" in src:
            continue
        for url in src.get("urls", ()):
            path = Path(url) if Path(url).is_absolute() else base / url
            if path.is_file():
                src["content"] = path.read_text(encoding="utf-8")
                break
        else:
            raise CompileError(f"source {name}: none of its urls is a readable file")
        src.pop("urls", None)


def main(argv: list[str] | None = None) -> int:
    """``solc --version`` / ``solc --standard-json [--allow-paths DIR]`` over solc-js."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if "--version" in args:
            version = _run_node(json.dumps({"language": "Solidity", "sources": {}}), 300.0)["version"]
            print(f"solc, the solidity compiler commandline interface (solc-js)\nVersion: {version}")
            return 0
        if "--standard-json" in args:
            std_input = json.loads(sys.stdin.read())
            _inline_urls(std_input, Path.cwd())
            sys.stdout.write(json.dumps(_run_node(json.dumps(std_input), 300.0)["output"]))
            return 0
    except (CompileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m chain.solc --version | --standard-json  (stdin: standard JSON)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
