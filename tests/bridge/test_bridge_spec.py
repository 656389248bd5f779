"""specs/relay.md ("Bridging to NATS JetStream") and the bridge code say the same: the header block
of a batch (worked example), the batch defaults, and the message-id form."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.process import DEFAULT_BATCH_BYTES, DEFAULT_MAX_INFLIGHT, build_parser
from protocol.header import Domain
from relays.core.nats import batch_span, msg_id, parse_headers, publish_headers

SPEC = Path(__file__).resolve().parents[2] / "specs" / "relay.md"


def _section() -> str:
    text = SPEC.read_text(encoding="utf-8")
    return text.split("## Bridging to NATS JetStream", 1)[1].split("\n## ", 1)[0]


def test_the_worked_example_is_what_the_code_sends() -> None:
    sec = _section()
    m = re.search(r"frames (\d+)\.\.(\d+) of a market-data relay in\s+epoch (\d+), published after stream "
                  r"message (\d+).*?```\n(NATS/1.0\n.*?)```", sec, re.S)
    assert m, "the worked example is missing from specs/relay.md"
    first, last, epoch, after = (int(x) for x in m.groups()[:4])
    block = m[5].replace("\n", "\r\n") + "\r\n"
    assert publish_headers(Domain.MARKET_DATA, epoch, first, after, last) == block.encode()
    assert parse_headers(block.encode())["Nats-Msg-Id"] == msg_id(Domain.MARKET_DATA, epoch, first, last)


def test_the_documented_defaults_are_the_code_defaults() -> None:
    sec = _section()
    inflight = re.search(r"`--max-inflight` \((\d+)\)", sec)
    batch = re.search(r"`--batch-bytes` \((\d+);", sec)
    assert inflight and int(inflight[1]) == DEFAULT_MAX_INFLIGHT
    assert batch and int(batch[1]) == DEFAULT_BATCH_BYTES
    args = build_parser().parse_args(["out", "--domain", "market_data", "--nats", "nats://127.0.0.1:4222"])
    assert (args.max_inflight, args.batch_bytes) == (DEFAULT_MAX_INFLIGHT, DEFAULT_BATCH_BYTES)


def test_the_documented_message_id_forms() -> None:
    sec = _section()
    assert re.search(r"`Nats-Msg-Id:\s+<domain>:<epoch>:<first D>-<last D>`", sec)
    assert "`<domain>:<epoch>:<D>` for one frame" in sec
    assert msg_id(3, 1, 5, 9) == "3:1:5-9" and msg_id(3, 1, 5) == "3:1:5"


def test_a_single_frame_message_is_that_frame() -> None:
    """'a message of one frame is exactly that frame': one-frame streams read the same way."""
    from relay_testkit import frame

    f = bytearray(frame(7))
    f[8:16] = (7).to_bytes(8, "little")
    assert batch_span(bytes(f)) == (7, 7)
