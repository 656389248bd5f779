"""A tiny, dependency-free metrics registry rendering the Prometheus text format 0.0.4.

    reg = Registry()
    msgs = reg.counter("alphapulse_messages_in_total", "Messages received.", ["domain"])
    msgs.labels(domain="signal").inc()
    lat = reg.histogram("alphapulse_executor_signal_to_submit_seconds", "Signal received -> tx submitted.")
    lat.observe(0.0042)
    gauge = reg.gauge("alphapulse_relay_lag_messages", "Lag behind the relay head.", ["domain"])
    reg.on_collect(lambda: gauge.labels(domain="signal").set(compute_lag()))   # read at scrape time
    text = reg.render()   # bytes, Content-Type CONTENT_TYPE

Everything is single-threaded (trio): no locks. ``on_collect`` hooks run at scrape time, so
values other code already keeps (relay stats, client counters) cost nothing per message.
``parse_text`` reads the format back (tests, ``alphapulse`` tooling).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# seconds: 10 µs .. 10 s in 1-2.5-5 steps (+Inf is implicit)
DEFAULT_BUCKETS: tuple[float, ...] = (
    1e-5, 2.5e-5, 5e-5,
    1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(v: float) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def _labels_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    TYPE = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for ln in labelnames:
            if not _LABEL_RE.match(ln) or ln.startswith("__") or ln == "le" and self.TYPE == "histogram":
                raise ValueError(f"invalid label name {ln!r} for {name}")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: Any, **kw: Any) -> Any:
        """The child for one label-value combination (created on first use, then cached)."""
        if kw:
            if values:
                raise ValueError("labels(): positional or keyword values, not both")
            try:
                values = tuple(kw[n] for n in self.labelnames)
            except KeyError as exc:
                raise ValueError(f"{self.name}: missing label {exc}") from None
            if len(kw) != len(self.labelnames):
                raise ValueError(f"{self.name}: labels {sorted(kw)} != {list(self.labelnames)}")
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values, got {len(values)}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def remove(self, *values: Any) -> None:
        self._children.pop(tuple(str(v) for v in values), None)

    def clear(self) -> None:
        self._children.clear()

    def _default(self) -> Any:
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}: use .labels(...)")
        return self.labels()

    def _new_child(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {escape_help(self.help)}")
        out.append(f"# TYPE {self.name} {self.TYPE}")
        for key, child in sorted(self._children.items()):
            self._render_child(out, key, child)

    def _render_child(self, out: list[str], key: tuple[str, ...], child: Any) -> None:
        out.append(f"{self.name}{_labels_text(self.labelnames, key)} {format_value(child.value)}")


class _Value:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0


class CounterChild(_Value):
    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount

    def set_total(self, total: float) -> None:
        """Mirror a monotonic count kept elsewhere (read at scrape time)."""
        self.value = total


class GaugeChild(_Value):
    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


class Counter(_Metric):
    TYPE = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r} should end in _total")
        super().__init__(name, help, labelnames)

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1) -> None:
        self._default().inc(amount)

    def set_total(self, total: float) -> None:
        self._default().set_total(total)


class Gauge(_Metric):
    TYPE = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self._default().set(value)

    def inc(self, amount: float = 1) -> None:
        self._default().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._default().dec(amount)


class HistogramChild:
    __slots__ = ("buckets", "counts", "sum", "count")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # per bucket, not cumulative; last = above the top bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # le semantics: a value equal to a bound falls in that bucket
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class Histogram(_Metric):
    TYPE = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help, labelnames)
        b = tuple(sorted(float(x) for x in buckets if not math.isinf(x)))
        if not b or len(set(b)) != len(b):
            raise ValueError(f"{name}: buckets must be distinct and non-empty")
        self.buckets = b

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.buckets)

    def observe(self, value: float) -> None:
        self._default().observe(value)

    def _render_child(self, out: list[str], key: tuple[str, ...], child: Any) -> None:
        names = self.labelnames
        cum = 0
        for bound, n in zip(child.buckets, child.counts):
            cum += n
            le = 'le="' + format_value(bound) + '"'
            out.append(f"{self.name}_bucket{_labels_text(names, key, le)} {cum}")
        le = 'le="+Inf"'
        out.append(f"{self.name}_bucket{_labels_text(names, key, le)} {child.count}")
        out.append(f"{self.name}_sum{_labels_text(names, key)} {format_value(child.sum)}")
        out.append(f"{self.name}_count{_labels_text(names, key)} {child.count}")


class Registry:
    """The metrics of one process. ``render()`` runs the ``on_collect`` hooks, then formats."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._hooks: list[Callable[[], None]] = []

    def register(self, metric: _Metric) -> Any:
        old = self._metrics.get(metric.name)
        if old is not None:
            if type(old) is not type(metric) or old.labelnames != metric.labelnames:
                raise ValueError(f"metric {metric.name} already registered as a different {old.TYPE}")
            return old  # the same metric asked for twice: share it
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self.register(Counter(name, help, labelnames))

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self.register(Gauge(name, help, labelnames))

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Iterable[float] = DEFAULT_BUCKETS) -> Histogram:
        return self.register(Histogram(name, help, labelnames, buckets))

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(name)

    def on_collect(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Run ``hook()`` before every render (usable as a decorator)."""
        self._hooks.append(hook)
        return hook

    def collect(self) -> None:
        for hook in self._hooks:
            hook()

    def render(self) -> bytes:
        self.collect()
        out: list[str] = []
        for name in sorted(self._metrics):
            self._metrics[name].render(out)
        out.append("")
        return "\n".join(out).encode()


# ---------------------------------------------------------------------------- parsing (tests, tools)

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+(-?\d+))?$")
_LABEL_PAIR_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_value(text: str) -> float:
    return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(text) or float(text)


class ParsedFamily:
    def __init__(self, name: str) -> None:
        self.name = name
        self.type = "untyped"
        self.help = ""
        self.samples: list[tuple[str, dict[str, str], float]] = []

    def __repr__(self) -> str:
        return f"<{self.type} {self.name}: {len(self.samples)} samples>"


def parse_text(text: str) -> dict[str, ParsedFamily]:
    """Parse the text exposition format into families keyed by name (strict: raises ValueError)."""
    families: dict[str, ParsedFamily] = {}
    current: ParsedFamily | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                fam = families.setdefault(parts[2], ParsedFamily(parts[2]))
                if parts[1] == "HELP":
                    fam.help = _unescape(parts[3] if len(parts) > 3 else "")
                else:
                    if fam.samples:
                        raise ValueError(f"line {lineno}: TYPE after samples of {fam.name}")
                    fam.type = parts[3].strip() if len(parts) > 3 else "untyped"
                current = fam
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError(f"line {lineno}: not a sample: {line!r}")
        name, raw_labels, value = m.group(1), m.group(2), m.group(3)
        labels: dict[str, str] = {}
        if raw_labels:
            body = raw_labels[1:-1]
            pos = 0
            while pos < len(body):
                lm = _LABEL_PAIR_RE.match(body, pos)
                if not lm:
                    raise ValueError(f"line {lineno}: bad labels {raw_labels!r}")
                if lm.group(1) in labels:
                    raise ValueError(f"line {lineno}: duplicate label {lm.group(1)}")
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        fam_name = name
        if current is not None and name != current.name:
            for suffix in ("_bucket", "_sum", "_count"):
                if current.type == "histogram" and name == current.name + suffix:
                    fam_name = current.name
        fam = families.setdefault(fam_name, ParsedFamily(fam_name))
        fam.samples.append((name, labels, _parse_value(value)))
    return families


__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "ParsedFamily",
    "Registry",
    "escape_label_value",
    "format_value",
    "parse_text",
]
