"""A local stand-in for a block builder: the bundle JSON-RPC over HTTP, bundles included on anvil.

``python -m tools.devnet.builder_standin --rpc http://127.0.0.1:8545 [--port 0]`` prints
``builder-standin: listening on http://127.0.0.1:PORT`` and serves, on 127.0.0.1 only:

* ``eth_sendBundle [{txs, blockNumber, minTimestamp?, maxTimestamp?, revertingTxHashes?}]`` ->
  ``{"bundleHash"}``. The bundle waits until the chain's head is ``blockNumber - 1`` and is then
  included **as block ``blockNumber``**: automine off, every raw transaction submitted with
  ``eth_sendRawTransaction``, one ``evm_mine``, automine back on. All or nothing: if any
  transaction fails to enter or reverts and its hash is not in ``revertingTxHashes``, the block is
  undone (``evm_snapshot`` / ``evm_revert``, the transactions dropped from the pool) and the bundle
  is dropped. A bundle whose block has passed, or whose ``maxTimestamp`` is behind the clock, is
  dropped.
* ``eth_callBundle [{txs, blockNumber, stateBlockNumber}]`` -> ``{bundleHash, stateBlockNumber,
  totalGasUsed, results: [{txHash, gasUsed, fromAddress, toAddress, value | error, revert}]}``:
  the same inclusion on top of the head, always undone. (``stateBlockNumber`` other than the head
  or ``"latest"`` is refused: anvil cannot build on an old state without rewinding.)
* ``standin_setInclusion [bool]``: a test knob; false = accept bundles but never include them.

Built on ``http.server`` (stdlib) with one lock around the chain, so bundles are applied one at a
time; a watcher thread includes waiting bundles when their block comes. This is a test tool, not
a builder: no ordering auction, no coinbase payments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_utils import keccak

from chain.rpc import RpcError, RpcFailure, SyncHttpRpc
from runtime.logging import setup_logging

log = logging.getLogger("tools.devnet.builder_standin")


class BundleError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass
class Bundle:
    txs: list[bytes]
    block_number: int
    min_timestamp: int | None = None
    max_timestamp: int | None = None
    reverting: set[str] = field(default_factory=set)

    @property
    def hashes(self) -> list[str]:
        return ["0x" + keccak(t).hex() for t in self.txs]

    @property
    def bundle_hash(self) -> str:
        return "0x" + keccak(b"".join(keccak(t) for t in self.txs)).hex()


def _hexint(v: Any, what: str) -> int:
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.startswith("0x"):
        return int(v, 16)
    raise BundleError(-32602, f"{what} must be a hex quantity")


def parse_bundle(p: Any) -> Bundle:
    if not isinstance(p, dict) or not isinstance(p.get("txs"), list) or not p["txs"]:
        raise BundleError(-32602, "bundle needs a non-empty txs list")
    try:
        txs = [bytes.fromhex(t[2:] if t.startswith("0x") else t) for t in p["txs"]]
    except (ValueError, AttributeError, TypeError):
        raise BundleError(-32602, "txs must be hex strings") from None
    return Bundle(
        txs=txs,
        block_number=_hexint(p.get("blockNumber"), "blockNumber"),
        min_timestamp=p.get("minTimestamp"),
        max_timestamp=p.get("maxTimestamp"),
        reverting={h.lower() for h in p.get("revertingTxHashes") or []},
    )


class BuilderStandin:
    """The stand-in's logic (and its HTTP server, once :meth:`start` ed)."""

    def __init__(self, rpc_url: str, *, host: str = "127.0.0.1", port: int = 0, poll_s: float = 0.02) -> None:
        self.rpc_url = rpc_url
        self._rpc = SyncHttpRpc(rpc_url, timeout=30.0)
        self.lock = threading.Lock()
        self.pending: list[Bundle] = []
        self.include = True
        self.log: list[tuple[str, str]] = []  # (bundle hash, what happened) for tests and debugging
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BuilderStandin:
        for target in (self._server.serve_forever, self._watch):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._rpc.close()

    def __enter__(self) -> BuilderStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- anvil ---------------------------------------------------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        """One call to anvil; its error object becomes a :class:`BundleError` with the node's code."""
        try:
            return self._rpc.call(method, params)
        except RpcError as exc:
            code = exc.code if isinstance(exc.code, int) else -32000
            raise BundleError(code, exc.message) from None

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def _apply(self, bundle: Bundle, keep: bool) -> tuple[bool, list[dict[str, Any]], int]:
        """Mine the bundle as the next block; undo it unless ``keep`` and every tx is acceptable."""
        snap = self.rpc("evm_snapshot")
        results: list[dict[str, Any]] = []
        ok = True
        self.rpc("evm_setAutomine", False)
        try:
            sent = []
            for raw, h in zip(bundle.txs, bundle.hashes):
                try:
                    self.rpc("eth_sendRawTransaction", "0x" + raw.hex())
                    sent.append(h)
                except BundleError as exc:
                    results.append({"txHash": h, "error": str(exc), "revert": ""})
                    ok = False
            if ok:
                self.rpc("evm_mine")
            for h in sent:
                r = self.rpc("eth_getTransactionReceipt", h) if ok else None
                if r is None:
                    results.append({"txHash": h, "error": "not mined", "revert": ""})
                    ok = False
                    continue
                res = {"txHash": h, "gasUsed": int(r["gasUsed"], 16), "fromAddress": r["from"],
                       "toAddress": r.get("to"), "gasPrice": r.get("effectiveGasPrice")}
                if int(r["status"], 16) != 1:
                    res.update(error="execution reverted", revert="")
                    if h.lower() not in bundle.reverting:
                        ok = False
                else:
                    res["value"] = "0x"
                results.append(res)
        finally:
            self.rpc("evm_setAutomine", True)
        block = self.head()
        if not (keep and ok):
            self.rpc("evm_revert", snap)
            for h in bundle.hashes:
                try:
                    self.rpc("anvil_dropTransaction", h)
                except BundleError:
                    pass  # not in the pool: nothing to drop
        return ok, results, block

    # --- the JSON-RPC methods ------------------------------------------------------------------

    def send_bundle(self, params: Any) -> dict[str, Any]:
        bundle = parse_bundle(params)
        with self.lock:
            self.pending.append(bundle)
            self._process()
        return {"bundleHash": bundle.bundle_hash}

    def call_bundle(self, params: Any) -> dict[str, Any]:
        bundle = parse_bundle(params)
        state = params.get("stateBlockNumber", "latest")
        with self.lock:
            head = self.head()
            if state not in ("latest", "pending") and _hexint(state, "stateBlockNumber") != head:
                raise BundleError(-32602, f"stateBlockNumber must be the head ({head}) or 'latest' on this stand-in")
            _ok, results, _ = self._apply(bundle, keep=False)
        return {"bundleHash": bundle.bundle_hash, "stateBlockNumber": head, "results": results,
                "totalGasUsed": sum(r.get("gasUsed", 0) for r in results)}

    def _process(self) -> None:
        """Include the bundles whose block is next; drop the expired ones. Holds ``self.lock``."""
        if not self.pending:
            return
        head = self.head()
        now = int(time.time())
        keep = []
        for b in self.pending:
            if b.block_number <= head or (b.max_timestamp is not None and now > b.max_timestamp):
                self.log.append((b.bundle_hash, "expired"))
            elif b.block_number == head + 1 and (b.min_timestamp is None or now >= b.min_timestamp):
                if not self.include:
                    keep.append(b)
                    continue
                ok, results, block = self._apply(b, keep=True)
                self.log.append((b.bundle_hash, f"included in {block}" if ok else f"dropped: {results}"))
                log.info("bundle %s: %s", b.bundle_hash, self.log[-1][1])
                if ok:
                    head = block  # later bundles for this block lost the race
            else:
                keep.append(b)
        self.pending = keep

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            with self.lock:
                try:
                    self._process()
                except (BundleError, RpcFailure) as exc:
                    log.warning("builder stand-in: %s", exc)

    def dispatch(self, method: str, params: list[Any]) -> Any:
        if method == "eth_sendBundle":
            return self.send_bundle(params[0] if params else None)
        if method == "eth_callBundle":
            return self.call_bundle(params[0] if params else None)
        if method == "standin_setInclusion":
            self.include = bool(params[0])
            return self.include
        raise BundleError(-32601, f"method {method} not supported by the builder stand-in")


def _handler_for(standin: BuilderStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            req_id: Any = None
            try:
                req = json.loads(self.rfile.read(length))
                req_id = req.get("id")
                body = {"jsonrpc": "2.0", "id": req_id,
                        "result": standin.dispatch(str(req.get("method")), list(req.get("params") or []))}
            except BundleError as exc:
                body = {"jsonrpc": "2.0", "id": req_id, "error": {"code": exc.code, "message": str(exc)}}
            except (ValueError, AttributeError) as exc:
                body = {"jsonrpc": "2.0", "id": req_id, "error": {"code": -32700, "message": f"bad request: {exc}"}}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.devnet.builder_standin", description=__doc__.split("\n")[0])
    ap.add_argument("--rpc", required=True, help="anvil JSON-RPC URL")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    setup_logging("INFO")
    standin = BuilderStandin(args.rpc, port=args.port).start()
    print(f"builder-standin: listening on {standin.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
