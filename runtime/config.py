"""The one strict configuration base: frozen keyword-only msgspec Structs decoded from TOML.

Every component's ``config.py`` declares its tables as subclasses of :class:`Config` and loads them
with :func:`load` (a file) or :func:`decode` (an already parsed document). A typo is an error at
start-up, never a silent default:

* unknown keys are refused, naming the key path and the keys allowed there
  (``strategy.toml: gas.v4_hop: unknown key 'v4_hop' (allowed: base, curve_hop, v2_hop, v3_hop)``);
* types are strict: ``int`` refuses a float (a float wei amount has already lost precision) and a
  boolean; ``float`` accepts an integer; a wrong type is named without echoing the value
  (``economics.slippage_bps: must be an integer, got float``);
* numeric bounds are declared on the field (``Annotated[int, Meta(ge=2, le=6)]``) and reported as
  ``strategy.max_hops: out of range [2, 6], got 9``;
* a plaintext private key anywhere in the document is refused first (:mod:`runtime.secrets`);
* a file that configures nothing is refused (:func:`load_toml`): an empty or comment-only file, or
  one whose every table is empty (``[risk]`` and ``[alerts]`` with no key in them): a component
  started on it would run on defaults alone, which is never what the operator wrote it for. What
  is *meaningless* beyond that depends on the component and is refused by its own loader, with the
  key that lacks: a strategy with no ``[[chains]]`` (nothing to watch or price) or with a
  ``min_net_profit`` for a token that is not one of its chain's ``base_tokens`` (it never applies);
  a risk configuration with no breaker, or a breaker table that watches nothing (``[daily_loss]``
  or ``[trade_size]`` with no token, ``[gas_price]`` with no ceiling, ``[stale_data]`` with no venue
  and no default); a portfolio ``[chains."N"]`` that names neither token. Tables a component does not
  know are unknown keys, so a file of unknown sections only is refused like a typo;
* ``[relays]`` naming one socket for two domains is refused (each relay is its own daemon);
* checks that involve several fields live in ``__post_init__`` and raise :class:`ConfigError` with a
  path relative to that table; the decoder prefixes where the table is.

There is one error class, :class:`ConfigError` (a ``ValueError``), whose message reads
``<file>: <key path>: <what is wrong>`` and which keeps ``file``, ``path`` and ``message`` apart for
callers. Key paths are dotted, arrays are indexed from 0: ``chain[0].endpoints[1].ws``.

msgspec does the decoding (the pattern nautilus_trader uses for its configs): it validates types,
required fields and bounds in C; this module only turns its ``$.a.b[0]``-style errors into the
messages above, recovering the dict keys msgspec elides as ``[...]``.

:class:`RelaysConfig` is the ``[relays]`` table every component shares: one socket per relay domain,
empty meaning the default ``<run dir>/<domain>.sock`` of :mod:`runtime.paths`.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from msgspec import Meta

from protocol.header import Domain

from .paths import check_socket_path, parse_domain, socket_path

__all__ = [
    "Config", "ConfigError", "Meta", "RelaysConfig", "U16", "U32", "NonNegative", "Positive",
    "decode", "join_path", "load", "load_toml", "parse_toml",
]

T = TypeVar("T")

#: common bounds, declared on fields: ``source_id: U32 = 20``
U16 = typing.Annotated[int, Meta(ge=0, le=0xFFFF)]
U32 = typing.Annotated[int, Meta(ge=0, le=0xFFFF_FFFF)]
NonNegative = typing.Annotated[int, Meta(ge=0)]
Positive = typing.Annotated[int, Meta(ge=1)]


class ConfigError(ValueError):
    """A configuration is invalid. ``str()`` is ``"<file>: <path>: <message>"`` (empty parts left out)."""

    def __init__(self, message: str, *, path: str = "", file: str | PathLike[str] = "") -> None:
        self.message = message
        self.path = path
        self.file = str(file)
        super().__init__(": ".join(p for p in (self.file, path, message) if p))

    def within(self, path: str = "", *, file: str | PathLike[str] = "") -> ConfigError:
        """The same error located under ``path`` (a prefix) and in ``file`` (unless it names one)."""
        return ConfigError(self.message, path=join_path(path, self.path), file=self.file or str(file))


def join_path(prefix: str, key: str | int) -> str:
    """``("chain[0]", "pools")`` -> ``chain[0].pools``; ``("chain", 0)`` -> ``chain[0]``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not prefix or not key:
        return prefix or key
    return prefix + key if key.startswith("[") else f"{prefix}.{key}"


@typing.dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(msgspec.field,))
class _ConfigMeta(msgspec.StructMeta):
    # msgspec's kw_only applies to the fields a class declares itself, so every subclass gets it here
    # (and the dataclass_transform above tells type checkers that every Config is frozen, keyword-only).
    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kw: Any) -> Any:
        kw.setdefault("kw_only", True)
        return super().__new__(mcls, name, bases, namespace, **kw)


class Config(msgspec.Struct, metaclass=_ConfigMeta, frozen=True, forbid_unknown_fields=True):
    """Base of every configuration table: frozen, keyword-only, unknown keys refused.

    A component's top-level class may keep its own settings in a table of its name: with
    ``own_table: ClassVar[str] = "executor"`` every field that is not itself a table (a Config, or
    an array of them) is read from ``[executor]``, and the other tables sit beside it.
    """


class RelaysConfig(Config):
    """``[relays]``: the socket of each domain's relay; empty = ``<run dir>/<domain>.sock``."""

    market_data: str = ""
    signal: str = ""
    execution: str = ""

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name in ("market_data", "signal", "execution"):
            value = getattr(self, name)
            if value:
                try:
                    check_socket_path(value)
                except ValueError as exc:
                    raise ConfigError(str(exc), path=name) from None
                if value in seen:  # one daemon per domain: a producer there would be refused, a consumer starve
                    raise ConfigError(f"the same socket as {seen[value]}; each domain has its own relay", path=name)
                seen[value] = name

    def socket(self, domain: str | int | Domain) -> str:
        """The configured socket of ``domain``, or its default under the run directory."""
        dom = parse_domain(domain)
        return getattr(self, dom.name.lower()) or str(socket_path(dom))


# --- loading -------------------------------------------------------------------------------------


def load_toml(path: str | PathLike[str]) -> dict[str, Any]:
    """Read a TOML file; unreadable or malformed files are a :class:`ConfigError` naming the file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode()
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or exc})", file=p) from None
    except UnicodeDecodeError:
        raise ConfigError("invalid TOML: not UTF-8", file=p) from None
    doc = parse_toml(text, file=p)
    if not doc:  # a component started on an empty (or all-comment) file would run on defaults alone
        raise ConfigError("the file configures nothing (it is empty); see the component's example "
                          "configuration", file=p)
    if not _sets_anything(doc):  # only empty tables: the same thing, spelled with headers
        empty = ", ".join(f"[{k}]" for k in doc)
        raise ConfigError(f"the file configures nothing: {empty} {'has' if len(doc) == 1 else 'have'} no key "
                          f"with a value; see the component's example configuration", path=next(iter(doc)), file=p)
    return doc


def _sets_anything(doc: Any) -> bool:
    """Whether a parsed document holds at least one value (not only empty tables and arrays)."""
    if isinstance(doc, dict):
        return any(_sets_anything(v) for v in doc.values())
    if isinstance(doc, list):
        return any(_sets_anything(v) for v in doc)
    return True


def parse_toml(text: str, *, file: str | PathLike[str] = "") -> dict[str, Any]:
    """Parse TOML text; malformed text is a :class:`ConfigError`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=file) from None


def load(cls: type[T], path: str | PathLike[str]) -> T:
    """Read, refuse secrets in, and decode a TOML file into ``cls``."""
    return decode(cls, load_toml(path), file=path)


Hook = Callable[[type, Any], Any]


def decode(cls: type[T], doc: Any, *, file: str | PathLike[str] = "", dec_hook: Hook | None = None) -> T:
    """Decode a parsed document into ``cls`` after refusing secrets; every problem is a ConfigError.

    ``dec_hook(type, value)`` builds the values of types msgspec does not know (a token id from an
    address, say); a ``ValueError`` it raises is reported at the key being decoded.
    """
    from .secrets import refuse_secrets  # runtime.secrets raises this module's ConfigError

    refuse_secrets(doc, file=str(file))
    own = getattr(cls, "own_table", None)
    settings: frozenset[str] = frozenset()
    if own is not None and isinstance(doc, dict):
        try:
            doc, settings = _hoist(cls, doc, own)
        except ConfigError as exc:
            raise exc.within(file=file) from None
    try:
        return msgspec.convert(doc, cls, strict=True, str_keys=True, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        error = _explain(exc, cls, doc, dec_hook)
    if own is not None and re.split(r"[.\[]", error.path, maxsplit=1)[0] in settings:
        error = error.within(own)  # a setting read from the component's own table
    raise error.within(file=file) from None


def _hoist(cls: type, doc: dict[str, Any], own: str) -> tuple[dict[str, Any], frozenset[str]]:
    """``{own: {a: 1}, t: {...}}`` -> ``{a: 1, t: {...}}``, refusing keys in the wrong place."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = msgspec.structs.fields(cls)
    settings = frozenset(f.encode_name for f in fields if not _is_table(hints[f.name]))
    tables = sorted({f.encode_name for f in fields} - settings | {own})
    for key in doc:
        if key not in tables:
            raise ConfigError(f"unknown key {key!r} (allowed: {', '.join(tables)})", path=key)
    section = doc.get(own, {})
    if not isinstance(section, dict):
        raise ConfigError(f"must be a table, got {type(section).__name__}", path=own)
    for key in section:
        if key not in settings:
            raise ConfigError(f"unknown key {key!r} (allowed: {', '.join(sorted(settings))})",
                              path=join_path(own, key))
    return {**{k: v for k, v in doc.items() if k != own}, **section}, settings


def _is_table(tp: Any) -> bool:
    for m in _members(tp):
        if typing.get_origin(m) is tuple:
            m = _strip(typing.get_args(m)[0])
        if isinstance(m, type) and issubclass(m, msgspec.Struct):
            return True
    return False


# --- msgspec's errors, explained -----------------------------------------------------------------

_AT = re.compile(r"^(?P<msg>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_WANT = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
         "object": "a table", "array": "an array", "null": "absent"}
_GOT = {"object": "table", "array": "array", "null": "nothing"}
_MAPPINGS = (dict, Mapping)


def _explain(exc: msgspec.ValidationError, cls: type, doc: Any, hook: Hook | None) -> ConfigError:
    m = _AT.match(str(exc))
    assert m is not None  # the pattern matches any text
    message, raw_path, key_error = m["msg"], m["path"] or "", bool(m["key"])
    path, value, tp = _locate(cls, doc, raw_path, key_error, hook)
    error = _explain_at(exc, message, path, value, tp)
    # a rejected string never appears in the message (it may be a secret in the wrong place); a
    # dec_hook's or __post_init__'s own wording may quote it, so it is masked here, once for all:
    # the value at the error's key anywhere, any string of the document where it is quoted
    text = error.message
    if isinstance(value, str) and len(value) >= 4:
        text = text.replace(repr(value), "<value>").replace(value, "<value>")
    for s in _strings(doc):
        text = text.replace(repr(s), "<value>")
    return error if text == error.message else ConfigError(text, path=error.path, file=error.file)


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from _strings(v)
    elif isinstance(doc, list | tuple):
        for v in doc:
            yield from _strings(v)


def _explain_at(exc: msgspec.ValidationError, message: str, path: str, value: Any, tp: Any) -> ConfigError:
    cause = exc.__cause__
    if isinstance(cause, ConfigError):  # raised by a table's __post_init__
        return cause.within(path)
    if cause is not None:
        return ConfigError(str(cause), path=path)
    if unknown := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        allowed = ", ".join(sorted(f.encode_name for f in msgspec.structs.fields(_struct_of(tp))))
        return ConfigError(f"unknown key {unknown[1]!r} (allowed: {allowed})", path=join_path(path, unknown[1]))
    if missing := re.fullmatch(r"Object missing required field `(.+)`", message):
        return ConfigError(f"missing required key {missing[1]!r}", path=join_path(path, missing[1]))
    if wrong := re.fullmatch(r"Expected `(.+?)`, got `(\w+)`", message):
        return ConfigError(f"must be {_want(wrong[1])}, got {_GOT.get(wrong[2], wrong[2])}", path=path)
    if re.fullmatch(r"Expected `\w+` [<>]=? \S+", message) and isinstance(value, int | float):
        return ConfigError(f"out of range {_bounds(tp)}, got {value}", path=path)
    if length := re.fullmatch(r"Expected `(\w+)` of length (.+)", message):
        return ConfigError(f"must be {_want(length[1])} of length {length[2]}", path=path)
    if re.fullmatch(r"Invalid enum value .*", message):
        choices = ", ".join(str(c) for c in typing.get_args(_strip(tp)))
        return ConfigError(f"must be one of {choices}", path=path)
    return ConfigError(message, path=path)


def _want(names: str) -> str:
    return " or ".join(_WANT.get(n, n) for n in names.split(" | ") if n != "null")


def _strip(tp: Any) -> Any:
    """``Annotated[X, ...]`` -> X."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _bounds(tp: Any) -> str:
    lo: Any = "-inf"
    hi: Any = "inf"
    lo_open = hi_open = True
    for meta in getattr(tp, "__metadata__", ()):
        if isinstance(meta, Meta):
            if meta.ge is not None:
                lo, lo_open = meta.ge, False
            if meta.gt is not None:
                lo, lo_open = meta.gt, True
            if meta.le is not None:
                hi, hi_open = meta.le, False
            if meta.lt is not None:
                hi, hi_open = meta.lt, True
    return f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _members(tp: Any) -> tuple[Any, ...]:
    tp = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(_strip(a) for a in typing.get_args(tp) if a is not type(None))
    return (tp,)


def _struct_of(tp: Any) -> Any:
    return next(m for m in _members(tp) if isinstance(m, type) and issubclass(m, msgspec.Struct))


def _child(tp: Any, value: Any, segment: str | int) -> Any:
    """The declared type one step down from ``tp`` (``value`` decides between union members)."""
    for m in _members(tp):
        origin, args = typing.get_origin(m) or m, typing.get_args(m)
        if isinstance(segment, str) and isinstance(m, type) and issubclass(m, msgspec.Struct):
            hints = typing.get_type_hints(m, include_extras=True)
            for f in msgspec.structs.fields(m):
                if f.encode_name == segment:
                    return hints[f.name]
        elif isinstance(segment, str) and origin in _MAPPINGS and isinstance(value, dict):
            return args[1]
        elif isinstance(segment, int) and origin in (tuple, list) and isinstance(value, list):
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                return args[segment] if segment < len(args) else Any
            return args[0]
    return Any


def _locate(cls: type, doc: Any, raw_path: str, key_error: bool, hook: Hook | None) -> tuple[str, Any, Any]:
    """msgspec's ``.a[...][0]`` -> (``a.<key>[0]``, the value there, its declared type).

    msgspec writes a dict key as ``[...]``; the key it stopped at is the first one (in document
    order) whose value -- or, for a ``key`` error, the key itself -- does not convert.
    """
    path, value, tp = "", doc, cls
    for m in _SEGMENT.finditer(raw_path):
        name, index = m[1], m[2]
        step: str | int | None = name if name is not None else (int(index) if index != "..." else None)
        if step is None:
            step = _first_bad_key(tp, value, hook, keys=False)
            if step is None:
                break
        tp = _child(tp, value, step)
        path = join_path(path, step)
        if isinstance(value, dict) and isinstance(step, str):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            value = None
    if key_error:
        key = _first_bad_key(tp, value, hook, keys=True)
        if key is not None:
            dict_tp = next(m for m in _members(tp) if typing.get_origin(m) in _MAPPINGS)
            return join_path(path, key), key, typing.get_args(dict_tp)[0]
    return path, value, tp


def _first_bad_key(tp: Any, value: Any, hook: Hook | None, *, keys: bool) -> str | None:
    """The first key of the dict ``value`` whose key (``keys``) or value does not convert."""
    dict_tp = next((m for m in _members(tp) if typing.get_origin(m) in _MAPPINGS), None)
    if dict_tp is None or not isinstance(value, dict):
        return None
    key_tp, value_tp = typing.get_args(dict_tp)
    for k, v in value.items():
        target = types.GenericAlias(dict, (key_tp, Any) if keys else (str, value_tp))
        if not _converts({k: None} if keys else {"k": v}, target, hook):
            return str(k)
    return None


def _converts(obj: Any, tp: Any, hook: Hook | None) -> bool:
    try:
        msgspec.convert(obj, tp, strict=True, str_keys=True, dec_hook=hook)
    except (msgspec.ValidationError, ValueError):
        return False
    return True
