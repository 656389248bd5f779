"""Replay recorded raw EVM logs as live market-data messages (``alphapulse collector replay``).

``source`` reads recordings into JSON-RPC log objects, ``replay`` decodes and paces
them (``iter_replay`` + the trio shell ``pace``), ``cli`` wires them to the relay.
"""

from .replay import MessageSink, Publish, ReplayItem, ReplayStats, iter_replay, pace

__all__ = ["MessageSink", "Publish", "ReplayItem", "ReplayStats", "iter_replay", "pace"]
