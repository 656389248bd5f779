"""Alerts through a chat webhook (httpx), the one boundary where failures are swallowed.

Payload styles::

    discord   {"content": text}
    slack     {"text": text}
    telegram  {"chat_id": chat_id, "text": text}   (POST to .../bot<token>/sendMessage)

``AlertSender`` owns a bounded queue: ``offer(text)`` never waits (an alert that does not fit
is dropped and logged), so an alert can never delay an EmergencyStop. ``run()`` is the one
task that posts them; a webhook that fails, times out or answers non-2xx is logged and the
next alert is tried. Nothing an alert does can crash the risk process.

A webhook URL is a credential (Discord and Slack keep the secret in the path, Telegram its bot
token, others a user:password or a ``?token=``): it is logged only as ``chain.rpc.redact_url``
leaves it (scheme, host and port), and an exception's text is scrubbed of it by
``chain.rpc.scrub`` -- the one redaction every URL we hold goes through.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import trio

from chain.rpc import redact_url, scrub

from .config import AlertsConfig

log = logging.getLogger("risk.alerts")


def payload(style: str, text: str, chat_id: str = "") -> dict[str, Any]:
    if style == "discord":
        return {"content": text[:2000]}
    if style == "slack":
        return {"text": text}
    if style == "telegram":
        return {"chat_id": chat_id, "text": text[:4096]}
    raise ValueError(f"unknown alert style {style!r}")


class AlertSender:
    def __init__(self, cfg: AlertsConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.cfg = cfg
        self.transport = transport
        self._send, self._recv = trio.open_memory_channel[str](cfg.queue)
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def offer(self, text: str) -> None:
        if not self.cfg.webhook_url:
            return
        try:
            self._send.send_nowait(text)
        except trio.WouldBlock:
            self.dropped += 1
            log.error("alert queue full (%d): dropped alert %r", self.cfg.queue, text[:200])

    async def run(self) -> None:
        if not self.cfg.webhook_url:
            return
        async with httpx.AsyncClient(timeout=self.cfg.timeout_s, transport=self.transport) as client:
            async for text in self._recv:
                await self._post(client, text)

    async def _post(self, client: httpx.AsyncClient, text: str) -> None:
        body = payload(self.cfg.style, text, self.cfg.chat_id)
        try:
            with trio.move_on_after(self.cfg.timeout_s * 2) as cs:
                resp = await client.post(self.cfg.webhook_url, json=body)
                resp.raise_for_status()
            if cs.cancelled_caught:
                raise TimeoutError(f"no answer within {self.cfg.timeout_s * 2:g} s")
            self.sent += 1
        except Exception as exc:  # the webhook boundary: log, never crash, never block a stop
            self.failed += 1
            # httpx quotes the URL in some messages (a non-2xx status): the token must not reach the log
            url = self.cfg.webhook_url
            log.error("alert webhook %s failed: %s: %s", redact_url(url), type(exc).__name__, scrub(str(exc), url))
