// SPDX-License-Identifier: MIT
// Test-only attacker: pretends to be a pool and calls AlphaPulseArb's swap callbacks directly,
// or asks a genuine V2 pair for a flash swap "on behalf of" the arb contract.
pragma solidity ^0.8.28;

interface IArbCallbacks {
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external;
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external;
}

interface IPairSwap {
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

contract FakePool {
    address public immutable token0;
    address public immutable token1;

    constructor(address token0_, address token1_) {
        token0 = token0_;
        token1 = token1_;
    }

    function attackV2(address arb, address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        IArbCallbacks(arb).uniswapV2Call(sender, amount0, amount1, data);
    }

    function attackV3(address arb, int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        IArbCallbacks(arb).uniswapV3SwapCallback(amount0Delta, amount1Delta, data);
    }

    /// A genuine pair flash-swaps to the arb contract, which this contract did not get to initiate.
    function flashThroughPair(address pair, uint256 amount0Out, uint256 amount1Out, address arb, bytes calldata data)
        external
    {
        IPairSwap(pair).swap(amount0Out, amount1Out, arb, data);
    }

    // Quacks like a V3 pool / V2 pair for anything that asks.
    function fee() external pure returns (uint24) {
        return 3000;
    }

    function getReserves() external pure returns (uint112, uint112, uint32) {
        return (1e30, 1e30, 0);
    }
}
