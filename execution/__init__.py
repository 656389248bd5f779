"""AlphaPulse execution."""
