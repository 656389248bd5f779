"""AlphaPulse relays."""
