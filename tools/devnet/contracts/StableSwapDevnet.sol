// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title StableSwapDevnet: a Solidity port of the classic Curve StableSwap pool's swap path
/// @notice NOT Curve's code: no npm package ships the official Vyper bytecode, so the devnet runs this
///         faithful port of `StableSwap3Pool.vy` (Vyper 0.2.4) as far as a swap is concerned: `_xp`,
///         `get_D`, `get_y` (both Newton loops stop after 255 rounds and return the last iterate),
///         `get_dy` (fee charged in coin units after converting) and `exchange` (fee charged in xp units
///         before converting, the admin share of the fee leaving the balances), every division a floor
///         division in the contract's order and every operation checked (Solidity 0.8 reverts where
///         Vyper's uint256 does). The amplification is constant (no ramp). `exchange` returns nothing,
///         as the classic pool does. Liquidity is put in by the owner with `seed` and taken out with
///         `withdraw` (the devnet needs no LP token), which emit the classic AddLiquidity /
///         RemoveLiquidityImbalance events. `market/amm/curve_stableswap.py` is the Python mirror; the devnet tests check
///         `get_dy` and `exchange` against it to the wei.
contract StableSwapDevnet {
    uint256 private constant FEE_DENOMINATOR = 1e10;
    uint256 private constant PRECISION = 1e18;

    address public immutable owner;
    address[] public coins;
    uint256[] public balances;
    uint256[] private rates;
    uint256 public immutable A;
    uint256 public immutable fee;
    uint256 public immutable admin_fee;

    event TokenExchange(address indexed buyer, int128 sold_id, uint256 tokens_sold, int128 bought_id, uint256 tokens_bought);
    // The classic pool's liquidity events for two coins (their arrays are uint256[N_COINS]): `seed` and
    // `withdraw` emit them as add_liquidity / remove_liquidity_imbalance would, with no fee (the owner's
    // devnet liquidity) and no LP token (token_supply 0), so a collector sees every balance change.
    event AddLiquidity(address indexed provider, uint256[2] token_amounts, uint256[2] fees, uint256 invariant, uint256 token_supply);
    event RemoveLiquidityImbalance(address indexed provider, uint256[2] token_amounts, uint256[2] fees, uint256 invariant, uint256 token_supply);

    constructor(address[] memory coins_, uint256[] memory rates_, uint256 amp, uint256 fee_, uint256 adminFee) {
        require(coins_.length == rates_.length && coins_.length >= 2, "coins");
        owner = msg.sender;
        coins = coins_;
        rates = rates_;
        balances = new uint256[](coins_.length);
        A = amp;
        fee = fee_;
        admin_fee = adminFee;
    }

    /// @notice Devnet liquidity: the owner adds `amounts` of each coin to the balances.
    function seed(uint256[] calldata amounts) external {
        require(msg.sender == owner, "owner");
        require(amounts.length == coins.length, "amounts");
        for (uint256 k; k < amounts.length; ++k) {
            if (amounts[k] == 0) continue;
            balances[k] += amounts[k];
            _transferFrom(coins[k], msg.sender, amounts[k]);
        }
        if (amounts.length == 2) {
            emit AddLiquidity(msg.sender, [amounts[0], amounts[1]], [uint256(0), uint256(0)], get_D(_xp(), A), 0);
        }
    }

    /// @notice Devnet liquidity: the owner takes `amounts` of each coin out of the balances.
    function withdraw(uint256[] calldata amounts) external {
        require(msg.sender == owner, "owner");
        require(amounts.length == coins.length, "amounts");
        for (uint256 k; k < amounts.length; ++k) {
            if (amounts[k] == 0) continue;
            balances[k] -= amounts[k];
            _transfer(coins[k], msg.sender, amounts[k]);
        }
        if (amounts.length == 2) {
            emit RemoveLiquidityImbalance(msg.sender, [amounts[0], amounts[1]], [uint256(0), uint256(0)],
                get_D(_xp(), A), 0);
        }
    }

    function _xp() private view returns (uint256[] memory xp) {
        uint256 n = balances.length;
        xp = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            xp[k] = (rates[k] * balances[k]) / PRECISION;
        }
    }

    function get_D(uint256[] memory xp, uint256 amp) public pure returns (uint256) {
        uint256 n = xp.length;
        uint256 s;
        for (uint256 k; k < n; ++k) {
            s += xp[k];
        }
        if (s == 0) return 0;
        uint256 d = s;
        uint256 ann = amp * n;
        for (uint256 it; it < 255; ++it) {
            uint256 dP = d;
            for (uint256 k; k < n; ++k) {
                dP = (dP * d) / (xp[k] * n);
            }
            uint256 dPrev = d;
            d = ((ann * s + dP * n) * d) / ((ann - 1) * d + (n + 1) * dP);
            if (d > dPrev) {
                if (d - dPrev <= 1) break;
            } else if (dPrev - d <= 1) {
                break;
            }
        }
        return d;
    }

    function get_y(uint256 i, uint256 j, uint256 x, uint256[] memory xp) public view returns (uint256) {
        uint256 n = xp.length;
        require(i != j, "same coin");
        require(i < n && j < n, "coin index");
        uint256 amp = A;
        uint256 d = get_D(xp, amp);
        uint256 c = d;
        uint256 s;
        uint256 ann = amp * n;
        for (uint256 k; k < n; ++k) {
            uint256 xk;
            if (k == i) xk = x;
            else if (k != j) xk = xp[k];
            else continue;
            s += xk;
            c = (c * d) / (xk * n);
        }
        c = (c * d) / (ann * n);
        uint256 b = s + d / ann;
        uint256 y = d;
        for (uint256 it; it < 255; ++it) {
            uint256 yPrev = y;
            y = (y * y + c) / (2 * y + b - d);
            if (y > yPrev) {
                if (y - yPrev <= 1) break;
            } else if (yPrev - y <= 1) {
                break;
            }
        }
        return y;
    }

    function get_dy(int128 i, int128 j, uint256 dx) external view returns (uint256) {
        (uint256 ui, uint256 uj) = _indices(i, j);
        uint256[] memory xp = _xp();
        uint256 x = xp[ui] + (dx * rates[ui]) / PRECISION;
        uint256 y = get_y(ui, uj, x, xp);
        uint256 dy = ((xp[uj] - y - 1) * PRECISION) / rates[uj];
        uint256 feeAmount = (fee * dy) / FEE_DENOMINATOR;
        return dy - feeAmount;
    }

    /// @notice Sell `dx` of coin `i` (pulled with transferFrom) for at least `min_dy` of coin `j`.
    function exchange(int128 i, int128 j, uint256 dx, uint256 min_dy) external {
        (uint256 ui, uint256 uj) = _indices(i, j);
        uint256[] memory xp = _xp();
        uint256 x = xp[ui] + (dx * rates[ui]) / PRECISION;
        uint256 y = get_y(ui, uj, x, xp);
        uint256 dyXp = xp[uj] - y - 1; // -1 just in case there were some rounding errors
        uint256 dyFee = (dyXp * fee) / FEE_DENOMINATOR;
        uint256 dy = ((dyXp - dyFee) * PRECISION) / rates[uj];
        require(dy >= min_dy, "Exchange resulted in fewer coins than expected");
        uint256 dyAdminFee = (dyFee * admin_fee) / FEE_DENOMINATOR;
        dyAdminFee = (dyAdminFee * PRECISION) / rates[uj];
        balances[ui] += dx;
        balances[uj] -= dy + dyAdminFee;
        _transferFrom(coins[ui], msg.sender, dx);
        _transfer(coins[uj], msg.sender, dy);
        emit TokenExchange(msg.sender, i, dx, j, dy);
    }

    function _indices(int128 i, int128 j) private view returns (uint256, uint256) {
        require(i >= 0 && j >= 0, "below zero");
        // casting to uint256 is safe: both are checked non-negative just above
        // forge-lint: disable-next-line(unsafe-typecast)
        return (uint256(uint128(i)), uint256(uint128(j)));
    }

    function _transferFrom(address token, address from, uint256 amount) private {
        (bool ok, bytes memory ret) =
            token.call(abi.encodeWithSelector(0x23b872dd, from, address(this), amount));
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "transferFrom");
    }

    function _transfer(address token, address to, uint256 amount) private {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "transfer");
    }
}
