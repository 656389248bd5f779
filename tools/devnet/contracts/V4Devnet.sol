// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Devnet helpers for the official Uniswap V4 PoolManager (v4-core 1.0.x from npm), written for
// AlphaPulse: a router that swaps and modifies liquidity inside one unlock, settling with ERC-20
// transfers from the caller, and two hooks deployed (with anvil_setCode) at addresses whose low
// bits are their permissions. Types are spelled out here (addresses for Currency and IHooks, int256
// for BalanceDelta) so the file compiles alone; the ABI is the same.

struct PoolKey {
    address currency0;
    address currency1;
    uint24 fee;
    int24 tickSpacing;
    address hooks;
}

struct SwapParams {
    bool zeroForOne;
    int256 amountSpecified; // < 0: exact input, > 0: exact output
    uint160 sqrtPriceLimitX96;
}

struct ModifyLiquidityParams {
    int24 tickLower;
    int24 tickUpper;
    int256 liquidityDelta;
    bytes32 salt;
}

interface IPoolManagerLike {
    function unlock(bytes calldata data) external returns (bytes memory);
    function swap(PoolKey memory key, SwapParams memory params, bytes calldata hookData) external returns (int256);
    function modifyLiquidity(PoolKey memory key, ModifyLiquidityParams memory params, bytes calldata hookData)
        external
        returns (int256 callerDelta, int256 feesAccrued);
    function sync(address currency) external;
    function settle() external payable returns (uint256 paid);
    function take(address currency, address to, uint256 amount) external;
}

interface IERC20Like {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// Swaps and liquidity changes for dev accounts: the caller pays what it owes from its approved
/// balance and receives what it is owed; the PoolManager's BalanceDelta is returned as is.
contract V4DevnetRouter {
    IPoolManagerLike public immutable manager;

    error NotPoolManager();
    error TransferFailed();

    constructor(IPoolManagerLike manager_) {
        manager = manager_;
    }

    function swap(PoolKey calldata key, SwapParams calldata params) external returns (int256 delta) {
        bytes memory r = manager.unlock(abi.encode(uint8(0), msg.sender, key, abi.encode(params)));
        delta = abi.decode(r, (int256));
    }

    function modifyLiquidity(PoolKey calldata key, ModifyLiquidityParams calldata params)
        external
        returns (int256 delta)
    {
        bytes memory r = manager.unlock(abi.encode(uint8(1), msg.sender, key, abi.encode(params)));
        delta = abi.decode(r, (int256));
    }

    function unlockCallback(bytes calldata data) external returns (bytes memory) {
        if (msg.sender != address(manager)) revert NotPoolManager();
        (uint8 action, address payer, PoolKey memory key, bytes memory inner) =
            abi.decode(data, (uint8, address, PoolKey, bytes));
        int256 delta;
        if (action == 0) {
            delta = manager.swap(key, abi.decode(inner, (SwapParams)), "");
        } else {
            (delta,) = manager.modifyLiquidity(key, abi.decode(inner, (ModifyLiquidityParams)), "");
        }
        _settle(key.currency0, payer, int128(delta >> 128));
        _settle(key.currency1, payer, int128(delta));
        return abi.encode(delta);
    }

    function _settle(address currency, address payer, int128 amount) private {
        if (amount < 0) {
            manager.sync(currency);
            if (!IERC20Like(currency).transferFrom(payer, address(manager), uint256(uint128(-amount)))) {
                revert TransferFailed();
            }
            manager.settle();
        } else if (amount > 0) {
            manager.take(currency, payer, uint256(uint128(amount)));
        }
    }
}

/// beforeSwap + afterSwap (address bits 0xC0), no return deltas: it only counts swaps, so pools
/// using it swap exactly like hookless pools. Stateless towards the PoolManager.
contract SwapCounterHook {
    uint256 public swaps;

    function beforeSwap(address, PoolKey calldata, SwapParams calldata, bytes calldata)
        external
        returns (bytes4, int256, uint24)
    {
        swaps += 1;
        return (msg.sig, 0, 0);
    }

    function afterSwap(address, PoolKey calldata, SwapParams calldata, int256, bytes calldata)
        external
        pure
        returns (bytes4, int128)
    {
        return (msg.sig, 0);
    }
}

/// afterSwap + afterSwapReturnDelta (address bits 0x44): skims 1 % of the unspecified amount of
/// every swap for itself (take from the PoolManager, which is the caller). Pools using it must be
/// refused by the simulator: the swapper gets less (or pays more) than the core math says.
contract SkimHook {
    function afterSwap(address, PoolKey calldata key, SwapParams calldata params, int256 delta, bytes calldata)
        external
        returns (bytes4, int128)
    {
        bool specifiedIs0 = (params.amountSpecified < 0) == params.zeroForOne;
        int128 unspecified = specifiedIs0 ? int128(delta) : int128(delta >> 128);
        int128 skim = (unspecified < 0 ? -unspecified : unspecified) / 100;
        if (skim > 0) {
            IPoolManagerLike(msg.sender).take(
                specifiedIs0 ? key.currency1 : key.currency0, address(this), uint256(uint128(skim))
            );
        }
        return (msg.sig, skim);
    }
}
