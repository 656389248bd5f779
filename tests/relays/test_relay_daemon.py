"""alphapulse relay (relays.daemon): a corrupt journal file is one line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from relays.daemon import EXIT_CONFIG, main


def _run(d: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--domain", "market_data", "--socket", str(d / "md.sock"), "--data-dir", str(d / "data"),
                 "--fsync", "off"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("text", ["garbage\n", "-3\n", "\xff\xfe"])
def test_a_corrupt_epoch_file_is_one_line_not_a_traceback(short_dir: Path, text: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (short_dir / "data").mkdir(mode=0o700)
    (short_dir / "data" / "epoch").write_text(text, encoding="latin-1")
    code, err = _run(short_dir, capsys)
    assert code == EXIT_CONFIG
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "epoch" in ln]
    assert len(lines) == 1 and "is corrupt" in lines[0] and str(short_dir / "data" / "epoch") in lines[0]


@pytest.mark.parametrize("text", ["{not json", '{"last_source_seq": [1, 2]}', '{"other": 1}',
                                  '{"last_source_seq": {"x": 1}}'])
def test_a_corrupt_sidecar_file_is_one_line_not_a_traceback(short_dir: Path, text: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    journal = short_dir / "data" / "journal"
    journal.mkdir(parents=True, mode=0o700)
    (journal / f"{1:020d}.seg").write_bytes(b"")
    (journal / f"{1:020d}.src").write_text(text)
    code, err = _run(short_dir, capsys)
    assert code == EXIT_CONFIG and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ".src" in ln]
    assert len(lines) == 1 and "is corrupt" in lines[0]
