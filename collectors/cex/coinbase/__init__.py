"""Coinbase: the Exchange feed (exchange.py), the Advanced Trade feed (advanced.py), one trio shell (process.py)."""
