"""The text exposition format, by prometheus-client: render a registry, parse a scrape back.

``render(registry) -> bytes`` is ``prometheus_client.generate_latest`` (served with
``CONTENT_TYPE``, format 0.0.4). ``parse_text(text)`` reads a scrape with prometheus-client's
own parser and keys the families by the names that appear in the exposition (a counter by its
``_total`` name, as documented in runtime/metrics/README.md), each sample a plain
``(name, labels, value)`` triple: what tests and tools compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import prometheus_client
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# One series per counter and histogram, as documented: no `_created` twin of each (it would
# double every counter's series and tell a scraper nothing a restart does not already show).
prometheus_client.disable_created_metrics()


def render(registry: Collector) -> bytes:
    """The registry in the text exposition format (collectors run now: values as of this call)."""
    return generate_latest(registry)


@dataclass
class ParsedFamily:
    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def parse_text(text: str) -> dict[str, ParsedFamily]:
    """Families of a scrape keyed by exposition name (a counter: ``..._total``); raises ValueError."""
    families: dict[str, ParsedFamily] = {}
    for fam in text_string_to_metric_families(text):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        families[name] = ParsedFamily(
            name=name, type=fam.type, help=fam.documentation,
            samples=[(s.name, dict(s.labels), s.value) for s in fam.samples if not s.name.endswith("_created")],
        )
    return families
