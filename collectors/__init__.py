"""AlphaPulse collectors."""
