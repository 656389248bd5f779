"""A consumer process for the fault tests: writes what it receives to a file.

    python tests/relays/_proc_consumer.py --socket S --domain market_data --out FILE
        [--expect N] [--stall-after N] [--types 250,...]

One line per message: ``domain_seq source_id source_seq counter``. The file is
also the consumer's persisted position: on start it drops a torn last line and
resumes from the last complete one (what a real application persisting its
position atomically with its output would do). When the loadgen counter
``--expect`` has been seen, it writes its counters to ``FILE.done`` and exits.
``--stall-after N`` stops reading after N messages (a stuck consumer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import BinaryIO

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from relays.client import RelayConsumer  # noqa: E402
from tools.loadgen import read_counter  # noqa: E402


def resume_point(path: Path) -> int:
    if not path.exists():
        return 0
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut != len(data):
        with open(path, "r+b") as f:
            f.truncate(cut)
    if cut == 0:
        return 0
    last = data[: cut - 1].rsplit(b"\n", 1)[-1]
    return int(last.split()[0])


def write_done(out: Path, counters: dict[str, int]) -> None:
    Path(str(out) + ".done").write_text(json.dumps(counters))


async def run(args: argparse.Namespace, f: BinaryIO, from_seq: int) -> int:
    out = Path(args.out)
    types = {int(t) for t in args.types.split(",")} if args.types else None
    seen = 0
    async with RelayConsumer.connect(args.domain, args.socket, from_seq=from_seq, types=types, raw=True,
                                     name=args.name) as c:
        async for batch in c.batches():
            lines = []
            done = False
            for fr in batch:
                dseq = int.from_bytes(fr[8:16], "little")
                sseq = int.from_bytes(fr[24:32], "little")
                sid = int.from_bytes(fr[48:52], "little")
                counter = read_counter(memoryview(fr)[52:])
                lines.append(f"{dseq} {sid} {sseq} {counter}\n")
                if args.expect and counter >= args.expect:
                    done = True
            f.write("".join(lines).encode())
            f.flush()
            seen += len(batch)
            if args.stall_after and seen >= args.stall_after:
                print("stalling", file=sys.stderr, flush=True)
                await trio.sleep_forever()
            if done:
                write_done(out, c.counters)
                return 0
    return 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--domain", default="market_data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--stall-after", type=int, default=0)
    ap.add_argument("--types", default="")
    ap.add_argument("--name", default=f"proc-consumer-{os.getpid()}")
    args = ap.parse_args()
    from runtime.logging import setup_logging

    setup_logging("INFO")
    last = resume_point(Path(args.out))
    with open(args.out, "ab") as f:
        return trio.run(run, args, f, last + 1 if last else 0)


if __name__ == "__main__":
    sys.exit(main())
