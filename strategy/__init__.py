"""AlphaPulse strategy."""
