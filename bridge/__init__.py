"""Bridges between one host's relays and a NATS JetStream cluster (``alphapulse bridge out|in``).

See ``bridge.process`` for the processes and specs/relay.md ("Bridging to NATS JetStream") for
how relay and stream sequences map.
"""
