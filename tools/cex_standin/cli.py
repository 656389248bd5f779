"""``alphapulse standin binance|coinbase|advanced``: a local exchange replaying a real capture.

    alphapulse standin binance --ws-port 9443 --rest-port 9444 --pace 0.02 --faults "drop=500;late=20"

then point a collector at it (``ws_url = "ws://127.0.0.1:9443"``, ``rest_url = "http://127.0.0.1:9444"``).
``--faults``: ``drop=I,..`` / ``dup=I,..`` / ``swap=I,..`` (frame indexes of the capture), ``disconnect=I,..``
(close the connection after frame I), ``late=N`` (answer REST snapshots only after N more frames).
``--paper KEY_ENV:HMAC_ENV`` (binance): also a paper exchange for signed ``POST /api/v3/order`` (``paper.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import trio

from runtime.errors import reraise_unwrapped

from .paper import PaperExchange
from .replay import Faults
from .server import AdvancedStandin, BinanceStandin, CoinbaseStandin

KINDS = {"binance": BinanceStandin, "coinbase": CoinbaseStandin, "advanced": AdvancedStandin}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse standin", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=sorted(KINDS))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ws-port", type=int, default=0)
    ap.add_argument("--rest-port", type=int, default=0)
    ap.add_argument("--pace", type=float, default=0.01, help="seconds between replayed frames (0: as fast as read)")
    ap.add_argument("--faults", default="", help="drop=..;dup=..;swap=..;disconnect=..;late=N")
    ap.add_argument("--paper", metavar="KEY_ENV:HMAC_ENV", default="",
                    help="binance: accept signed orders (paper exchange) for the API key and HMAC signing key held "
                         "in these two environment variables")
    args = ap.parse_args(argv)
    extra: dict[str, Any] = {}
    if args.paper:
        if args.kind != "binance":
            ap.error("--paper is for the binance stand-in")
        key_env, _, hmac_env = args.paper.partition(":")
        key, signing = os.environ.get(key_env, ""), os.environ.get(hmac_env, "")
        if not key or not signing:
            ap.error(f"--paper: set {key_env} and {hmac_env}")
        extra["paper"] = PaperExchange({key: signing})
    standin = KINDS[args.kind](faults=Faults.parse(args.faults), pace=args.pace, host=args.host,
                               ws_port=args.ws_port, rest_port=args.rest_port, **extra)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            ws_port, rest_port = await nursery.start(standin.serve)
            print(f"{args.kind} stand-in: ws://{args.host}:{ws_port}  http://{args.host}:{rest_port}", flush=True)

    try:
        with reraise_unwrapped():
            trio.run(run)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
