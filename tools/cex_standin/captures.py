"""Read the cryptofeed raw-data captures in ``tests/data/cex-ws-samples`` (see its README).

One record per line: ``wss://URL <-> TS`` (connection opened), ``wss://URL <- TS: json`` (a frame the
recorder sent), ``https://URL -> TS: json`` (a REST answer), ``TS: json`` (a frame received). ``TS`` is
the recording host's ``time.time()``; it is turned into integer nanoseconds exactly (from its decimal
text, not through a float).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "cex-ws-samples"
BINANCE = DATA / "binance_spot_ethusdt_btcusdt_dotusdt_2021-04-04.raw.txt.gz"
COINBASE = DATA / "coinbase_pro_10alts_level2_ticker_matches_2021-04-17.raw.txt.gz"
COINBASE_PRODUCTS = DATA / "coinbase_pro_rest_products_2021-04-17.raw.txt.gz"


@dataclass(frozen=True, slots=True)
class Record:
    kind: str  # "connect" | "sent" | "rest" | "recv"
    ts_ns: int
    text: str = ""  # the JSON text (empty for "connect")
    url: str = ""


def seconds_to_ns(text: str) -> int:
    whole, _, frac = text.strip().partition(".")
    return int(whole) * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0"))


def read(path: str | Path) -> Iterator[Record]:
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith(("wss://", "ws://")):
                if " <-> " in line:
                    url, ts = line.split(" <-> ", 1)
                    yield Record("connect", seconds_to_ns(ts), "", url)
                else:
                    url, rest = line.split(" <- ", 1)
                    ts, text = rest.split(": ", 1)
                    yield Record("sent", seconds_to_ns(ts), text, url)
            elif line.startswith(("https://", "http://")):
                url, rest = line.split(" -> ", 1)
                ts, text = rest.split(": ", 1)
                yield Record("rest", seconds_to_ns(ts), text, url)
            elif line.startswith("configuration: "):
                continue
            else:
                ts, text = line.split(": ", 1)
                yield Record("recv", seconds_to_ns(ts), text)
