"""Risk metrics over the trade history (reports only: numpy floats are fine here, never a trade input).

The series is the per-result net P&L in the valuation token (``results.net_value``: realized
profit minus gas, valued at booking), in result order. Definitions (per trade, not annualised):

* drawdown: largest fall of cumulative P&L from its running peak (base units, >= 0);
* VaR 95 %: the loss not exceeded in 95 % of trades, historical (``-percentile(x, 5)``, >= 0);
* Sharpe: mean / sample stdev; Sortino: mean / downside deviation (sqrt(mean(min(x, 0)^2)));
* Calmar: total P&L / max drawdown.

Ratios are None when undefined (fewer than two trades, zero deviation or zero drawdown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def risk_metrics(pnl: Sequence[int]) -> dict[str, Any]:
    n = len(pnl)
    if n == 0:
        return {"trades": 0, "total": 0, "max_drawdown": 0, "var_95": 0, "sharpe": None, "sortino": None,
                "calmar": None}
    x = np.asarray([float(v) for v in pnl])
    cum = np.cumsum(x)
    peak = np.maximum.accumulate(np.concatenate(([0.0], cum)))[1:]
    mdd = float(np.max(peak - cum))
    total = int(sum(pnl))
    var95 = max(0.0, -float(np.percentile(x, 5)))
    sd = float(np.std(x, ddof=1)) if n > 1 else 0.0
    down = float(np.sqrt(np.mean(np.minimum(x, 0.0) ** 2)))
    mean = float(np.mean(x))
    return {
        "trades": n,
        "total": total,
        "max_drawdown": int(round(mdd)),
        "var_95": int(round(var95)),
        "sharpe": mean / sd if sd > 0 else None,
        "sortino": mean / down if down > 0 else None,
        "calmar": total / mdd if mdd > 0 else None,
    }
