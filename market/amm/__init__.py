"""Exact integer AMM math mirroring the on-chain contracts (pure Python, no floats, no I/O).

One module per contract library, with the Solidity/Vyper function names in snake_case:

* :mod:`.full_math` -- ``FullMath`` (+ ``UnsafeMath``, ``SafeCast``)
* :mod:`.tick_math` -- ``TickMath``
* :mod:`.sqrt_price_math` -- ``SqrtPriceMath``
* :mod:`.swap_math` -- ``SwapMath``
* :mod:`.liquidity_math` -- ``LiquidityMath`` (+ ``Tick.tickSpacingToMaxLiquidityPerTick``)
* :mod:`.tick_bitmap` -- ``TickBitmap`` / ``BitMath`` over a sorted tick list
* :mod:`.uniswap_v3` -- ``UniswapV3Pool.swap`` and mint/burn tick bookkeeping on an immutable state
* :mod:`.swap_math_v4` -- v4-core ``SwapMath`` (flipped sign convention, different fee split)
* :mod:`.lp_fee_library`, :mod:`.protocol_fee_library`, :mod:`.hooks` -- v4-core ``LPFeeLibrary``,
  ``ProtocolFeeLibrary``, ``Hooks`` (permissions from the hook address)
* :mod:`.pool_key` -- v4-core ``PoolKey``/``PoolId``, ``PoolManager.initialize``'s checks, our admission rule
* :mod:`.uniswap_v4` -- v4-core ``Pool.swap`` and ``modifyLiquidity`` tick bookkeeping on an immutable state
* :mod:`.uniswap_v2` -- ``UniswapV2Library`` with a configurable fee (Uniswap, PancakeSwap, ...)
* :mod:`.curve_stableswap` -- Curve ``StableSwap3Pool.vy`` (``get_D``, ``get_y``, ``get_dy``, ``_A`` ramp)
* :mod:`.errors` -- :class:`~.errors.AMMError` and subclasses, raised wherever the contract would revert
* :mod:`.bench` -- ``bench_v3_swaps(n)`` for ``alphapulse bench strategy``

Submodules are not imported here, so importing one library does not pay for the others.
"""
