"""Deployment files: precise errors before anything starts."""

from __future__ import annotations

import pytest

from runtime.config import ConfigError
from tools.deployment import parse_deployment


def test_defaults_give_three_relays_first() -> None:
    dep = parse_deployment({"deployment": {"run_dir": "/tmp/x"}})
    assert [p.name for p in dep.processes] == ["relay-market_data", "relay-signal", "relay-execution"]
    assert dep.processes[0].ready_socket == "/tmp/x/market_data.sock"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"deployment": {"nmae": "x"}}, "deployment.nmae: unknown key"),
        ({"relays": {"fsync": "sometimes"}}, "relays.fsync"),
        ({"relays": {"domains": ["orders"]}}, "unknown domain <value>"),
        ({"process": [{"name": "a"}]}, "process[0].args: missing"),
        ({"process": [{"name": "a", "args": "strategy"}]}, "process[0].args: must be an array, got str"),
        ({"process": [{"name": "a", "args": ["x"], "after": ["nope"]}]}, "unknown process 'nope'"),
        ({"process": [{"name": "a", "args": ["x"], "after": ["b"]}, {"name": "b", "args": ["y"], "after": ["a"]}]},
         "dependency cycle"),
        ({"process": [{"name": "a", "args": ["x"]}, {"name": "a", "args": ["y"]}]}, "unique"),
        ({"process": [{"name": "a", "args": ["x", "--key", "0x" + "ab" * 32]}]}, "plaintext private key"),
        ({"process": [{"name": "a", "args": ["x"], "ready_log": "up"}]}, "process[0].ready_log: process 'a': ready_log "
                                                                         "needs a log file"),
    ],
)
def test_errors_name_the_key(doc: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_deployment(doc)
    assert fragment in str(err.value)
