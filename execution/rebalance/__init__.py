"""The rebalancer: moves inventory between chains' AlphaPulseArb contracts through a bridge
(issue 14, ``specs/rebalance.md``). ``core`` is the sans-IO policy and transfer machine, ``store`` its
SQLite state, ``runner`` the trio shell that carries out its steps, ``process`` the
``alphapulse rebalancer`` command."""
