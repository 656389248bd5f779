"""L1 market: exact AMM math, immutable pool state and prices -- pure integer code, no I/O."""
