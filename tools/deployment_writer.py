"""Writing a deployment file and the component configs it names: documents as data, TOML by tomli-w.

``tools/deployment.py`` reads a deployment file (its docstring is the format) and each component's
``config.py`` reads its own file; this module is the one place that writes them, for the demo, the
replay demo, the end-to-end benchmark and the tests. A caller builds plain documents (dicts and
lists, the shapes ``tomllib`` returns) with the helpers below, and :func:`write_toml` serialises
them with tomli-w: strings are escaped (a path with a quote or a backslash stays one string), keys
are quoted where TOML needs it, and nothing is spliced into TOML text by hand.

* :func:`deployment_doc` and :func:`process`: the deployment file (a process is the loader's own
  ``tools.deployment.ProcessEntry``, written without the fields left at their defaults);
* :func:`relays_table`: the ``[relays]`` table every component config shares (one socket per domain);
* :func:`strategy_doc`: a strategy config trading from one chain's gas token;
* :func:`assets_doc`: the ``[[assets]]`` section (``runtime/assets.py``) of a multi-chain devnet, one
  asset per token symbol that every chain deploys;
* :func:`rebalancer_doc`: the rebalancer's config for devnet chains (``execution/rebalance/config.py``):
  each chain's node, AlphaPulseArb and bridge, one keystore signing on every chain, floors and targets
  per (token symbol, chain);
* :func:`write_toml`: any document to a file.

The builders leave out what the caller leaves out, so the loader's defaults apply exactly as they
would to a hand-written file. They do not validate: the loaders do, and a test may well need to
write a file they refuse.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import tomli_w

from chain.deployment import ChainDeployment
from runtime.paths import socket_path
from tools.deployment import DOMAINS, ProcessEntry


def _plain(value: Any) -> Any:
    """A document with paths as strings, tuples as lists, every key a string (TOML keys are) and a
    struct as the table of its fields that differ from their defaults."""
    if isinstance(value, msgspec.Struct):
        value = {f.name: getattr(value, f.name) for f in msgspec.structs.fields(value)
                 if not _is_default(f, getattr(value, f.name))}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _is_default(f: msgspec.structs.FieldInfo, value: Any) -> bool:
    if f.default is not msgspec.NODEFAULT:
        return bool(value == f.default)
    return f.default_factory is not msgspec.NODEFAULT and value == f.default_factory()


def dumps(doc: Mapping[str, Any]) -> str:
    """``doc`` as TOML text."""
    return tomli_w.dumps(_plain(doc))


def write_toml(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` as TOML to ``path`` (parents created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(doc))
    return out


def relays_table(run_dir: str | os.PathLike[str], domains: Iterable[str] = DOMAINS) -> dict[str, str]:
    """A component's ``[relays]`` table: each domain's socket under ``run_dir``."""
    return {d: str(socket_path(d, run_dir)) for d in domains}


def process(name: str, args: Iterable[str | os.PathLike[str]], *, after: Iterable[str] = (),
            ready_file: str | os.PathLike[str] = "", ready_socket: str | os.PathLike[str] = "", ready_log: str = "",
            oneshot: bool = False, env: Mapping[str, str] | None = None, nice: int | None = None) -> ProcessEntry:
    """One ``[[process]]`` table: an ``alphapulse`` subcommand and what it waits for; ``nice`` None leaves its
    kind's default niceness (``tools.deployment.NICE_BY_KIND``)."""
    return ProcessEntry(name=name, args=tuple(os.fspath(a) for a in args), after=tuple(after),
                        ready_file=os.fspath(ready_file), ready_socket=os.fspath(ready_socket), ready_log=ready_log,
                        oneshot=oneshot,
                        env=dict(env or {}), nice=nice)


def deployment_doc(*, run_dir: str | os.PathLike[str], name: str = "", data_dir: str | os.PathLike[str] = "",
                   log_dir: str | os.PathLike[str] = "", user: str = "", domains: Iterable[str] | None = None,
                   fsync: str = "", relays_nice: int | None = None,
                   processes: Iterable[ProcessEntry] = ()) -> dict[str, Any]:
    """A deployment file's document; an empty argument is left out (the loader's default applies);
    ``relays_nice``: the relay daemons' niceness (``[relays] nice``)."""
    deployment = {"name": name, "run_dir": run_dir, "data_dir": data_dir, "log_dir": log_dir, "user": user}
    doc: dict[str, Any] = {"deployment": {k: v for k, v in deployment.items() if v}}
    relays: dict[str, Any] = {}
    if domains is not None:
        relays["domains"] = list(domains)
    if fsync:
        relays["fsync"] = fsync
    if relays_nice is not None:
        relays["nice"] = relays_nice
    if relays:
        doc["relays"] = relays
    procs = list(processes)
    if procs:
        doc["process"] = procs
    return doc


def strategy_doc(*, chain_id: int, gas_token: str, min_net_profit: int | None = None,
                 relays: Mapping[str, str] | None = None, economics: Mapping[str, Any] | None = None,
                 kinds: Sequence[str] | None = None, **strategy: Any) -> dict[str, Any]:
    """A strategy config (``strategy/config.py``) that starts and ends its cycles in ``gas_token`` on one
    chain; ``strategy`` is the ``[strategy]`` table (name, strategy_id, source_id, max_hops, ...);
    ``kinds`` the pool kinds it trades (``[[chains]] kinds``; default every kind)."""
    chain: dict[str, Any] = {"chain_id": chain_id, "gas_token": gas_token, "base_tokens": [gas_token]}
    if min_net_profit is not None:
        chain["min_net_profit"] = {gas_token: min_net_profit}
    if kinds is not None:
        chain["kinds"] = list(kinds)
    doc: dict[str, Any] = {"strategy": strategy}
    if economics:
        doc["economics"] = dict(economics)
    doc["chains"] = [chain]
    if relays:
        doc["relays"] = dict(relays)
    return doc


def assets_doc(chains: Iterable[ChainDeployment]) -> dict[str, Any]:
    """``[[assets]]`` for devnet chains: the tokens of one symbol on the chains are one asset (the
    devnet deploys the same tokens on every chain); a symbol some chain lacks is left out."""
    chains = list(chains)
    symbols = [t.symbol for t in chains[0].tokens] if chains else []
    assets = []
    for symbol in symbols:
        try:
            tokens = [{"chain_id": c.chain_id, "address": c.token(symbol).address} for c in chains]
        except KeyError:
            continue
        assets.append({"name": symbol, "tokens": tokens})
    return {"assets": assets}


def rebalancer_doc(chains: Iterable[ChainDeployment], *, contracts: Mapping[int, str],
                   targets: Mapping[tuple[str, int], tuple[int, int]], state_db: str | os.PathLike[str],
                   execution_socket: str | os.PathLike[str] = "", **settings: Any) -> dict[str, Any]:
    """The rebalancer's config for devnet ``chains`` (each with its bridge stand-in): ``contracts`` maps a
    chain id to its AlphaPulseArb, ``targets`` maps (token symbol, chain id) to (floor, target) in base
    units; ``settings`` go to ``[rebalancer]`` as given (``poll_s``, ``bridge_fee_bps``, ...). The
    ``[[assets]]`` are the targets' symbols (:func:`assets_doc`). No keystore: the executor signs the owner's
    transactions for it (``specs/rebalance.md``, "One signer per account")."""
    chains = list(chains)
    symbols = {symbol for symbol, _ in targets}
    doc: dict[str, Any] = {
        "rebalancer": {"state_db": str(state_db), **settings},
        "chains": [{"chain_id": c.chain_id, "rpc_url": c.rpc_url, "contract": contracts[c.chain_id],
                    "bridge": c.bridge.address if c.bridge is not None else ""} for c in chains],
        "assets": [a for a in assets_doc(chains)["assets"] if a["name"] in symbols],
        "targets": [{"asset": symbol, "chain_id": cid, "floor": floor, "target": target}
                    for (symbol, cid), (floor, target) in targets.items()],
    }
    if execution_socket:
        doc["relays"] = {"execution": str(execution_socket)}
    return doc
