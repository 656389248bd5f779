"""``open_consumer``: ``RelayConsumer.connect`` that never loses an exception raised in its body.

Workaround for a defect in ``relays.client.shell.RelayConsumer.connect`` (reported): when the
body raises while the connection is open, the ``finally`` cancels the consumer's nursery and
then awaits ``_drop()``, whose ``Cancelled`` replaces the body's exception and is absorbed by
that nursery's cancel scope -- the error vanishes and the ``async with`` exits normally. Here
the body's exception is caught before it reaches that ``finally`` and re-raised after the
consumer has closed. ``Cancelled`` (a BaseException) is not caught and behaves as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from relays.client import RelayConsumer


@asynccontextmanager
async def open_consumer(*args: Any, **kw: Any) -> AsyncIterator[RelayConsumer]:
    failure: list[Exception] = []
    async with RelayConsumer.connect(*args, **kw) as consumer:
        try:
            yield consumer
        except Exception as exc:  # re-raised below, once the consumer is closed
            failure.append(exc)
    if failure:
        raise failure[0]
