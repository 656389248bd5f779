"""Coinbase: the Exchange feed (exchange.py), the Advanced Trade feed (advanced.py), what both keep
per product (products.py), one trio shell (process.py)."""
