"""Local stand-ins for Binance and Coinbase: their real wire formats over a real WebSocket and REST on loopback."""
