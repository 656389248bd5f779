"""``alphapulse standin binance|coinbase|advanced``: a local exchange replaying a real capture.
(``alphapulse standin bridge``: the devnet's bridge relayer, ``tools/devnet/bridge_standin.py``.)

    alphapulse standin binance --ws-port 9443 --rest-port 9444 --pace 0.02 --faults "drop=500;late=20"

then point a collector at it (``ws_url = "ws://127.0.0.1:9443"``, ``rest_url = "http://127.0.0.1:9444"``).
``--faults``: ``drop=I,..`` / ``dup=I,..`` / ``swap=I,..`` (frame indexes of the capture), ``disconnect=I,..``
(close the connection after frame I), ``late=N`` (answer REST snapshots only after N more frames).
``--paper KEY_ENV:HMAC_ENV`` (binance): also a paper exchange for signed ``POST /api/v3/order`` (``paper.py``);
``--paper-files KEY_FILE:HMAC_FILE`` reads the two keys from files instead.
Demo feeding (binance): ``--map-price ETHUSDT:2064.73=2004x20`` plays a symbol's prices onto another price level
with its moves amplified (``replay.PriceMap``), ``--live-times`` stamps events with the stand-in's clock, and
``--loop`` plays the capture again, lap after lap, with growing ids (a disconnect between laps).
``--order-faults``: ``reject=N,..`` / ``cap=N:QTY,..`` / ``delay=N:SECONDS,..`` / ``drop=N,..`` (executed, answer
lost) for the N-th order received.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from runtime.errors import reraise_unwrapped

from .paper import OrderFaults, PaperExchange
from .replay import BinanceReplay, Faults, PriceMap
from .server import AdvancedStandin, BinanceStandin, CoinbaseStandin

KINDS = {"binance": BinanceStandin, "coinbase": CoinbaseStandin, "advanced": AdvancedStandin}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bridge"]:  # the stand-ins' sibling on the chain side
        from tools.devnet.bridge_standin import main as bridge_main

        return bridge_main(argv[1:])
    ap = argparse.ArgumentParser(prog="alphapulse standin", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=sorted([*KINDS, "bridge"]))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ws-port", type=int, default=0)
    ap.add_argument("--rest-port", type=int, default=0)
    ap.add_argument("--pace", type=float, default=0.01, help="seconds between replayed frames (0: as fast as read)")
    ap.add_argument("--faults", default="", help="drop=..;dup=..;swap=..;disconnect=..;late=N")
    ap.add_argument("--paper", metavar="KEY_ENV:HMAC_ENV", default="",
                    help="binance: accept signed orders (paper exchange) for the API key and HMAC signing key held "
                         "in these two environment variables")
    ap.add_argument("--paper-files", metavar="KEY_FILE:HMAC_FILE", default="",
                    help="binance: like --paper, the two keys read from these files")
    ap.add_argument("--map-price", action="append", default=[], metavar="SYMBOL:SOURCE=TARGET[xN]",
                    help="binance: show SYMBOL's prices as TARGET + N * (price - SOURCE) (repeatable)")
    ap.add_argument("--live-times", action="store_true", help="binance: event times from the stand-in's clock")
    ap.add_argument("--loop", action="store_true", help="binance: replay the capture again and again")
    ap.add_argument("--order-faults", default="", help="paper exchange: reject=N,..;cap=N:QTY,..;delay=N:S,..;drop=N,..")
    args = ap.parse_args(argv)
    extra: dict[str, Any] = {}
    binance_only = [f"--{name.replace('_', '-')}" for name in ("paper", "paper_files", "map_price", "live_times",
                                                                "loop", "order_faults") if getattr(args, name)]
    if binance_only and args.kind != "binance":
        ap.error(f"{', '.join(binance_only)}: for the binance stand-in only")
    try:
        if args.paper or args.paper_files:
            extra["paper"] = PaperExchange(_paper_keys(ap, args.paper, args.paper_files),
                                           faults=OrderFaults.parse(args.order_faults))
        faults = Faults.parse(args.faults)
        if args.kind == "binance":
            extra["replay"] = BinanceReplay(prices=[PriceMap.parse(m) for m in args.map_price],
                                            live_times=args.live_times)
    except ValueError as exc:
        ap.error(str(exc))
    standin = KINDS[args.kind](faults=faults, pace=args.pace, host=args.host, ws_port=args.ws_port,
                               rest_port=args.rest_port, loop=args.loop, **extra)

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


def _paper_keys(ap: argparse.ArgumentParser, envs: str, files: str) -> dict[str, str]:
    """The paper exchange's one API key -> signing key, read from the named variables or files (the
    gateway's own loader: the values never print)."""
    from execution.cex.gateway import ApiCredentials, CredentialError

    if envs and files:
        ap.error("give --paper or --paper-files, not both")
    first, _, second = (envs or files).partition(":")
    if not (first and second):
        ap.error("--paper/--paper-files: want two names separated by ':'")
    try:
        creds = (ApiCredentials.load(key_env=first, hmac_env=second) if envs
                 else ApiCredentials.load(key_file=first, hmac_file=second))
    except CredentialError as exc:
        ap.error(f"paper exchange: {exc}")
    return {creds.api_key.reveal(): creds.signing_key.reveal()}


if __name__ == "__main__":
    sys.exit(main())
