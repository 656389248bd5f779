// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title AlphaPulseArb (v2: packed path, gas-lean, Uniswap V4)
/// @notice Executes one cyclic arbitrage path across Uniswap V2 pairs (and forks with the same swap
///         interface), Uniswap V3 pools and Uniswap V4 pools atomically, with no upfront capital.
///         The profit (in the start token) goes to `recipient`; the transaction reverts unless it
///         reaches `minProfit`.
///
/// Packed path (the only argument of `execute`), big-endian, no padding:
///   header  33 bytes  amountIn uint128 | minProfit uint128 | n uint8 (number of hops, >= 2)
///   hop i   83 bytes  tokenIn address | kind uint8 (0 V2, 1 V3, 2 V4) | fee uint24 (pips)
///                     | tickSpacing int24 (V4, else 0) | pool address (V4: the hooks)
///                     | factory address (V4: the PoolManager) | minOut uint128 (0 = unchecked)
///   trailer 20 bytes  the last hop's tokenOut (must be hop 0's tokenIn: a cycle)
/// Hop i swaps tokenIn(i) for tokenIn(i+1) (the trailer for the last hop).
///
/// Three ways to run a cycle, chosen on chain from the kinds of the hops; in each, tokens move
/// from pool to pool wherever the pools allow it, and only the start token passes through here:
///   * REVERSE (every hop but the last is V2; the last is V2 or V3): all V2 outputs are computed
///     up front from the reserves; the LAST pool lends the start token (V2 flash swap / V3 swap
///     paid in its callback); inside its callback this contract pays the first pair, and each V2
///     pair sends its output straight into the next pool (the last one is paid that way).
///   * FORWARD (otherwise, without V4): the first pool lends (V2 flash swap or V3 swap); the rest
///     runs in its callback, a hop's output going straight into the next V2 pair when there is one.
///   * UNLOCK (any V4 hop): everything runs inside `PoolManager.unlock`; the PoolManager is the
///     flash lender and the clearing house (V4 swaps only move deltas; other pools are paid with
///     `take` and pay back into it with `sync`/`settle`); the profit is `take`n to the recipient.
/// A separate mode, not a flash arbitrage: INVENTORY (`executeFromInventory`, V2 hops only) pays
/// the first pair from the start token this contract holds; the pairs send pool to pool, the last
/// one back here, and the gain goes to the recipient (no lender, no callback).
///
/// One-hop swaps from inventory (`swap(Hop, deadline)`): the DEX leg of a CEX-DEX arbitrage
/// (specs/cex-legs.md) is a single exact-input swap of tokens this contract holds (the on-chain
/// inventory), not a cycle: `hop.amountIn` of `hop.tokenIn` goes in, at least `hop.amountOut` of
/// `hop.tokenOut` must come out and stays here; the transaction reverts after `deadline` (unix
/// seconds), so a leg that was given up for lost can never be mined later. V2/V3 pools only.
///
/// Safety: `execute` and `swap` are owner-only and pausable. Every V2/V3 pool is the CREATE2 address of an
/// allow-listed factory (with the init-code hash the owner registered) and every V4 hop names an
/// allow-listed PoolManager, checked before any swap. A callback is accepted only from the address
/// this contract itself is calling at that moment (a transient slot set just before the call to a
/// verified pool / PoolManager and consumed by the callback). The profit is computed from the
/// pools' amounts (never from `balanceOf`), sent to the recipient, and what the recipient actually
/// received (its balance change, never more than was sent) is what is reported and checked
/// against `minProfit`. The recipient resets to the new owner on an ownership handover.
contract AlphaPulseArb {
    // ------------------------------------------------------------------------------------------
    // Types and constants
    // ------------------------------------------------------------------------------------------
    enum Kind {
        V2,
        V3,
        V4,
        CURVE
    }

    /// @dev `swap`'s argument (ABI-encoded; `execute` takes the packed path instead).
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
    // TickMath MIN_SQRT_PRICE + 1 and MAX_SQRT_PRICE - 1 (V3 and V4): "no price limit".
    uint256 private constant MIN_SQRT_PRICE_LIMIT = 4295128739 + 1;
    uint256 private constant MAX_SQRT_PRICE_LIMIT = 1461446703485210103287273052203988822378723970342 - 1;

    uint256 private constant HEADER = 33;
    uint256 private constant HOP = 83;
    uint256 private constant TRAILER = 20;

    // First byte of the data handed to a pool (its callback's mode).
    uint256 private constant MODE_FORWARD = 1; // first pool lends: run hops 1.., repay it
    uint256 private constant MODE_PAY = 2; // a V3 hop inside FORWARD: pay its input from here
    uint256 private constant MODE_REVERSE = 3; // last pool lends: pay pair 0, run the V2 hops
    uint256 private constant MODE_PAY_FROM_MANAGER = 4; // a V3 hop inside UNLOCK: the PoolManager pays

    // Selectors of what this contract calls.
    bytes4 private constant GET_RESERVES = 0x0902f1ac; // getReserves()
    bytes4 private constant V2_SWAP = 0x022c0d9f; // swap(uint256,uint256,address,bytes)
    bytes4 private constant V3_SWAP = 0x128acb08; // swap(address,bool,int256,uint160,bytes)
    bytes4 private constant PM_UNLOCK = 0x48c89491; // unlock(bytes)
    // swap((address,address,uint24,int24,address),(bool,int256,uint160),bytes)
    bytes4 private constant PM_SWAP = 0xf3cd914c;
    bytes4 private constant PM_TAKE = 0x0b0d9c09; // take(address,address,uint256)
    bytes4 private constant PM_SYNC = 0xa5841194; // sync(address)
    bytes4 private constant PM_SETTLE = 0x11da60b4; // settle()
    bytes4 private constant CURVE_EXCHANGE = 0x3df02124; // exchange(int128,int128,uint256,uint256)
    // flashLoan(address,address[],uint256[],bytes) (Balancer V2 Vault)
    bytes4 private constant VAULT_FLASH_LOAN = 0x5c38449e;

    // ------------------------------------------------------------------------------------------
    // State. The configuration an execution needs (owner, recipient, Balancer Vault, allow-list)
    // lives in the code of a data contract this contract deploys (`config`) and redeploys on every
    // change: one cold code read (EXTCODECOPY, 2,600) replaces one cold SLOAD (2,100) per item
    // (owner, recipient, every factory of the path). `config` and `paused` share slot 0: one SLOAD.
    // ------------------------------------------------------------------------------------------
    /// @dev The data contract holding the configuration in its code (see CFG_* below).
    address private config;
    bool public paused;
    address public pendingOwner;

    // The config contract's code: a STOP byte (calling it does nothing), then
    //   owner (20) | recipient (20) | balancerVault (20) | log2 of the bucket count (1)
    //   | buckets (53 each): factory (20) | kind (1) | initCodeHash (32); factory 0 = empty.
    // The allow-list is an open-addressing hash table (key: factory and kind, linear probing), at
    // most half full, so a lookup reads one bucket or two.
    uint256 private constant CFG_HEADER = 1;
    uint256 private constant CFG_HEADER_LEN = 61;
    uint256 private constant CFG_TABLE = 62;
    uint256 private constant CFG_BUCKET = 53;
    uint256 private constant MAX_CODE_SIZE = 24_576; // EIP-170

    /// @dev One allow-list entry (admin paths only).
    struct Entry {
        address factory;
        uint256 kind;
        bytes32 initCodeHash;
    }

    /// @dev The only address whose callback is accepted right now (0 = none).
    address private transient expectedCaller;
    /// @dev The cycle's gross result (start-token amount left after repaying the lender), handed
    ///      from the lender's callback back to `execute`.
    uint256 private transient cycleResult;

    // ------------------------------------------------------------------------------------------
    // Events and errors
    // ------------------------------------------------------------------------------------------
    /// @notice One arbitrage cycle executed: `profit` units of `token` (the start token) reached
    ///         `recipient`; `amountIn` is the amount of `token` put through the cycle.
    event ArbitrageExecuted(address indexed token, address indexed recipient, uint256 amountIn, uint256 profit);
    /// @notice One swap from inventory: `amountIn` of `tokenIn` sold for `amountOut` of `tokenOut`.
    event Swapped(address indexed tokenIn, address indexed tokenOut, uint256 amountIn, uint256 amountOut);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event RecipientSet(address indexed recipient);
    event FactorySet(address indexed factory, Kind indexed kind, bytes32 initCodeHash);
    event BalancerVaultSet(address indexed vault);
    event Paused(address account);
    event Unpaused(address account);

    error NotOwner(address caller);
    error NotPendingOwner(address caller);
    error EnforcedPause();
    error ExpectedPause();
    error ZeroAddress();
    error PathTooShort(uint256 length);
    /// @dev The packed path's length does not match its hop count, or a hop's kind is unknown, or
    ///      V4 hops name different PoolManagers.
    error MalformedPath();
    /// @dev tokenIn == tokenOut, or the last hop does not return to the start token.
    error BrokenPath(uint256 hop);
    error InvalidFee(uint256 hop, uint24 fee);
    error FactoryNotAllowed(uint256 hop, address factory, Kind kind);
    error PoolNotGenuine(uint256 hop, address pool, address expected);
    error ZeroAmountIn();
    /// @dev A callback from anything but the pool / PoolManager this contract is calling right now.
    error UnexpectedCallback(address caller);
    /// @dev A V2 callback for a swap this contract did not initiate.
    error UnexpectedInitiator(address initiator);
    error InvalidCallbackData();
    error InsufficientOutput(uint256 hop, uint256 amountOut, uint256 minAmountOut);
    /// @dev The cycle returned less than the lender must be repaid.
    error InsufficientReturn(uint256 amountReturned, uint256 amountOwed);
    error InsufficientProfit(uint256 profit, uint256 minProfit);
    error TransferFailed(address token, address to, uint256 amount);
    error BalanceQueryFailed(address token);
    error ReservesQueryFailed(address pair);
    /// @dev A swap from inventory mined after its deadline.
    error DeadlinePassed(uint256 deadline, uint256 timestamp);
    /// @dev A call to a pool or the PoolManager reverted: its revert data is bubbled up as is.
    error CallFailed(address target);
    /// @dev `executeBalancer` without a configured Vault.
    error NoFlashLender();
    error ApproveFailed(address token, address spender);
    /// @dev The allow-list cannot grow further: its table (at most half full) would not fit in the
    ///      code of one contract (EIP-170, 24,576 bytes): 127 entries at most.
    error AllowListFull(uint256 entries);

    modifier onlyOwner() {
        (address owner_,,,) = _header(config);
        if (msg.sender != owner_) revert NotOwner(msg.sender);
        _;
    }

    constructor(address recipient_) {
        if (recipient_ == address(0)) revert ZeroAddress();
        _store(msg.sender, recipient_, address(0), new Entry[](0));
        emit OwnershipTransferred(address(0), msg.sender);
        emit RecipientSet(recipient_);
    }

    // ------------------------------------------------------------------------------------------
    // Execution
    // ------------------------------------------------------------------------------------------
    /// @notice Execute one arbitrage cycle (packed `path`, see the contract's header); reverts
    ///         unless the profit the recipient receives is at least the path's `minProfit`.
    /// @return profit what the recipient received, in the start token
    function execute(bytes calldata path) external returns (uint256 profit) {
        return _execute(path, false);
    }

    /// @notice Execute one arbitrage cycle with the start token borrowed from the Balancer V2 Vault
    ///         (FLASH_BALANCER: for paths whose first hop cannot lend, e.g. a Curve hop). The Vault
    ///         lends `amountIn` and calls `receiveFlashLoan`, where every hop runs with the tokens in
    ///         hand and the Vault is repaid with its fee. No V4 hop. Same checks and result as `execute`.
    function executeBalancer(bytes calldata path) external returns (uint256 profit) {
        return _execute(path, true);
    }

    /// @notice Execute one cycle of V2 hops only from this contract's own inventory of the start
    ///         token (INVENTORY: no flash loan; a separate mode, for a bot that keeps the start token
    ///         here). The contract pays the first pair `amountIn`, each pair sends its output (computed
    ///         up front from the reserves) straight into the next one and the last back here, and
    ///         the gain over `amountIn` goes to the recipient; no pool calls back. Same checks and
    ///         result as `execute`; reverts (`TransferFailed`) unless the contract holds `amountIn`.
    function executeFromInventory(bytes calldata path) external returns (uint256 profit) {
        address cfg = config;
        (address owner_, address to,, uint256 mask) = _header(cfg);
        if (msg.sender != owner_) revert NotOwner(msg.sender);
        if (paused) revert EnforcedPause();
        uint256 p;
        uint256 n;
        assembly ("memory-safe") {
            p := path.offset
            n := byte(0, calldataload(add(p, 32)))
        }
        if (n < 2) revert PathTooShort(n);
        if (path.length != HEADER + HOP * n + TRAILER) revert MalformedPath();
        (bool allV2Prefix, address manager) = _checkPath(p, n, cfg, mask);
        if (!allV2Prefix || manager != address(0) || _kind(p, n - 1) != uint256(Kind.V2)) revert MalformedPath();
        uint256 amountIn = _word128(p);
        if (amountIn == 0) revert ZeroAmountIn();
        address token = _tokenIn(p, 0);
        uint256 amount = amountIn;
        address pool = _pool(p, 0);
        _transfer(token, pool, amountIn);
        for (uint256 i; i < n; ++i) {
            bool zeroForOne = _zeroForOne(p, i);
            amount = _v2AmountOut(pool, amount, zeroForOne, _fee(p, i));
            uint256 minOut = _minOut(p, i);
            if (amount < minOut) revert InsufficientOutput(i, amount, minOut);
            address next = i + 1 < n ? _pool(p, i + 1) : address(this);
            _v2Swap(pool, zeroForOne, amount, next, "");
            pool = next;
        }
        if (amount < amountIn) revert InsufficientReturn(amount, amountIn);
        profit = _payRecipient(token, to, amount - amountIn);
        uint256 minProfit = _word128(p + 16);
        if (profit < minProfit) revert InsufficientProfit(profit, minProfit);
        emit ArbitrageExecuted(token, to, amountIn, profit);
    }

    function _execute(bytes calldata path, bool viaBalancer) private returns (uint256 profit) {
        address cfg = config;
        (address owner_, address to, address vault, uint256 mask) = _header(cfg);
        if (msg.sender != owner_) revert NotOwner(msg.sender);
        if (paused) revert EnforcedPause();
        uint256 p;
        uint256 n;
        assembly ("memory-safe") {
            p := path.offset
            n := byte(0, calldataload(add(p, 32)))
        }
        if (n < 2) revert PathTooShort(n);
        if (path.length != HEADER + HOP * n + TRAILER) revert MalformedPath();
        (bool allV2Prefix, address manager) = _checkPath(p, n, cfg, mask);
        uint256 amountIn = _word128(p);
        if (amountIn == 0) revert ZeroAmountIn();
        address token = _tokenIn(p, 0);

        if (viaBalancer) {
            if (manager != address(0)) revert MalformedPath();
            if (vault == address(0)) revert NoFlashLender();
            address[] memory tokens = new address[](1);
            tokens[0] = token;
            uint256[] memory amounts = new uint256[](1);
            amounts[0] = amountIn;
            expectedCaller = vault;
            _call(vault, abi.encodeWithSelector(VAULT_FLASH_LOAN, address(this), tokens, amounts, path));
            profit = _payRecipient(token, to, cycleResult);
        } else if (manager != address(0)) {
            bytes memory unlockData = _unlockCall(to, path);
            expectedCaller = manager;
            _call(manager, unlockData);
            profit = cycleResult; // already taken to the recipient inside the unlock
        } else {
            if (allV2Prefix) _startReverse(p, n, amountIn, path);
            else _startForward(p, n, amountIn, path);
            profit = _payRecipient(token, to, cycleResult);
        }
        // Every lender calls back exactly once, which consumes the permission.
        if (expectedCaller != address(0)) revert InvalidCallbackData();
        uint256 minProfit = _word128(p + 16);
        if (profit < minProfit) revert InsufficientProfit(profit, minProfit);
        emit ArbitrageExecuted(token, to, amountIn, profit);
    }

    /// @notice One exact-input swap from this contract's inventory (the DEX leg of a CEX-DEX trade):
    ///         `hop.amountIn` of `hop.tokenIn` for at least `hop.amountOut` of `hop.tokenOut`, which
    ///         stays here. Reverts after `deadline` (unix seconds). V2 and V3 pools.
    /// @return amountOut received
    function swap(Hop calldata hop, uint256 deadline) external returns (uint256 amountOut) {
        address cfg = config;
        (address owner_,,, uint256 mask) = _header(cfg);
        if (msg.sender != owner_) revert NotOwner(msg.sender);
        if (paused) revert EnforcedPause();
        if (block.timestamp > deadline) revert DeadlinePassed(deadline, block.timestamp);
        address tokenIn = hop.tokenIn;
        address tokenOut = hop.tokenOut;
        if (tokenIn == tokenOut) revert BrokenPath(0);
        if (hop.kind >= Kind.V4) revert MalformedPath();
        _checkPool(0, hop.kind, hop.factory, hop.pool, tokenIn, tokenOut, hop.fee, cfg, mask);
        uint256 amountIn = hop.amountIn;
        if (amountIn == 0) revert ZeroAmountIn();
        uint256 outBefore = _balanceOf(tokenOut, address(this));
        bool zeroForOne = tokenIn < tokenOut;
        if (hop.kind == Kind.V2) {
            _transfer(tokenIn, hop.pool, amountIn);
            _v2Swap(hop.pool, zeroForOne, _v2AmountOut(hop.pool, amountIn, zeroForOne, hop.fee), address(this), "");
        } else {
            expectedCaller = hop.pool;
            _v3Swap(hop.pool, address(this), zeroForOne, amountIn, abi.encodePacked(uint8(MODE_PAY), tokenIn, zeroForOne));
            if (expectedCaller != address(0)) revert InvalidCallbackData();
        }
        amountOut = _balanceOf(tokenOut, address(this)) - outBefore;
        if (amountOut < hop.amountOut) revert InsufficientOutput(0, amountOut, hop.amountOut);
        emit Swapped(tokenIn, tokenOut, amountIn, amountOut);
    }

    /// @notice Uniswap V2 flash-swap callback: the lending pair of a FORWARD or REVERSE cycle.
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        _consumeCallback();
        if (sender != address(this)) revert UnexpectedInitiator(sender);
        (uint256 mode, uint256 p, uint256 n) = _callbackPath(data);
        if (mode == MODE_FORWARD) {
            uint256 received = _zeroForOne(p, 0) ? amount1 : amount0;
            _finishForward(p, n, received, _word128(p));
        } else if (mode == MODE_REVERSE) {
            uint256 received = _zeroForOne(p, n - 1) ? amount1 : amount0;
            _finishReverse(p, n, received);
        } else {
            revert InvalidCallbackData();
        }
    }

    /// @notice Uniswap V3 swap callback: the lender of a cycle, or a later hop asking to be paid.
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        _consumeCallback();
        if (data.length == 0) revert InvalidCallbackData();
        uint256 mode = uint8(data[0]);
        if (mode == MODE_PAY || mode == MODE_PAY_FROM_MANAGER) {
            // data = mode | tokenIn (20) | zeroForOne (1) [| PoolManager (20)]
            address tokenIn = address(bytes20(data[1:21]));
            int256 owed = data[21] != 0 ? amount0Delta : amount1Delta;
            if (owed <= 0) revert InvalidCallbackData();
            if (mode == MODE_PAY) {
                _transfer(tokenIn, msg.sender, uint256(owed));
            } else {
                _take(address(bytes20(data[22:42])), tokenIn, msg.sender, uint256(owed));
            }
            return;
        }
        (, uint256 p, uint256 n) = _callbackPath(data);
        uint256 lender = mode == MODE_REVERSE ? n - 1 : 0;
        (int256 deltaIn, int256 deltaOut) =
            _zeroForOne(p, lender) ? (amount0Delta, amount1Delta) : (amount1Delta, amount0Delta);
        if (deltaIn <= 0 || deltaOut > 0) revert InvalidCallbackData();
        uint256 received = uint256(-deltaOut);
        uint256 minOut = _minOut(p, lender);
        if (received < minOut) revert InsufficientOutput(lender, received, minOut);
        if (mode == MODE_FORWARD) {
            _finishForward(p, n, received, uint256(deltaIn));
        } else if (mode == MODE_REVERSE) {
            // The last hop's exact input, computed up front, must be what the pool asks for.
            if (uint256(deltaIn) != _reverseAmount(p, n, n - 1)) revert InvalidCallbackData();
            _finishReverse(p, n, received);
        } else {
            revert InvalidCallbackData();
        }
    }

    /// @notice Uniswap V4 PoolManager callback: the whole UNLOCK cycle runs here.
    function unlockCallback(bytes calldata data) external returns (bytes memory) {
        _consumeCallback();
        // data = recipient (20) | path
        if (data.length < 20 + HEADER) revert InvalidCallbackData();
        address to = address(bytes20(data[0:20]));
        uint256 p;
        assembly ("memory-safe") {
            p := add(data.offset, 20)
        }
        cycleResult = _runUnlocked(p, _hopCount(p), msg.sender, to);
        return "";
    }

    /// @notice Balancer V2 Vault flash-loan callback (FLASH_BALANCER): accepted only from the
    ///         configured Vault during this contract's own `flashLoan` call. Runs every hop from the
    ///         borrowed start token and repays the Vault the loan plus its fee.
    function receiveFlashLoan(
        address[] calldata tokens,
        uint256[] calldata amounts,
        uint256[] calldata feeAmounts,
        bytes calldata userData
    ) external {
        _consumeCallback();
        if (userData.length < HEADER || tokens.length != 1 || amounts.length != 1 || feeAmounts.length != 1) {
            revert InvalidCallbackData();
        }
        uint256 p;
        assembly ("memory-safe") {
            p := userData.offset
        }
        uint256 n = _hopCount(p);
        uint256 amountIn = _word128(p);
        address token = _tokenIn(p, 0);
        if (tokens[0] != token || amounts[0] != amountIn) revert InvalidCallbackData();
        uint256 amount = _runHops(p, n, 0, amountIn, false);
        uint256 owed = amountIn + feeAmounts[0];
        if (amount < owed) revert InsufficientReturn(amount, owed);
        _transfer(token, msg.sender, owed);
        cycleResult = amount - owed;
    }

    // ------------------------------------------------------------------------------------------
    // Admin
    // ------------------------------------------------------------------------------------------
    /// @notice Allow (non-zero hash) or disallow (zero hash) a factory for pools of `kind`
    ///         (for V4: a PoolManager, with any non-zero value).
    function setFactory(address factory, Kind kind, bytes32 initCodeHash) external onlyOwner {
        if (factory == address(0)) revert ZeroAddress();
        address cfg = config;
        (address owner_, address recipient_, address vault,) = _header(cfg);
        Entry[] memory entries = _entries(cfg);
        uint256 count = entries.length;
        uint256 found = count;
        for (uint256 i; i < count; ++i) {
            if (entries[i].factory == factory && entries[i].kind == uint256(kind)) found = i;
        }
        if (found < count) {
            // Replace it, or drop it (the last entry takes its place).
            if (initCodeHash != bytes32(0)) {
                entries[found].initCodeHash = initCodeHash;
            } else {
                entries[found] = entries[count - 1];
                assembly ("memory-safe") {
                    mstore(entries, sub(count, 1))
                }
            }
        } else if (initCodeHash != bytes32(0)) {
            Entry[] memory grown = new Entry[](count + 1);
            for (uint256 i; i < count; ++i) {
                grown[i] = entries[i];
            }
            grown[count] = Entry(factory, uint256(kind), initCodeHash);
            entries = grown;
        }
        _store(owner_, recipient_, vault, entries);
        emit FactorySet(factory, kind, initCodeHash);
    }

    /// @notice The Balancer V2 Vault `executeBalancer` borrows from (the zero address: none).
    function setBalancerVault(address vault) external onlyOwner {
        address cfg = config;
        (address owner_, address recipient_,,) = _header(cfg);
        _store(owner_, recipient_, vault, _entries(cfg));
        emit BalancerVaultSet(vault);
    }

    function setRecipient(address recipient_) external onlyOwner {
        if (recipient_ == address(0)) revert ZeroAddress();
        address cfg = config;
        (address owner_,, address vault,) = _header(cfg);
        _store(owner_, recipient_, vault, _entries(cfg));
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
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    /// @notice Complete the handover. The profits follow it: the recipient becomes the new owner
    ///         (who may `setRecipient` afterwards), never the previous owner's recipient.
    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotPendingOwner(msg.sender);
        address cfg = config;
        (address previous,, address vault,) = _header(cfg);
        emit OwnershipTransferred(previous, msg.sender);
        pendingOwner = address(0);
        _store(msg.sender, msg.sender, vault, _entries(cfg));
        emit RecipientSet(msg.sender);
    }

    /// @notice The owner (the only account that may execute and configure).
    function owner() external view returns (address owner_) {
        (owner_,,,) = _header(config);
    }

    /// @notice Receives the profit of every execution; reset to the new owner on a handover.
    function recipient() external view returns (address recipient_) {
        (, recipient_,,) = _header(config);
    }

    /// @notice The Balancer V2 Vault `executeBalancer` borrows from (0 = none configured); its
    ///         `receiveFlashLoan` callback is accepted only during our own `flashLoan` call.
    function balancerVault() external view returns (address vault) {
        (,, vault,) = _header(config);
    }

    /// @notice Allow-list: the init-code hash of the pools a factory deploys, per kind (0 = not
    ///         allowed). For V4 the "factory" is a PoolManager and any non-zero value allows it.
    function initCodeHashOf(address factory, Kind kind) external view returns (bytes32) {
        address cfg = config;
        (,,, uint256 mask) = _header(cfg);
        return _lookup(cfg, mask, factory, uint256(kind));
    }

    /// @notice Recover tokens sent to this contract (it holds none between executions).
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
        address cfg = config;
        (,,, uint256 mask) = _header(cfg);
        bytes32 initCodeHash = _lookup(cfg, mask, factory, uint256(kind));
        if (initCodeHash == bytes32(0) || kind >= Kind.V4) return address(0);
        return _computePool(kind, factory, initCodeHash, tokenA, tokenB, fee);
    }

    // ------------------------------------------------------------------------------------------
    // Configuration in code (see CFG_*): read on every execution, rewritten by the setters
    // ------------------------------------------------------------------------------------------
    /// @dev owner, recipient, Balancer Vault and the allow-list's bucket mask, in one code read.
    function _header(address cfg) private view returns (address owner_, address recipient_, address vault, uint256 mask) {
        uint256 bits;
        assembly ("memory-safe") {
            let m := mload(0x40)
            extcodecopy(cfg, m, CFG_HEADER, CFG_HEADER_LEN)
            owner_ := shr(96, mload(m))
            recipient_ := shr(96, mload(add(m, 20)))
            vault := shr(96, mload(add(m, 40)))
            bits := byte(0, mload(add(m, 60)))
        }
        mask = (uint256(1) << bits) - 1;
    }

    /// @dev The bucket a (factory, kind) key starts probing from.
    function _slotOf(address factory, uint256 kind, uint256 mask) private pure returns (uint256 i) {
        assembly ("memory-safe") {
            mstore(0, or(shl(96, factory), shl(88, kind)))
            i := and(keccak256(0, 21), mask)
        }
    }

    /// @dev The allow-listed init-code hash of (factory, kind), 0 if none: probe from its bucket
    ///      until the key or an empty bucket (the table always has one: it is at most half full).
    function _lookup(address cfg, uint256 mask, address factory, uint256 kind) private view returns (bytes32 h) {
        uint256 i = _slotOf(factory, kind, mask);
        assembly ("memory-safe") {
            let m := mload(0x40)
            for {} 1 {} {
                extcodecopy(cfg, m, add(CFG_TABLE, mul(i, CFG_BUCKET)), CFG_BUCKET)
                let w := mload(m)
                let f := shr(96, w)
                if iszero(f) { break }
                if and(eq(f, factory), eq(byte(20, w), kind)) {
                    h := mload(add(m, 21))
                    break
                }
                i := and(add(i, 1), mask)
            }
        }
    }

    /// @dev Every allow-list entry of the current configuration.
    function _entries(address cfg) private view returns (Entry[] memory list) {
        bytes memory code = cfg.code;
        uint256 buckets = uint256(uint8(code[CFG_TABLE - 1]));
        buckets = uint256(1) << buckets;
        list = new Entry[](buckets);
        uint256 count;
        for (uint256 i; i < buckets; ++i) {
            address f;
            uint256 k;
            bytes32 h;
            assembly ("memory-safe") {
                let o := add(add(code, 32), add(CFG_TABLE, mul(i, CFG_BUCKET)))
                let w := mload(o)
                f := shr(96, w)
                k := byte(20, w)
                h := mload(add(o, 21))
            }
            if (f != address(0)) list[count++] = Entry(f, k, h);
        }
        assembly ("memory-safe") {
            mstore(list, count)
        }
    }

    /// @dev Deploy a new configuration (its code: STOP, the header, the hash table) and point
    ///      `config` at it. The creation code returns everything after its 14-byte prefix.
    function _store(address owner_, address recipient_, address vault, Entry[] memory entries) private {
        uint256 bits;
        while ((uint256(1) << bits) <= 2 * entries.length) ++bits;
        uint256 mask = (uint256(1) << bits) - 1;
        uint256 runtime = CFG_TABLE + CFG_BUCKET * (mask + 1);
        if (runtime > MAX_CODE_SIZE) revert AllowListFull(entries.length);
        bytes memory init = new bytes(14 + runtime);
        address created;
        assembly ("memory-safe") {
            let c := add(init, 32)
            // PUSH4 runtime, DUP1, PUSH1 14, PUSH1 0, CODECOPY, PUSH1 0, RETURN
            mstore(c, or(shl(248, 0x63), or(shl(216, runtime), shl(144, 0x80600e6000396000f3))))
            let d := add(c, 14) // runtime code: d[0] = STOP (0, already zero)
            mstore(add(d, 1), shl(96, owner_))
            mstore(add(d, 21), shl(96, recipient_))
            mstore(add(d, 41), shl(96, vault))
            mstore8(add(d, 61), bits)
        }
        for (uint256 e; e < entries.length; ++e) {
            Entry memory entry = entries[e];
            uint256 i = _slotOf(entry.factory, entry.kind, mask);
            assembly ("memory-safe") {
                let table := add(add(init, 32), add(14, CFG_TABLE))
                for {} 1 {} {
                    let o := add(table, mul(i, CFG_BUCKET))
                    if iszero(shr(96, mload(o))) {
                        mstore(o, or(shl(96, mload(entry)), shl(88, mload(add(entry, 32)))))
                        mstore(add(o, 21), mload(add(entry, 64)))
                        break
                    }
                    i := and(add(i, 1), mask)
                }
            }
        }
        assembly ("memory-safe") {
            created := create(0, add(init, 32), mload(init))
        }
        if (created == address(0)) revert CallFailed(address(0));
        config = created;
    }

    // ------------------------------------------------------------------------------------------
    // Path checks and packed-path readers (p = calldata offset of the path's first byte)
    // ------------------------------------------------------------------------------------------
    /// @dev Every hop: distinct tokens, the cycle closes, fee below 100 %, allow-listed factory,
    ///      genuine pool. Returns whether every hop but the last is V2 (REVERSE is possible) and
    ///      the PoolManager of the V4 hops (0 without any).
    function _checkPath(uint256 p, uint256 n, address cfg, uint256 mask)
        private
        view
        returns (bool allV2Prefix, address manager)
    {
        allV2Prefix = true;
        bool curve;
        address start = _tokenIn(p, 0);
        for (uint256 i; i < n; ++i) {
            address tokenIn = _tokenIn(p, i);
            address tokenOut = _tokenIn(p, i + 1);
            if (tokenIn == tokenOut || (i + 1 == n && tokenOut != start)) revert BrokenPath(i);
            uint256 h = p + HEADER + HOP * i;
            uint256 k;
            uint24 fee;
            address pool;
            address factory;
            assembly ("memory-safe") {
                k := byte(20, calldataload(h))
                fee := shr(232, calldataload(add(h, 21)))
                pool := shr(96, calldataload(add(h, 27)))
                factory := shr(96, calldataload(add(h, 47)))
            }
            if (k > uint256(Kind.CURVE)) revert MalformedPath();
            Kind kind = Kind(k);
            _checkPool(i, kind, factory, pool, tokenIn, tokenOut, fee, cfg, mask);
            if (kind == Kind.V4) {
                if (manager == address(0)) manager = factory;
                else if (manager != factory) revert MalformedPath();
            }
            if (kind != Kind.V2 && i + 1 < n) allV2Prefix = false;
            if (kind == Kind.CURVE) curve = true;
        }
        // A Curve pool cannot lend (REVERSE's last hop) and is not run inside a V4 unlock.
        if (curve) {
            if (manager != address(0)) revert MalformedPath();
            allV2Prefix = false;
        }
    }

    /// @dev Hop i's fee is below 100 %, its factory allow-listed for its kind, and (V2/V3) its
    ///      pool the CREATE2 address of that factory for the two tokens (and fee).
    function _checkPool(
        uint256 i,
        Kind kind,
        address factory,
        address pool,
        address tokenIn,
        address tokenOut,
        uint24 fee,
        address cfg,
        uint256 mask
    ) private view {
        if (fee >= PPM) revert InvalidFee(i, fee);
        bytes32 initCodeHash = _lookup(cfg, mask, factory, uint256(kind));
        if (initCodeHash == bytes32(0)) revert FactoryNotAllowed(i, factory, kind);
        if (kind == Kind.CURVE) {
            // A Curve hop names the allow-listed pool itself as its factory.
            if (pool != factory) revert PoolNotGenuine(i, pool, factory);
        } else if (kind != Kind.V4) {
            address expected = _computePool(kind, factory, initCodeHash, tokenIn, tokenOut, fee);
            if (pool != expected) revert PoolNotGenuine(i, pool, expected);
        }
    }

    function _hopCount(uint256 p) private pure returns (uint256 n) {
        assembly ("memory-safe") {
            n := byte(0, calldataload(add(p, 32)))
        }
    }

    function _word128(uint256 offset) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(128, calldataload(offset))
        }
    }

    /// @dev tokenIn of hop i; i == n gives the trailer (the last hop's tokenOut).
    function _tokenIn(uint256 p, uint256 i) private pure returns (address t) {
        assembly ("memory-safe") {
            t := shr(96, calldataload(add(add(p, HEADER), mul(HOP, i))))
        }
    }

    function _kind(uint256 p, uint256 i) private pure returns (uint256 k) {
        assembly ("memory-safe") {
            k := byte(20, calldataload(add(add(p, HEADER), mul(HOP, i))))
        }
    }

    function _fee(uint256 p, uint256 i) private pure returns (uint256 f) {
        assembly ("memory-safe") {
            f := shr(232, calldataload(add(add(p, add(HEADER, 21)), mul(HOP, i))))
        }
    }

    function _pool(uint256 p, uint256 i) private pure returns (address a) {
        assembly ("memory-safe") {
            a := shr(96, calldataload(add(add(p, add(HEADER, 27)), mul(HOP, i))))
        }
    }

    function _minOut(uint256 p, uint256 i) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(128, calldataload(add(add(p, add(HEADER, 67)), mul(HOP, i))))
        }
    }

    function _zeroForOne(uint256 p, uint256 i) private pure returns (bool) {
        return _tokenIn(p, i) < _tokenIn(p, i + 1);
    }

    /// @dev The data a lending pool hands back to its callback: mode | path [| amounts].
    function _callbackPath(bytes calldata data) private pure returns (uint256 mode, uint256 p, uint256 n) {
        if (data.length < 1 + HEADER) revert InvalidCallbackData();
        assembly ("memory-safe") {
            mode := byte(0, calldataload(data.offset))
            p := add(data.offset, 1)
            n := byte(0, calldataload(add(p, 32)))
        }
    }

    /// @dev REVERSE: the input of hop i (i >= 1), computed up front and appended to the path.
    function _reverseAmount(uint256 p, uint256 n, uint256 i) private pure returns (uint256 v) {
        uint256 offset = p + HEADER + HOP * n + TRAILER + 32 * (i - 1);
        assembly ("memory-safe") {
            v := calldataload(offset)
        }
    }

    // ------------------------------------------------------------------------------------------
    // REVERSE: the last pool lends; V2 hops run pool to pool inside its callback
    // ------------------------------------------------------------------------------------------
    function _startReverse(uint256 p, uint256 n, uint256 amountIn, bytes calldata path) private {
        // data = MODE_REVERSE | path | input of hop 1 .. hop n-1 (32 bytes each)
        bytes memory data = new bytes(1 + path.length + 32 * (n - 1));
        assembly ("memory-safe") {
            mstore8(add(data, 32), MODE_REVERSE)
            calldatacopy(add(data, 33), path.offset, path.length)
        }
        uint256 amount = amountIn;
        uint256 slot = 33 + path.length;
        for (uint256 i; i + 1 < n; ++i) {
            amount = _v2AmountOut(_pool(p, i), amount, _zeroForOne(p, i), _fee(p, i));
            uint256 minOut = _minOut(p, i);
            if (amount < minOut) revert InsufficientOutput(i, amount, minOut);
            assembly ("memory-safe") {
                mstore(add(data, slot), amount)
            }
            slot += 32;
        }
        uint256 last = n - 1;
        address pool = _pool(p, last);
        bool zeroForOne = _zeroForOne(p, last);
        expectedCaller = pool;
        if (_kind(p, last) == uint256(Kind.V2)) {
            uint256 out = _v2AmountOut(pool, amount, zeroForOne, _fee(p, last));
            uint256 minOut = _minOut(p, last);
            if (out < minOut) revert InsufficientOutput(last, out, minOut);
            _v2Swap(pool, zeroForOne, out, address(this), data);
        } else {
            _v3Swap(pool, address(this), zeroForOne, amount, data);
        }
    }

    /// @dev Inside the last pool's callback, `received` start tokens in hand: pay pair 0 the
    ///      cycle's input, then each V2 pair sends its (precomputed) output into the next pool.
    function _finishReverse(uint256 p, uint256 n, uint256 received) private {
        uint256 amountIn = _word128(p);
        if (received < amountIn) revert InsufficientReturn(received, amountIn);
        _transfer(_tokenIn(p, 0), _pool(p, 0), amountIn);
        for (uint256 i; i + 1 < n; ++i) {
            _v2Swap(_pool(p, i), _zeroForOne(p, i), _reverseAmount(p, n, i + 1), _pool(p, i + 1), "");
        }
        cycleResult = received - amountIn;
    }

    // ------------------------------------------------------------------------------------------
    // FORWARD: the first pool lends; the rest runs in its callback
    // ------------------------------------------------------------------------------------------
    function _startForward(uint256 p, uint256 n, uint256 amountIn, bytes calldata path) private {
        bytes memory data = _withMode(MODE_FORWARD, path);
        address pool = _pool(p, 0);
        bool zeroForOne = _zeroForOne(p, 0);
        expectedCaller = pool;
        uint256 kind0 = _kind(p, 0);
        if (kind0 == uint256(Kind.V2)) {
            uint256 out = _v2AmountOut(pool, amountIn, zeroForOne, _fee(p, 0));
            uint256 minOut = _minOut(p, 0);
            if (out < minOut) revert InsufficientOutput(0, out, minOut);
            // A V2 flash swap calls back its `to`: the output must come here.
            _v2Swap(pool, zeroForOne, out, address(this), data);
        } else {
            // A Curve pool cannot lend: such a path needs executeBalancer.
            if (kind0 == uint256(Kind.CURVE)) revert MalformedPath();
            _v3Swap(pool, _deliverTo(p, n, 0), zeroForOne, amountIn, data);
        }
    }

    /// @dev Where hop i (not a V2 lender) sends its output: straight into the next V2 pair, else here.
    function _deliverTo(uint256 p, uint256 n, uint256 i) private view returns (address) {
        if (i + 1 < n && _kind(p, i + 1) == uint256(Kind.V2)) return _pool(p, i + 1);
        return address(this);
    }

    /// @dev Inside the first pool's callback: run hops 1..n-1 on `received`, then repay `owed`.
    function _finishForward(uint256 p, uint256 n, uint256 received, uint256 owed) private {
        // A V3 first hop sent its output straight to a V2 second hop.
        bool delivered = _kind(p, 0) != uint256(Kind.V2) && _kind(p, 1) == uint256(Kind.V2);
        uint256 amount = _runHops(p, n, 1, received, delivered);
        if (amount < owed) revert InsufficientReturn(amount, owed);
        _transfer(_tokenIn(p, 0), msg.sender, owed);
        cycleResult = amount - owed;
    }

    /// @dev Run hops `first`..n-1 on `amount` of tokenIn(first), held here (or already in hop
    ///      `first`'s V2 pair when `delivered`); returns the last hop's output, held here.
    function _runHops(uint256 p, uint256 n, uint256 first, uint256 amount, bool delivered)
        private
        returns (uint256)
    {
        for (uint256 i = first; i < n; ++i) {
            address pool = _pool(p, i);
            bool zeroForOne = _zeroForOne(p, i);
            uint256 kind = _kind(p, i);
            address to = kind == uint256(Kind.CURVE) ? address(this) : _deliverTo(p, n, i);
            if (kind == uint256(Kind.V2)) {
                if (!delivered) _transfer(_tokenIn(p, i), pool, amount);
                amount = _v2AmountOut(pool, amount, zeroForOne, _fee(p, i));
                _v2Swap(pool, zeroForOne, amount, to, "");
            } else if (kind == uint256(Kind.CURVE)) {
                amount = _curveSwap(p, i, pool, amount);
            } else {
                expectedCaller = pool;
                amount = _v3Swap(
                    pool, to, zeroForOne, amount, abi.encodePacked(uint8(MODE_PAY), _tokenIn(p, i), zeroForOne)
                );
            }
            uint256 minOut = _minOut(p, i);
            if (amount < minOut) revert InsufficientOutput(i, amount, minOut);
            delivered = to != address(this);
        }
        return amount;
    }

    /// @dev One Curve StableSwap `exchange(i, j, dx, min_dy)` from tokens held here (the coin
    ///      indices are the hop's tickSpacing bytes: i, j); the pool pulls `amountIn` and sends the
    ///      output here. The classic pool returns nothing: the output is this contract's balance
    ///      change in tokenOut (it holds none of it between executions).
    function _curveSwap(uint256 p, uint256 i, address pool, uint256 amountIn) private returns (uint256) {
        address tokenOut = _tokenIn(p, i + 1);
        uint256 ci;
        uint256 cj;
        assembly ("memory-safe") {
            let h := add(add(p, HEADER), mul(HOP, i))
            ci := byte(24, calldataload(h))
            cj := byte(25, calldataload(h))
        }
        _approve(_tokenIn(p, i), pool, amountIn);
        uint256 before = _balanceOf(tokenOut, address(this));
        _call(pool, abi.encodeWithSelector(CURVE_EXCHANGE, ci, cj, amountIn, _minOut(p, i)));
        return _balanceOf(tokenOut, address(this)) - before;
    }

    // ------------------------------------------------------------------------------------------
    // UNLOCK: inside PoolManager.unlock, the PoolManager lends and clears
    // ------------------------------------------------------------------------------------------
    /// @dev Where the running amount sits between hops.
    uint256 private constant AT_MANAGER = 0; // a credit (or the start token's debt) in the PoolManager
    uint256 private constant AT_PAIR = 1; // already in the next V2 pair

    function _runUnlocked(uint256 p, uint256 n, address manager, address to) private returns (uint256) {
        uint256 amountIn = _word128(p);
        uint256 amount = amountIn;
        uint256 where = AT_MANAGER;
        for (uint256 i; i < n; ++i) {
            uint256 kind = _kind(p, i);
            bool zeroForOne = _zeroForOne(p, i);
            address tokenIn = _tokenIn(p, i);
            address pool = _pool(p, i);
            if (kind == uint256(Kind.V4)) {
                amount = _v4Swap(manager, p, i, zeroForOne, amount);
                where = AT_MANAGER;
            } else {
                address tokenOut = _tokenIn(p, i + 1);
                bool toPair = i + 1 < n && _kind(p, i + 1) == uint256(Kind.V2);
                address dest = toPair ? _pool(p, i + 1) : manager;
                if (!toPair) _managerCall(manager, abi.encodeWithSelector(PM_SYNC, tokenOut));
                if (kind == uint256(Kind.V2)) {
                    if (where == AT_MANAGER) _take(manager, tokenIn, pool, amount);
                    amount = _v2AmountOut(pool, amount, zeroForOne, _fee(p, i));
                    _v2Swap(pool, zeroForOne, amount, dest, "");
                } else {
                    expectedCaller = pool;
                    amount = _v3Swap(
                        pool,
                        dest,
                        zeroForOne,
                        amount,
                        abi.encodePacked(uint8(MODE_PAY_FROM_MANAGER), tokenIn, zeroForOne, manager)
                    );
                }
                if (!toPair) _managerCall(manager, abi.encodeWithSelector(PM_SETTLE));
                where = toPair ? AT_PAIR : AT_MANAGER;
            }
            uint256 minOut = _minOut(p, i);
            if (amount < minOut) revert InsufficientOutput(i, amount, minOut);
        }
        if (amount < amountIn) revert InsufficientReturn(amount, amountIn);
        uint256 gross = amount - amountIn;
        if (gross == 0) return 0;
        // The profit leaves the PoolManager straight to the recipient; measure what it received.
        address token = _tokenIn(p, 0);
        uint256 before = _balanceOf(token, to);
        _take(manager, token, to, gross);
        return _received(_balanceOf(token, to), before, gross);
    }

    /// @dev One exact-input V4 swap; returns its output (a credit in the PoolManager).
    function _v4Swap(address manager, uint256 p, uint256 i, bool zeroForOne, uint256 amountIn)
        private
        returns (uint256 out)
    {
        uint256 h = p + HEADER + HOP * i;
        address a = _tokenIn(p, i);
        address b = _tokenIn(p, i + 1);
        (address c0, address c1) = zeroForOne ? (a, b) : (b, a);
        uint256 limit = zeroForOne ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT;
        if (amountIn > uint256(uint128(type(int128).max))) revert InvalidCallbackData();
        int256 delta;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, PM_SWAP)
            mstore(add(m, 0x04), c0)
            mstore(add(m, 0x24), c1)
            mstore(add(m, 0x44), shr(232, calldataload(add(h, 21)))) // fee
            mstore(add(m, 0x64), signextend(2, shr(232, calldataload(add(h, 24))))) // tickSpacing
            mstore(add(m, 0x84), shr(96, calldataload(add(h, 27)))) // hooks
            mstore(add(m, 0xa4), zeroForOne)
            mstore(add(m, 0xc4), sub(0, amountIn)) // < 0: exact input
            mstore(add(m, 0xe4), limit)
            mstore(add(m, 0x104), 0x120) // hookData offset
            mstore(add(m, 0x124), 0) // hookData length
            if iszero(call(gas(), manager, 0, m, 0x144, 0, 0x20)) {
                returndatacopy(m, 0, returndatasize())
                revert(m, returndatasize())
            }
            delta := mload(0)
        }
        int256 a0 = delta >> 128;
        int256 a1 = int256(int128(delta));
        int256 o = zeroForOne ? a1 : a0;
        if (o < 0) revert InvalidCallbackData();
        out = uint256(o);
    }

    function _take(address manager, address token, address to, uint256 amount) private {
        _managerCall(manager, abi.encodeWithSelector(PM_TAKE, token, to, amount));
    }

    function _managerCall(address manager, bytes memory data) private {
        _call(manager, data);
    }

    // ------------------------------------------------------------------------------------------
    // Pools and tokens
    // ------------------------------------------------------------------------------------------
    /// @dev Where the callback data carries the path: `prefix` then the path (copied from calldata).
    function _withMode(uint256 mode, bytes calldata path) private pure returns (bytes memory data) {
        data = new bytes(1 + path.length);
        assembly ("memory-safe") {
            mstore8(add(data, 32), mode)
            calldatacopy(add(data, 33), path.offset, path.length)
        }
    }

    /// @dev `unlock(bytes)` calldata whose data is the recipient (20 bytes) then the path, built in
    ///      one buffer: `abi.encodeWithSelector(PM_UNLOCK, abi.encodePacked(to, path))` without its
    ///      trailing zero padding (the ABI decoder reads `length` bytes), copying the path once.
    function _unlockCall(address to, bytes calldata path) private pure returns (bytes memory cd) {
        uint256 len = 20 + path.length;
        cd = new bytes(68 + len);
        assembly ("memory-safe") {
            let c := add(cd, 32)
            mstore(c, PM_UNLOCK)
            mstore(add(c, 4), 0x20)
            mstore(add(c, 36), len)
            mstore(add(c, 68), shl(96, to))
            calldatacopy(add(c, 88), path.offset, path.length)
        }
    }

    /// @dev Consume the one-shot permission to call back: the caller must be the address this
    ///      contract is calling right now.
    function _consumeCallback() private {
        address expected = expectedCaller;
        if (expected == address(0) || msg.sender != expected) revert UnexpectedCallback(msg.sender);
        expectedCaller = address(0);
    }

    /// @dev UniswapV2Library.getAmountOut on the 1e6 scale (identical to 997/1000 for fee 3000).
    function _v2AmountOut(address pair, uint256 amountIn, bool zeroForOne, uint256 fee)
        private
        view
        returns (uint256)
    {
        uint256 reserve0;
        uint256 reserve1;
        bool ok;
        assembly ("memory-safe") {
            mstore(0, GET_RESERVES)
            ok := staticcall(gas(), pair, 0, 4, 0, 0x40)
            ok := and(ok, gt(returndatasize(), 0x3f))
            reserve0 := mload(0)
            reserve1 := mload(0x20)
        }
        if (!ok) revert ReservesQueryFailed(pair);
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (reserve0, reserve1) : (reserve1, reserve0);
        uint256 amountInWithFee = amountIn * (PPM - fee);
        return (amountInWithFee * reserveOut) / (reserveIn * PPM + amountInWithFee);
    }

    function _v2Swap(address pair, bool zeroForOne, uint256 out, address to, bytes memory data) private {
        (uint256 out0, uint256 out1) = zeroForOne ? (uint256(0), out) : (out, uint256(0));
        _call(pair, abi.encodeWithSelector(V2_SWAP, out0, out1, to, data));
    }

    /// @dev Exact-input V3 swap without a price limit; returns its output.
    function _v3Swap(address pool, address to, bool zeroForOne, uint256 amountIn, bytes memory data)
        private
        returns (uint256)
    {
        if (amountIn > uint256(type(int256).max)) revert InvalidCallbackData();
        bytes memory ret = _call(
            pool,
            abi.encodeWithSelector(
                V3_SWAP, to, zeroForOne, amountIn, zeroForOne ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT, data
            )
        );
        (int256 amount0, int256 amount1) = abi.decode(ret, (int256, int256));
        int256 deltaOut = zeroForOne ? amount1 : amount0;
        if (deltaOut > 0) revert InvalidCallbackData();
        return uint256(-deltaOut);
    }

    /// @dev Call `target`; bubble up its revert data unchanged.
    function _call(address target, bytes memory data) private returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target.call(data);
        if (!ok) {
            if (ret.length == 0) revert CallFailed(target);
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function _computePool(Kind kind, address factory, bytes32 initCodeHash, address tokenA, address tokenB, uint256 fee)
        private
        pure
        returns (address pool)
    {
        (address token0, address token1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        assembly ("memory-safe") {
            let m := mload(0x40)
            let salt
            switch kind
            case 0 {
                // keccak256(abi.encodePacked(token0, token1))
                mstore(m, shl(96, token0))
                mstore(add(m, 20), shl(96, token1))
                salt := keccak256(m, 40)
            }
            default {
                // keccak256(abi.encode(token0, token1, fee))
                mstore(m, token0)
                mstore(add(m, 32), token1)
                mstore(add(m, 64), fee)
                salt := keccak256(m, 96)
            }
            // keccak256(0xff ++ factory ++ salt ++ initCodeHash)
            mstore8(m, 0xff)
            mstore(add(m, 1), shl(96, factory))
            mstore(add(m, 21), salt)
            mstore(add(m, 53), initCodeHash)
            pool := and(keccak256(m, 85), 0xffffffffffffffffffffffffffffffffffffffff)
        }
    }

    /// @dev Send the profit (if any) to the recipient; returns what the recipient received (its
    ///      balance change, capped at what was sent, so a lying `balanceOf` cannot inflate it).
    function _payRecipient(address token, address to, uint256 amount) private returns (uint256) {
        if (amount == 0) return 0;
        uint256 before = _balanceOf(token, to);
        _transfer(token, to, amount);
        return _received(_balanceOf(token, to), before, amount);
    }

    function _received(uint256 balanceAfter, uint256 balanceBefore, uint256 sent) private pure returns (uint256) {
        if (balanceAfter <= balanceBefore) return 0;
        uint256 got = balanceAfter - balanceBefore;
        return got < sent ? got : sent;
    }

    function _balanceOf(address token, address account) private view returns (uint256 bal) {
        bool ok;
        assembly ("memory-safe") {
            mstore(0, shl(224, 0x70a08231))
            mstore(4, account)
            ok := staticcall(gas(), token, 0, 0x24, 0, 0x20)
            ok := and(ok, gt(returndatasize(), 0x1f))
            bal := mload(0)
        }
        if (!ok) revert BalanceQueryFailed(token);
    }

    /// @dev ERC-20 approve (exact amount; the pool's transferFrom spends it back to zero), accepting
    ///      tokens that return nothing.
    function _approve(address token, address spender, uint256 amount) private {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, shl(224, 0x095ea7b3))
            mstore(add(m, 4), spender)
            mstore(add(m, 36), amount)
            ok := call(gas(), token, 0, m, 68, 0, 0x20)
            if ok {
                switch returndatasize()
                case 0 { ok := gt(extcodesize(token), 0) }
                default { ok := and(gt(returndatasize(), 0x1f), eq(mload(0), 1)) }
            }
        }
        if (!ok) revert ApproveFailed(token, spender);
    }

    /// @dev ERC-20 transfer that accepts tokens returning nothing (USDT-style) and rejects `false`.
    function _transfer(address token, address to, uint256 amount) private {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, shl(224, 0xa9059cbb))
            mstore(add(m, 4), to)
            mstore(add(m, 36), amount)
            ok := call(gas(), token, 0, m, 68, 0, 0x20)
            // ok if the call succeeded and returned true, or returned nothing from a contract (the
            // code size is read only then: a warm EXTCODESIZE is 100 gas per transfer)
            if ok {
                switch returndatasize()
                case 0 { ok := gt(extcodesize(token), 0) }
                default { ok := and(gt(returndatasize(), 0x1f), eq(mload(0), 1)) }
            }
        }
        if (!ok) revert TransferFailed(token, to, amount);
    }
}
