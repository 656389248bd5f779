"""EVM chain collector: raw logs -> protocol messages (``decode``); the process lives in ``process``."""
