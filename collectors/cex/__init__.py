"""Centralised-exchange collectors: venue frames in, protocol TLVs out (see book.py)."""
