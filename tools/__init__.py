"""AlphaPulse tools."""
