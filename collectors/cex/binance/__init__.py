"""Binance spot: the book-sync core (sync.py) and its trio shell (process.py)."""
