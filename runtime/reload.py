"""Configuration reload on SIGHUP: the parameters that can change safely, and nothing else.

A process that supports it builds one :class:`ConfigReload` naming its file, its loader and the
keys it can change while running, loads its configuration through it, attaches the function that
installs a new configuration once its component exists, and hands it to ``ProcessMain.run``::

    RELOADABLE = ("strategy.confidence_bps", "economics", "chains[*].min_net_profit")
    reload = ConfigReload("strategy", args.config, load_config, RELOADABLE)

    def prepare() -> Work:
        config = reload.load_initial()
        return lambda pm: run(config, reload=reload, metrics=pm)   # run() calls reload.attach(engine.reconfigure)

    return proc.run(args, prepare, reload=reload)

On SIGHUP (``runtime.process.serve_process`` receives it in every process) :meth:`ConfigReload.reload`

1. reads and validates the file with the same loader as at start-up; an invalid file is refused;
2. compares it key by key with the running configuration (:func:`config_diff`, paths as written
   in the file: ``limits.max_gas_price_wei``, ``chains[0].min_net_profit.0x…``);
3. refuses the whole file if any changed key is not reloadable, naming those keys (never their
   values: a URL may carry an API key) and the keys that are;
4. otherwise calls the attached function with the new configuration (it may still refuse by
   raising :class:`~runtime.config.ConfigError`), then logs every change as ``old -> new``.

Whatever is refused leaves the process running on its old configuration, with the reason logged.
A key is reloadable when it equals or lies under a declared pattern; ``[*]`` matches any index.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Generic, TypeVar

import msgspec

from .config import ConfigError, _is_table, join_path
from .errors import one_line

log = logging.getLogger("runtime.reload")

C = TypeVar("C")

__all__ = ["ABSENT", "Change", "ConfigReload", "config_diff", "is_reloadable"]


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


#: the old or new side of a key that exists on one side only
ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    if isinstance(value, msgspec.Struct):
        return msgspec.json.encode(msgspec.to_builtins(value, str_keys=True)).decode()
    return repr(value)


def _key(key: Any) -> str:
    """A mapping key as the file writes it (token ids by their address)."""
    if isinstance(key, int) and key >> 160:  # a TokenId: chain id above the 20-byte address
        return f"0x{key & ((1 << 160) - 1):040x}"
    return str(key)


def config_diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every key whose value differs between two configurations, as :class:`Change` s in field order.

    Structs are compared field by field, mappings key by key, arrays index by index when their
    lengths agree (else the whole array is one change). At the top level a component's settings
    kept in its own table (``Config.own_table``) are named under it (``executor.mode``)."""
    if type(old) is not type(new) and not (_is_plain(old) and _is_plain(new)):
        return [Change(path, old, new)]
    if isinstance(old, msgspec.Struct):
        out: list[Change] = []
        own = getattr(type(old), "own_table", None) if not path else None
        hints = _hints(type(old)) if own else {}
        for f in msgspec.structs.fields(old):
            name = f.encode_name
            if own and not _is_table(hints[f.name]):
                name = f"{own}.{name}"
            out += config_diff(getattr(old, f.name), getattr(new, f.name), join_path(path, name))
        return out
    if isinstance(old, Mapping):
        out = []
        for k in sorted(set(old) | set(new), key=_key):
            out += config_diff(old.get(k, ABSENT), new.get(k, ABSENT), join_path(path, _key(k)))
        return out
    if isinstance(old, tuple | list):
        if len(old) != len(new):
            return [Change(path, old, new)]
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += config_diff(a, b, join_path(path, i))
        return out
    return [] if old == new else [Change(path, old, new)]


def _is_plain(v: Any) -> bool:
    return isinstance(v, int | float | str) or v is None or v is ABSENT


def _hints(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls, include_extras=True)


_INDEX = re.compile(r"\[\d+\]")


def is_reloadable(path: str, patterns: Iterable[str]) -> bool:
    """True when ``path`` equals or lies under one of ``patterns`` (``[*]`` matches any index)."""
    general = _INDEX.sub("[*]", path)
    return any(general == p or general.startswith((p + ".", p + "[")) for p in patterns)


class ConfigReload(Generic[C]):
    """One process's reload contract: its file, its loader, its reloadable keys (see the module doc)."""

    def __init__(self, process: str, path: str | PathLike[str], load: Callable[[str], C],
                 reloadable: Iterable[str]) -> None:
        self.process = process
        self.path = str(path)
        self._load = load
        self.reloadable = tuple(reloadable)
        self.current: C | None = None
        self._apply: Callable[[C], None] | None = None

    def load_initial(self) -> C:
        """Load the configuration the process starts with (errors propagate: the process does not start)."""
        self.current = self._load(self.path)
        return self.current

    def attach(self, apply: Callable[[C], None]) -> None:
        """``apply(new)`` installs a new configuration in the running component, completely or not
        at all (raising ConfigError to refuse it). Until something is attached, reloads are refused."""
        self._apply = apply

    def reload(self) -> str:
        """Reload the file now; ``"applied"``, ``"unchanged"`` or ``"refused"`` (each logged)."""
        where = f"{self.process}: reload of {self.path}"
        try:
            new = self._load(self.path)
        except (ConfigError, OSError, ValueError) as exc:
            log.warning("%s refused: %s; keeping the running configuration", where, one_line(exc))
            return "refused"
        assert self.current is not None, "load_initial() first"
        changes = config_diff(self.current, new)
        if not changes:
            log.info("%s: nothing changed", where)
            return "unchanged"
        refused = [c.path for c in changes if not is_reloadable(c.path, self.reloadable)]
        if refused:
            log.warning("%s refused: %s cannot change while the process runs (restart it to apply); reloadable: %s; "
                      "keeping the running configuration", where, ", ".join(refused),
                      ", ".join(self.reloadable) or "nothing")
            return "refused"
        if self._apply is None:
            log.warning("%s refused: the process is still starting; send SIGHUP again once it is ready", where)
            return "refused"
        try:
            self._apply(new)
        except ConfigError as exc:
            log.warning("%s refused: %s; keeping the running configuration", where, one_line(exc))
            return "refused"
        self.current = new
        for c in changes:
            log.info("%s: %s", where, c.describe())
        log.info("%s: %d change(s) applied", where, len(changes))
        return "applied"
