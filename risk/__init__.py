"""AlphaPulse risk."""
