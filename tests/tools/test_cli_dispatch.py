"""``alphapulse``: one dispatcher for the top-level commands and the groups under them (collector, bench)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import cli

RAW_3000 = (Path(__file__).resolve().parents[1] / "data" / "uniswap-v3-usdc-weth-2024-01-05"
            / "ethereum-0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8-2024-01-05.raw.csv")


def test_top_level_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: alphapulse <command>") and "collector" in out and "systemd" in out
    assert cli.main(["nope"]) == 2
    assert "alphapulse: unknown command 'nope'" in capsys.readouterr().err


def test_collector_dispatcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["collector", "--help"]) == 0
    assert "replay" in capsys.readouterr().out
    assert cli.main(["collector"]) == 2  # a group without a command is a usage error
    assert "usage: alphapulse collector <command>" in capsys.readouterr().out
    assert cli.main(["collector", "nope"]) == 2
    assert "alphapulse collector: unknown command 'nope'" in capsys.readouterr().err
    assert cli.main(["collector", "replay", "--logs", str(RAW_3000), "--dry-run", "--as-fast-as-possible"]) == 0
    try:
        import collectors.evm.process  # noqa: F401
    except ModuleNotFoundError:
        assert cli.main(["collector", "evm"]) == 2
        assert "'evm' is not available" in capsys.readouterr().err


def test_bench_group_lists_every_benchmark_module(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    bench_dir = Path(cli.__file__).parent / "bench"
    for name, command in cli.BENCHMARKS.commands.items():
        assert name in out
        assert isinstance(command, cli.Command) and command.target == f"tools.bench.{name}:main"
        assert (bench_dir / f"{name}.py").is_file()
    assert cli.main(["bench", "nope"]) == 2


def test_a_missing_module_is_a_clear_error_but_a_missing_dependency_inside_one_propagates(
        capsys: pytest.CaptureFixture[str]) -> None:
    commands = {"gone": cli.Command("tools.no_such_module:main", "not built"),
                "broken": cli.Command("tools.cli:missing", "no such function")}
    assert cli.dispatch("alphapulse", commands, ["gone"]) == 2
    assert "'gone' is not available in this build" in capsys.readouterr().err
    with pytest.raises(AttributeError):
        cli.dispatch("alphapulse", commands, ["broken"])


def test_relay_cli_is_an_alphapulse_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``./run relay-cli ...`` runs ``alphapulse relay-cli ...``: it must be a command, not 'unknown'."""
    assert cli.main(["relay-cli", "--help"]) == 0
    out = capsys.readouterr().out
    assert "tail" in out and "check" in out
    assert cli.main(["relay-cli", "check", "--domain", "nope", "--from", "1", "--count", "1"]) == 2
    assert "unknown command" not in capsys.readouterr().err


def test_report_defaults_to_the_latest_demo_runs_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import tools.report_cli as report_cli
    from portfolio.books import open_db
    from tools.demo import latest_demo_db

    demo = tmp_path / "demo"
    for run in ("20240101-000000", "20240102-000000"):
        (demo / run / "data").mkdir(parents=True)
        open_db(demo / run / "data" / "portfolio.sqlite").close()
    (demo / "20240103-000000" / "data").mkdir(parents=True)  # a run that died before the books existed
    (demo / "replay-20240104-000000" / "data").mkdir(parents=True)  # replay runs have no books
    newest = demo / "20240102-000000" / "data" / "portfolio.sqlite"
    assert latest_demo_db(demo) == newest
    monkeypatch.setenv("ALPHAPULSE_RUN_DIR", str(tmp_path / "no-run"))  # no books at the default path
    monkeypatch.setattr(report_cli, "latest_demo_db", lambda: newest)
    assert cli.main(["report"]) == 0
    captured = capsys.readouterr()
    assert f"the latest demo run's database {newest}" in captured.err and "funnel:" in captured.out


def test_every_benchmark_prints_the_load_average_before_and_after(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.bench.codec as codec

    ran: list[list[str]] = []
    monkeypatch.setattr(codec, "main", lambda argv: ran.append(argv) or 0)
    assert all(c.around == "tools.bench:with_load_average" for c in cli.BENCHMARKS.commands.values())
    assert cli.main(["bench", "codec", "-n", "10"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert ran == [["-n", "10"]]
    assert err[0].startswith("bench codec: load average before: ") and len(err[0].split(": ")[-1].split()) == 3
    assert err[-1].startswith("bench codec: load average after: ")


def test_a_bad_file_no_command_caught_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher's net: a ``BadFile`` that left a command is its one line, never a traceback."""
    import types

    from runtime.errors import BadFile

    def main(argv: list[str]) -> int:
        raise BadFile("/data/x.sqlite is not a usable SQLite database (file is not a database)")

    monkeypatch.setitem(__import__("sys").modules, "tools._bad_file_cmd", types.SimpleNamespace(main=main))
    code = cli.dispatch("alphapulse", {"x": cli.Command("tools._bad_file_cmd:main", "raises")}, ["x"])
    err = capsys.readouterr().err
    assert code == 2 and err == ("alphapulse: command 'x': /data/x.sqlite is not a usable SQLite database "
                                 "(file is not a database)\n")
