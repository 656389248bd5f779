"""The CEX leg of CEX-DEX arbitrage: the Binance order gateway (gateway.py) and the two-leg policy (legs.py, specs/cex-legs.md)."""
