"""Sans-IO relay internals: range set, ring, journal, ingest (sequencing, dedupe), cursors.

Nothing here touches trio or sockets; the server in ``relays.server`` only moves
bytes and timers between these objects and the network.
"""
