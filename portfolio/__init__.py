"""AlphaPulse portfolio."""
