"""collectors.replay: recordings -> timed TLVs -> paced messages, and the collector CLI."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trio.testing

from collectors.evm.decode import TOPIC0_V3_SWAP, LogDecodeError
from collectors.replay import MessageSink, ReplayItem, ReplayStats, iter_replay, pace
from collectors.replay import cli as replay_cli
from collectors.replay.pools import MAINNET_USDC_WETH_V3, USDC_WETH_500, USDC_WETH_3000, parse_pool_spec
from collectors.replay.source import (
    RecordingError,
    address_from_filename,
    parse_timestamp,
    parse_topics,
    read_logs,
)
from protocol import FrameDecoder, LiquidityChange, Message, V3Swap, Venue, VenueKind
from protocol.header import FLAG_REPLAYED, Domain

DATA = Path(__file__).resolve().parents[1] / "data" / "uniswap-v3-usdc-weth-2024-01-05"
RAW_500 = DATA / "ethereum-0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640-2024-01-05.raw.csv"
RAW_3000 = DATA / "ethereum-0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8-2024-01-05.raw.csv"
N_TLVS = 6538 - 65 - 16  # every log except the 81 Collects


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- source


def test_source_helpers() -> None:
    assert address_from_filename(RAW_500) == "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"
    assert address_from_filename("no-address-here.csv") is None
    assert parse_timestamp("2024-01-05 00:00:23") == int(
        datetime(2024, 1, 5, 0, 0, 23, tzinfo=UTC).timestamp()
    )
    assert parse_timestamp("2024-01-05T00:00:23Z") == 1704412823
    assert parse_timestamp("1704412823") == 1704412823
    assert parse_timestamp("0x65974d17") == 0x65974D17
    with pytest.raises(RecordingError):
        parse_timestamp("yesterday")
    assert parse_topics("['0xab', '0xcd']") == ["0xab", "0xcd"] == parse_topics('["0xab", "0xcd"]')
    with pytest.raises(RecordingError):
        parse_topics("0xab")


def test_csv_rows_become_jsonrpc_logs() -> None:
    first = next(read_logs(RAW_500))
    assert first == {
        "address": "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640",
        "topics": [
            TOPIC0_V3_SWAP,
            "0x0000000000000000000000003fc91a3afd70395cd496c647d5a6cc9d4b2b7fad",
            "0x0000000000000000000000003fc91a3afd70395cd496c647d5a6cc9d4b2b7fad",
        ],
        "data": _csv_rows(RAW_500)[0]["data"],
        "blockNumber": hex(18937382),
        "transactionHash": "0x0bb5e0dc49ae0b5a1949beabadc64522dd5615415a168650a3b592a84ae5ee05",
        "transactionIndex": hex(33),
        "logIndex": hex(169),
        "blockTimestamp": hex(parse_timestamp("2024-01-05 00:00:23")),
        "removed": False,
    }


def test_csv_without_address_needs_one(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    path.write_text(RAW_500.read_text().split("\n", 2)[0] + "\n")
    with pytest.raises(RecordingError, match="no address"):
        list(read_logs(path))
    assert list(read_logs(path, address="0x" + "11" * 20)) == []
    path.write_text("block_number,data\n1,0x\n")
    with pytest.raises(RecordingError, match="missing column"):
        list(read_logs(path, address="0x" + "11" * 20))


def test_jsonl_recordings(tmp_path: Path) -> None:
    logs = list(read_logs(RAW_3000))[:5]
    path = tmp_path / "capture.jsonl"
    path.write_text("".join(json.dumps(log) + "\n" for log in logs))
    assert list(read_logs(path)) == logs
    path2 = tmp_path / "capture.json"
    path2.write_text(json.dumps(logs))
    assert list(read_logs(path2)) == logs


# --------------------------------------------------------------------------- iter_replay


def test_iter_replay_merges_both_pools_in_chain_order() -> None:
    stats = ReplayStats()
    items = list(iter_replay([RAW_3000, RAW_500], MAINNET_USDC_WETH_V3, stats=stats))
    assert len(items) == N_TLVS
    assert stats.as_dict() == {
        "logs": 6538,
        "items": N_TLVS,
        "skipped": 81,
        "malformed": 0,
        "published": 0,
        "untimed": 0,
        "out_of_order": 0,
    }
    assert all(isinstance(it, ReplayItem) and len(it.tlvs) == 1 for it in items)
    keys = [(it.tlvs[0].block_number, it.tlvs[0].log_index) for it in items]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    pools = {it.tlvs[0].pool for it in items}
    assert pools == {USDC_WETH_500, USDC_WETH_3000}
    assert {type(it.tlvs[0]) for it in items} == {V3Swap, LiquidityChange}

    # event times are the recorded block times; delays add up to the recorded span, 0 within a block
    rows = _csv_rows(RAW_500) + _csv_rows(RAW_3000)
    ts_of = {
        (int(r["block_number"]), int(r["log_index"])): parse_timestamp(r["block_timestamp"]) for r in rows
    }
    for it, key in zip(items, keys):
        assert it.event_time_ns == ts_of[key] * 10**9
    assert items[0].delay_ns == 0
    assert sum(it.delay_ns for it in items) == items[-1].event_time_ns - items[0].event_time_ns
    for prev, it in zip(items, items[1:]):
        if it.tlvs[0].block_number == prev.tlvs[0].block_number:
            assert it.delay_ns == 0
        assert it.delay_ns == it.event_time_ns - prev.event_time_ns


def _broken_copy(tmp_path: Path) -> Path:
    lines = RAW_3000.read_text().splitlines(keepends=True)
    row = next(csv.reader([lines[2]]))
    row[-1] = row[-1][:-64]  # one word short
    broken = tmp_path / RAW_3000.name
    with broken.open("w", newline="") as f:
        f.write(lines[0] + lines[1])
        csv.writer(f).writerow(row)
        f.writelines(lines[3:])
    return broken


def test_iter_replay_malformed_stops_or_is_skipped(tmp_path: Path) -> None:
    broken = _broken_copy(tmp_path)
    with pytest.raises(LogDecodeError, match="words"):
        list(iter_replay([broken], MAINNET_USDC_WETH_V3))
    seen: list[LogDecodeError] = []
    stats = ReplayStats()
    items = list(
        iter_replay(
            [broken], MAINNET_USDC_WETH_V3, skip_malformed=True, stats=stats, on_malformed=seen.append
        )
    )
    assert stats.malformed == 1 and len(seen) == 1 and len(items) == 304 - 16 - 1


def test_untimed_recordings_replay_without_delays(tmp_path: Path) -> None:
    logs = [{k: v for k, v in log.items() if k != "blockTimestamp"} for log in list(read_logs(RAW_3000))[:10]]
    path = tmp_path / "untimed.jsonl"
    path.write_text("".join(json.dumps(log) + "\n" for log in logs))
    stats = ReplayStats()
    items = list(iter_replay([path], MAINNET_USDC_WETH_V3, stats=stats))
    assert items and all(it.delay_ns == 0 and it.event_time_ns is None for it in items)
    assert stats.untimed == len(items)


# --------------------------------------------------------------------------- pace (trio shell)


def _items(n: int, gap_s: int) -> list[ReplayItem]:
    tlvs = [it.tlvs for it in iter_replay([RAW_3000], MAINNET_USDC_WETH_V3)][:n]
    t0 = 1_704_412_800 * 10**9
    return [ReplayItem(0 if i == 0 else gap_s * 10**9, t, t0 + i * gap_s * 10**9) for i, t in enumerate(tlvs)]


async def test_pace_follows_recorded_time_times_speed(autojump_clock: trio.testing.MockClock) -> None:
    sent: list[tuple[float, Message]] = []
    start = trio.current_time()
    items = _items(5, gap_s=12)
    sink = MessageSink(lambda m: sent.append((trio.current_time(), m)), source_id=7)
    n = await pace(items, sink.publish, speed=4.0, wall_clock_ns=lambda: 42)
    assert n == 5 and sink.last_source_seq == 5
    assert [round(t - start, 6) for t, _ in sent] == [0.0, 3.0, 6.0, 9.0, 12.0]
    for i, (_, msg) in enumerate(sent):
        assert msg.domain == 1 and msg.source_id == 7 and msg.source_seq == i + 1 and msg.flags == 0
        assert msg.tlvs == tuple(items[i].tlvs)
        assert msg.event_time_ns == items[i].event_time_ns and msg.receive_time_ns == 42


async def test_pace_as_fast_as_possible_never_sleeps(autojump_clock: trio.testing.MockClock) -> None:
    sent: list[float] = []
    received: list[Message] = []

    async def publish(tlvs: list, *, event_time_ns: int, receive_time_ns: int, flags: int = 0) -> int:
        sent.append(trio.current_time())
        received.append(
            Message(
                domain=1, tlvs=tlvs, event_time_ns=event_time_ns, receive_time_ns=receive_time_ns, flags=flags
            )
        )
        return len(sent)

    start = trio.current_time()
    untimed = [it._replace(event_time_ns=None) for it in _items(3, gap_s=3600)]
    stats = ReplayStats()
    await pace(untimed, publish, speed=None, flags=FLAG_REPLAYED, stats=stats, wall_clock_ns=lambda: 99)
    assert sent == [start] * 3 and stats.published == 3
    assert all(
        m.event_time_ns == 99 and m.receive_time_ns == 99 and m.flags == FLAG_REPLAYED for m in received
    )
    with pytest.raises(ValueError):
        await pace(untimed, publish, speed=0)


# --------------------------------------------------------------------------- CLI


def test_cli_dry_run_and_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_cli.main(["--logs", str(DATA), "--as-fast-as-possible", "--dry-run"]) == 0
    assert f"{N_TLVS} messages from 6538 logs" in capsys.readouterr().err

    out = tmp_path / "frames.bin"
    argv = [
        "--logs",
        str(RAW_500),
        str(RAW_3000),
        "--as-fast-as-possible",
        "--out",
        str(out),
        "--mark-replayed",
        "--source-id",
        "9",
    ]
    assert replay_cli.main(argv) == 0
    dec = FrameDecoder()
    dec.receive_data(out.read_bytes())
    msgs = list(dec)
    assert len(msgs) == N_TLVS and dec.buffered == 0
    assert [m.source_seq for m in msgs] == list(range(1, N_TLVS + 1))
    assert all(m.source_id == 9 and m.flags == FLAG_REPLAYED and m.domain == 1 for m in msgs)
    first = msgs[0]
    assert first.event_time_ns == parse_timestamp("2024-01-05 00:00:23") * 10**9
    assert first.tlvs[0].amount0 == -22686110 and first.tlvs[0].amount1 == 10**16


def test_cli_limit_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        replay_cli.main(["--logs", str(RAW_3000), "--as-fast-as-possible", "--dry-run", "--limit", "10"]) == 0
    )
    assert "10 messages" in capsys.readouterr().err
    assert replay_cli.main(["--logs", str(tmp_path / "missing.csv"), "--dry-run"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert replay_cli.main(["--logs", str(_broken_copy(tmp_path)), "--as-fast-as-possible", "--dry-run"]) == 1
    assert "malformed" in capsys.readouterr().err
    assert replay_cli.main(["--logs", str(RAW_3000), "--chain-id", "8453", "--dry-run"]) == 2
    with pytest.raises(SystemExit):
        replay_cli.main(["--logs", str(RAW_3000), "--speed", "2", "--as-fast-as-possible"])


def test_cli_without_a_relay_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("relays.client")
    sock = str(tmp_path / "nobody.sock")
    argv = ["--logs", str(RAW_3000), "--as-fast-as-possible", "--socket", sock, "--connect-timeout", "0.3"]
    assert replay_cli.main(argv) == 1
    assert f"no market-data relay answering at {sock}" in capsys.readouterr().err


def test_pool_specs() -> None:
    pool = parse_pool_spec(
        f"{'0x' + '12' * 20}:uniswap_v2:UNISWAP_V2:{'0x' + 'bb' * 20}:{'0x' + 'aa' * 20}", 1
    )
    assert (pool.venue, pool.kind, pool.token0.address) == (
        Venue.UNISWAP_V2,
        VenueKind.UNISWAP_V2,
        "0x" + "aa" * 20,
    )
    assert (
        parse_pool_spec(f"{'0x' + '12' * 20}:1000:1:{'0x' + 'bb' * 20}:{'0x' + 'aa' * 20}", 31337).venue
        == 1000
    )
    with pytest.raises(ValueError, match="unknown Venue"):
        parse_pool_spec(f"{'0x' + '12' * 20}:nope:1:{'0x' + 'bb' * 20}:{'0x' + 'aa' * 20}", 1)
    with pytest.raises(ValueError, match="expected"):
        parse_pool_spec("0x12", 1)
    assert replay_cli.pools_for(1, []) == list(MAINNET_USDC_WETH_V3)


async def test_replay_into_a_real_relay(tmp_path: Path) -> None:
    """The CLI's publishing path end to end: replay -> RelayProducer -> relay -> RelayConsumer."""
    server = pytest.importorskip("relays.server")
    client = pytest.importorskip("relays.client")
    sock = str(tmp_path / "md.sock")
    config = server.RelayConfig(
        domain=Domain.MARKET_DATA, socket_path=sock, data_dir=str(tmp_path / "journal"), fsync="off"
    )
    args = replay_cli.build_parser().parse_args(
        ["--logs", str(RAW_3000), "--as-fast-as-possible", "--socket", sock, "--source-id", "4242"]
    )
    expected = [it.tlvs[0] for it in iter_replay([RAW_3000], MAINNET_USDC_WETH_V3)]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, config)
            stats = await replay_cli.run(args, replay_cli.LogDecoder.from_pools(MAINNET_USDC_WETH_V3))
            assert stats.published == len(expected) == 304 - 16
            got: list[Message] = []
            async with client.RelayConsumer.connect("market_data", sock, from_seq=0) as consumer:
                async for msg in consumer:
                    got.append(msg)
                    if len(got) == len(expected):
                        break
            nursery.cancel_scope.cancel()
    assert [m.tlvs[0] for m in got] == expected
    assert [m.source_seq for m in got] == list(range(1, len(expected) + 1))
    assert all(m.source_id == 4242 and m.domain == 1 for m in got)
    assert got[0].event_time_ns == parse_timestamp("2024-01-05 00:33:23") * 10**9
    assert all(m.receive_time_ns >= m.event_time_ns for m in got)
