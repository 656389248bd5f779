// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title AlphaPulseArb
/// @notice Executes one cyclic arbitrage path across Uniswap V2 pairs (and forks with the same
///         swap interface) and Uniswap V3 pools atomically, with no upfront capital: the first
///         hop is a flash swap (its output arrives before its input is paid), every later hop is
///         paid from the previous hop's proceeds, and the first pool is repaid from the last
///         hop's output. Whatever is left over in the start token is the profit; it is sent to
///         `recipient`, and the whole transaction reverts unless it reaches `minProfit`.
///
/// Path encoding (`Hop[]`, at least two hops, a cycle):
///   * `pool`      the V2 pair / V3 pool. It must equal the CREATE2 address computed from
///                 `factory`, the sorted (`tokenIn`, `tokenOut`) and, for V3, `fee`, with the
///                 init-code hash the owner registered for (`factory`, `kind`).
///   * `factory`   the venue's factory; allow-listed per kind by the owner (`setFactory`).
///   * `tokenIn`, `tokenOut`  the hop's direction (zeroForOne = tokenIn < tokenOut). Each hop's
///                 `tokenOut` is the next hop's `tokenIn`; the last hop's `tokenOut` is the first
///                 hop's `tokenIn` (the start token, in which the profit is measured).
///   * `kind`      0 = Uniswap V2 (or fork), 1 = Uniswap V3.
///   * `fee`       in pips (1e-6). V2: the pair's LP fee, 3000 = the official 997/1000 formula,
///                 2500 = PancakeSwap's 9975/10000. V3: the pool's fee tier (part of its CREATE2
///                 salt; the pool applies its own fee).
///   * `amountIn`  hop 0 only: the exact amount of the start token that goes into the cycle
///                 (flash-borrowed from the first pool, repaid from the last hop). Later hops
///                 spend all of the previous hop's output; their `amountIn` is not read.
///   * `amountOut` the minimum acceptable output of the hop (0 = no per-hop check).
///
/// V2 outputs are computed on chain from the pair's reserves and `fee` with the
/// `UniswapV2Library.getAmountOut` formula; V3 hops are exact-input swaps without a price limit.
/// When the next hop is a V2 pair, a hop (other than a V2 flash hop) sends its output straight
/// to that pair, saving a token transfer. Fee-on-transfer / rebasing tokens are not supported.
///
/// One-hop swaps from inventory (`swap(Hop, deadline)`): the DEX leg of a CEX-DEX arbitrage
/// (specs/cex-legs.md) is a single exact-input swap of tokens this contract holds (the on-chain
/// inventory), not a cycle: `hop.amountIn` of `hop.tokenIn` goes in, at least `hop.amountOut` of
/// `hop.tokenOut` must come out and stays here; the transaction reverts after `deadline` (unix
/// seconds), so a leg that was given up for lost can never be mined later.
///
/// Callback safety: a callback is accepted only from the pool this contract itself just called
/// (a transient "expected caller" slot, set immediately before each swap that calls back and
/// consumed by the callback), and that pool's address is recomputed with CREATE2 from an
/// allow-listed factory, both before the swap and again inside the callback.
contract AlphaPulseArb {
    // ------------------------------------------------------------------------------------------
    // Types and constants
    // ------------------------------------------------------------------------------------------
    enum Kind {
        V2,
        V3
    }

    struct Hop {
        address pool;
        address factory;
        address tokenIn;
        address tokenOut;
        Kind kind;
        uint24 fee;
        uint256 amountIn;
        uint256 amountOut;
    }

    /// @notice Init-code hash of the official UniswapV2Pair (as baked into v2-periphery).
    bytes32 public constant UNISWAP_V2_INIT_CODE_HASH =
        0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f;
    /// @notice Init-code hash of the official UniswapV3Pool (as baked into v3-periphery).
    bytes32 public constant UNISWAP_V3_INIT_CODE_HASH =
        0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54;

    uint256 private constant PPM = 1_000_000;
    // TickMath.MIN_SQRT_RATIO + 1 and TickMath.MAX_SQRT_RATIO - 1: "no price limit".
    uint160 private constant MIN_SQRT_PRICE_LIMIT = 4295128739 + 1;
    uint160 private constant MAX_SQRT_PRICE_LIMIT = 1461446703485210103287273052203988822378723970342 - 1;

    // First byte of the data we hand to a pool; the rest is abi.encode(Hop[]) / abi.encode(Hop).
    bytes1 private constant CALLBACK_FLASH = 0x01; // first hop: run the rest of the path, then repay
    bytes1 private constant CALLBACK_PAY = 0x02; // a later V3 hop: pay its input

    // ------------------------------------------------------------------------------------------
    // State
    // ------------------------------------------------------------------------------------------
    address public owner;
    address public pendingOwner;
    /// @notice Receives the profit of every execution.
    address public recipient;
    bool public paused;
    /// @notice Allow-list: the init-code hash of the pools a factory deploys, per kind (0 = not allowed).
    mapping(address factory => mapping(Kind kind => bytes32 initCodeHash)) public initCodeHashOf;

    /// @dev The only address whose swap callback is accepted right now (0 = none). Set just before
    ///      calling a pool that will call back, consumed by that callback, cleared after the swap.
    address private transient expectedCaller;

    // ------------------------------------------------------------------------------------------
    // Events and errors
    // ------------------------------------------------------------------------------------------
    /// @notice One arbitrage cycle executed: `profit` units of `token` (the start token) went to
    ///         `recipient`; `amountIn` is the amount of `token` that was put through the cycle.
    event ArbitrageExecuted(address indexed token, address indexed recipient, uint256 amountIn, uint256 profit);
    /// @notice One swap from inventory: `amountIn` of `tokenIn` sold for `amountOut` of `tokenOut`.
    event Swapped(address indexed tokenIn, address indexed tokenOut, uint256 amountIn, uint256 amountOut);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event RecipientSet(address indexed recipient);
    event FactorySet(address indexed factory, Kind indexed kind, bytes32 initCodeHash);
    event Paused(address account);
    event Unpaused(address account);

    error NotOwner(address caller);
    error NotPendingOwner(address caller);
    error EnforcedPause();
    error ExpectedPause();
    error ZeroAddress();
    error PathTooShort(uint256 length);
    /// @dev tokenIn == tokenOut, or the hop's tokenOut is not the next hop's tokenIn.
    error BrokenPath(uint256 hop);
    error InvalidFee(uint256 hop, uint24 fee);
    error FactoryNotAllowed(uint256 hop, address factory, Kind kind);
    error PoolNotGenuine(uint256 hop, address pool, address expected);
    error ZeroAmountIn();
    error AmountTooLarge(uint256 amount);
    /// @dev A swap callback from anything but the pool this contract is swapping with right now.
    error UnexpectedCallback(address caller);
    /// @dev A V2 callback for a swap this contract did not initiate.
    error UnexpectedInitiator(address initiator);
    error InvalidCallbackData();
    error InsufficientOutput(uint256 hop, uint256 amountOut, uint256 minAmountOut);
    /// @dev The last hop returned less than the first pool must be repaid.
    error InsufficientReturn(uint256 amountReturned, uint256 amountOwed);
    error InsufficientProfit(uint256 profit, uint256 minProfit);
    error BalanceDecreased(uint256 balanceBefore, uint256 balanceAfter);
    error TransferFailed(address token, address to, uint256 amount);
    error BalanceQueryFailed(address token);
    error ReservesQueryFailed(address pair);
    /// @dev A swap from inventory mined after its deadline.
    error DeadlinePassed(uint256 deadline, uint256 timestamp);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor(address recipient_) {
        if (recipient_ == address(0)) revert ZeroAddress();
        owner = msg.sender;
        recipient = recipient_;
        emit OwnershipTransferred(address(0), msg.sender);
        emit RecipientSet(recipient_);
    }

    // ------------------------------------------------------------------------------------------
    // Execution
    // ------------------------------------------------------------------------------------------
    /// @notice Execute one arbitrage cycle; reverts unless the profit (in `hops[0].tokenIn`,
    ///         measured as this contract's balance after minus before) is at least `minProfit`.
    /// @return profit sent to `recipient`
    function execute(Hop[] calldata hops, uint256 minProfit) external onlyOwner returns (uint256 profit) {
        if (paused) revert EnforcedPause();
        uint256 n = hops.length;
        if (n < 2) revert PathTooShort(n);
        for (uint256 i; i < n; ++i) {
            _checkHop(hops[i], i, hops[i + 1 == n ? 0 : i + 1].tokenIn);
        }

        Hop calldata first = hops[0];
        uint256 amountIn = first.amountIn;
        if (amountIn == 0) revert ZeroAmountIn();
        address token = first.tokenIn;
        uint256 balanceBefore = _balanceOf(token);

        bytes memory data = bytes.concat(CALLBACK_FLASH, abi.encode(hops));
        bool zeroForOne = first.tokenIn < first.tokenOut;
        expectedCaller = first.pool;
        if (first.kind == Kind.V2) {
            uint256 out = _v2AmountOut(first.pool, amountIn, zeroForOne, first.fee);
            if (out < first.amountOut) revert InsufficientOutput(0, out, first.amountOut);
            (uint256 out0, uint256 out1) = zeroForOne ? (uint256(0), out) : (out, uint256(0));
            // The pair sends `out` first and calls uniswapV2Call, which runs the rest of the path.
            IUniswapV2PairLike(first.pool).swap(out0, out1, address(this), data);
        } else {
            // Exact input; uniswapV3SwapCallback runs the rest of the path, then pays `amountIn`.
            IUniswapV3PoolLike(first.pool).swap(
                _recipientAfter(hops[1].kind, hops[1].pool),
                zeroForOne,
                _toInt256(amountIn),
                zeroForOne ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT,
                data
            );
        }
        expectedCaller = address(0);

        uint256 balanceAfter = _balanceOf(token);
        if (balanceAfter < balanceBefore) revert BalanceDecreased(balanceBefore, balanceAfter);
        profit = balanceAfter - balanceBefore;
        if (profit < minProfit) revert InsufficientProfit(profit, minProfit);
        address to = recipient;
        if (profit != 0) _transfer(token, to, profit);
        emit ArbitrageExecuted(token, to, amountIn, profit);
    }

    /// @notice One exact-input swap from this contract's inventory (the DEX leg of a CEX-DEX trade):
    ///         `hop.amountIn` of `hop.tokenIn` for at least `hop.amountOut` of `hop.tokenOut`, which
    ///         stays here. Reverts after `deadline` (unix seconds).
    /// @return amountOut received
    function swap(Hop calldata hop, uint256 deadline) external onlyOwner returns (uint256 amountOut) {
        if (paused) revert EnforcedPause();
        if (block.timestamp > deadline) revert DeadlinePassed(deadline, block.timestamp);
        if (hop.tokenIn == hop.tokenOut) revert BrokenPath(0);
        _checkHop(hop, 0, hop.tokenOut);
        uint256 amountIn = hop.amountIn;
        if (amountIn == 0) revert ZeroAmountIn();
        uint256 outBefore = _balanceOf(hop.tokenOut);
        Hop memory h = hop;
        if (h.kind == Kind.V2) {
            _transfer(h.tokenIn, h.pool, amountIn);
            _swapV2(h, amountIn, address(this));
        } else {
            _swapV3(h, amountIn, address(this));
        }
        amountOut = _balanceOf(hop.tokenOut) - outBefore;
        if (amountOut < hop.amountOut) revert InsufficientOutput(0, amountOut, hop.amountOut);
        emit Swapped(hop.tokenIn, hop.tokenOut, amountIn, amountOut);
    }

    /// @notice Uniswap V2 flash-swap callback (only for the first hop of a path).
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        _consumeCallback();
        if (sender != address(this)) revert UnexpectedInitiator(sender);
        if (data.length < 33 || data[0] != CALLBACK_FLASH) revert InvalidCallbackData();
        Hop[] memory hops = abi.decode(data[1:], (Hop[]));
        Hop memory first = hops[0];
        _verifyCaller(first);
        uint256 received = first.tokenIn < first.tokenOut ? amount1 : amount0;
        _finishFlash(hops, received, first.amountIn);
    }

    /// @notice Uniswap V3 swap callback: the first hop (run the path, then pay) or a later hop (pay).
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        _consumeCallback();
        if (data.length < 33) revert InvalidCallbackData();
        if (data[0] == CALLBACK_FLASH) {
            Hop[] memory hops = abi.decode(data[1:], (Hop[]));
            Hop memory first = hops[0];
            _verifyCaller(first);
            (int256 deltaIn, int256 deltaOut) =
                first.tokenIn < first.tokenOut ? (amount0Delta, amount1Delta) : (amount1Delta, amount0Delta);
            if (deltaIn <= 0 || deltaOut > 0) revert InvalidCallbackData();
            uint256 received = uint256(-deltaOut);
            if (received < first.amountOut) revert InsufficientOutput(0, received, first.amountOut);
            _finishFlash(hops, received, uint256(deltaIn));
        } else if (data[0] == CALLBACK_PAY) {
            Hop memory hop = abi.decode(data[1:], (Hop));
            _verifyCaller(hop);
            int256 deltaIn = hop.tokenIn < hop.tokenOut ? amount0Delta : amount1Delta;
            if (deltaIn <= 0) revert InvalidCallbackData();
            _transfer(hop.tokenIn, msg.sender, uint256(deltaIn));
        } else {
            revert InvalidCallbackData();
        }
    }

    // ------------------------------------------------------------------------------------------
    // Admin
    // ------------------------------------------------------------------------------------------
    /// @notice Allow (non-zero hash) or disallow (zero hash) a factory for pools of `kind`.
    function setFactory(address factory, Kind kind, bytes32 initCodeHash) external onlyOwner {
        if (factory == address(0)) revert ZeroAddress();
        initCodeHashOf[factory][kind] = initCodeHash;
        emit FactorySet(factory, kind, initCodeHash);
    }

    function setRecipient(address recipient_) external onlyOwner {
        if (recipient_ == address(0)) revert ZeroAddress();
        recipient = recipient_;
        emit RecipientSet(recipient_);
    }

    function pause() external onlyOwner {
        if (paused) revert EnforcedPause();
        paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyOwner {
        if (!paused) revert ExpectedPause();
        paused = false;
        emit Unpaused(msg.sender);
    }

    /// @notice Start a two-step ownership transfer (the new owner calls `acceptOwnership`).
    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotPendingOwner(msg.sender);
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    /// @notice Move tokens out: recover what was sent by mistake, or take on-chain inventory back
    ///         (cycles need none; swaps from inventory spend what the owner put here).
    function withdrawToken(address token, address to, uint256 amount) external onlyOwner {
        if (to == address(0)) revert ZeroAddress();
        _transfer(token, to, amount);
    }

    /// @notice The genuine pool address for a hop, or address(0) if the factory is not allowed.
    function poolAddress(Kind kind, address factory, address tokenA, address tokenB, uint24 fee)
        external
        view
        returns (address)
    {
        bytes32 initCodeHash = initCodeHashOf[factory][kind];
        if (initCodeHash == bytes32(0)) return address(0);
        return _computePool(kind, factory, initCodeHash, tokenA, tokenB, fee);
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------
    function _checkHop(Hop calldata hop, uint256 i, address nextTokenIn) private view {
        if (hop.tokenIn == hop.tokenOut || hop.tokenOut != nextTokenIn) revert BrokenPath(i);
        if (hop.fee >= PPM) revert InvalidFee(i, hop.fee);
        bytes32 initCodeHash = initCodeHashOf[hop.factory][hop.kind];
        if (initCodeHash == bytes32(0)) revert FactoryNotAllowed(i, hop.factory, hop.kind);
        address expected = _computePool(hop.kind, hop.factory, initCodeHash, hop.tokenIn, hop.tokenOut, hop.fee);
        if (hop.pool != expected) revert PoolNotGenuine(i, hop.pool, expected);
    }

    /// @dev The caller must be the pool we are swapping with right now; forget it at once so it
    ///      cannot call back twice.
    function _consumeCallback() private {
        address expected = expectedCaller;
        if (expected == address(0) || msg.sender != expected) revert UnexpectedCallback(msg.sender);
        expectedCaller = address(0);
    }

    /// @dev Recompute the hop's pool with CREATE2 from its allow-listed factory; it must be the caller.
    function _verifyCaller(Hop memory hop) private view {
        bytes32 initCodeHash = initCodeHashOf[hop.factory][hop.kind];
        if (
            initCodeHash == bytes32(0)
                || msg.sender != _computePool(hop.kind, hop.factory, initCodeHash, hop.tokenIn, hop.tokenOut, hop.fee)
        ) revert UnexpectedCallback(msg.sender);
    }

    /// @dev Inside the first pool's callback: run hops 1..n-1 on `received`, then repay `owed`.
    function _finishFlash(Hop[] memory hops, uint256 received, uint256 owed) private {
        uint256 n = hops.length;
        uint256 amount = received;
        // A V3 first hop sent its output straight to a V2 second hop.
        bool delivered = hops[0].kind == Kind.V3 && hops[1].kind == Kind.V2;
        for (uint256 i = 1; i < n; ++i) {
            Hop memory hop = hops[i];
            bool last = i + 1 == n;
            address to = last ? address(this) : _recipientAfter(hops[i + 1].kind, hops[i + 1].pool);
            if (hop.kind == Kind.V2) {
                if (!delivered) _transfer(hop.tokenIn, hop.pool, amount);
                amount = _swapV2(hop, amount, to);
            } else {
                amount = _swapV3(hop, amount, to);
            }
            if (amount < hop.amountOut) revert InsufficientOutput(i, amount, hop.amountOut);
            delivered = to != address(this);
        }
        if (amount < owed) revert InsufficientReturn(amount, owed);
        _transfer(hops[0].tokenIn, msg.sender, owed);
    }

    /// @dev Where a hop should send its output: straight into the next hop's V2 pair, else here.
    ///      (The last hop always pays us: the first pool is repaid and the profit kept from its output.)
    function _recipientAfter(Kind nextKind, address nextPool) private view returns (address) {
        return nextKind == Kind.V2 ? nextPool : address(this);
    }

    function _swapV2(Hop memory hop, uint256 amountIn, address to) private returns (uint256 out) {
        bool zeroForOne = hop.tokenIn < hop.tokenOut;
        out = _v2AmountOut(hop.pool, amountIn, zeroForOne, hop.fee);
        (uint256 out0, uint256 out1) = zeroForOne ? (uint256(0), out) : (out, uint256(0));
        IUniswapV2PairLike(hop.pool).swap(out0, out1, to, "");
    }

    function _swapV3(Hop memory hop, uint256 amountIn, address to) private returns (uint256 out) {
        bool zeroForOne = hop.tokenIn < hop.tokenOut;
        expectedCaller = hop.pool;
        (int256 amount0, int256 amount1) = IUniswapV3PoolLike(hop.pool).swap(
            to,
            zeroForOne,
            _toInt256(amountIn),
            zeroForOne ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT,
            bytes.concat(CALLBACK_PAY, abi.encode(hop))
        );
        expectedCaller = address(0);
        int256 deltaOut = zeroForOne ? amount1 : amount0;
        if (deltaOut > 0) revert InvalidCallbackData();
        out = uint256(-deltaOut);
    }

    /// @dev UniswapV2Library.getAmountOut on the 1e6 scale (identical to 997/1000 for fee 3000).
    function _v2AmountOut(address pair, uint256 amountIn, bool zeroForOne, uint24 fee)
        private
        view
        returns (uint256)
    {
        (bool ok, bytes memory ret) = pair.staticcall(abi.encodeWithSelector(IUniswapV2PairLike.getReserves.selector));
        if (!ok || ret.length < 64) revert ReservesQueryFailed(pair);
        (uint256 reserve0, uint256 reserve1) = abi.decode(ret, (uint256, uint256));
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (reserve0, reserve1) : (reserve1, reserve0);
        uint256 amountInWithFee = amountIn * (PPM - fee);
        return (amountInWithFee * reserveOut) / (reserveIn * PPM + amountInWithFee);
    }

    function _computePool(Kind kind, address factory, bytes32 initCodeHash, address tokenA, address tokenB, uint24 fee)
        private
        pure
        returns (address)
    {
        (address token0, address token1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        bytes32 salt =
            kind == Kind.V2 ? keccak256(abi.encodePacked(token0, token1)) : keccak256(abi.encode(token0, token1, fee));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), factory, salt, initCodeHash)))));
    }

    function _toInt256(uint256 x) private pure returns (int256) {
        if (x > uint256(type(int256).max)) revert AmountTooLarge(x);
        return int256(x);
    }

    function _balanceOf(address token) private view returns (uint256) {
        (bool ok, bytes memory ret) = token.staticcall(abi.encodeWithSelector(IERC20Like.balanceOf.selector, address(this)));
        if (!ok || ret.length < 32) revert BalanceQueryFailed(token);
        return abi.decode(ret, (uint256));
    }

    /// @dev ERC-20 transfer that accepts tokens returning nothing (USDT-style) and rejects `false`.
    function _transfer(address token, address to, uint256 amount) private {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(IERC20Like.transfer.selector, to, amount));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool))) || (ret.length == 0 && token.code.length == 0)) {
            revert TransferFailed(token, to, amount);
        }
    }
}

interface IERC20Like {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

interface IUniswapV2PairLike {
    function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

interface IUniswapV3PoolLike {
    function swap(
        address recipient,
        bool zeroForOne,
        int256 amountSpecified,
        uint160 sqrtPriceLimitX96,
        bytes calldata data
    ) external returns (int256 amount0, int256 amount1);
}
