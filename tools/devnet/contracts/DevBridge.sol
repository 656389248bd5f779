// SPDX-License-Identifier: MIT
// The AlphaPulse devnet's bridge stand-in, one contract per chain, modelled on USDC's CCTP fast
// transfers (specs/bridge-standin.md): `send` locks tokens on the source chain and emits
// TransferSent with this chain's next nonce; on the destination, the relayer (and nobody else)
// calls `complete`, which releases the amount less the relayer's fee from the bridge's liquidity,
// once per (source chain, nonce). Never deploy this anywhere but a throwaway local chain.
pragma solidity ^0.8.20;

contract DevBridge {
    address public immutable relayer;
    uint64 public nextNonce;
    // (source chain id, nonce) -> completed here: the replay protection.
    mapping(uint256 => mapping(uint64 => bool)) public completed;

    event TransferSent(uint64 indexed nonce, uint256 indexed dstChainId, address indexed token,
                       address sender, address recipient, uint256 amount);
    event TransferCompleted(uint256 indexed srcChainId, uint64 indexed nonce, address indexed token,
                            address recipient, uint256 received, uint256 fee);

    constructor(address relayer_) {
        relayer = relayer_;
    }

    function send(address token, uint256 amount, uint256 dstChainId, address recipient)
        external returns (uint64 nonce)
    {
        require(amount > 0, "DevBridge: zero amount");
        require(dstChainId != block.chainid, "DevBridge: same chain");
        require(recipient != address(0), "DevBridge: zero recipient");
        nonce = nextNonce++;
        _call(token, abi.encodeWithSelector(0x23b872dd, msg.sender, address(this), amount)); // transferFrom
        emit TransferSent(nonce, dstChainId, token, msg.sender, recipient, amount);
    }

    function complete(uint256 srcChainId, uint64 nonce, address token, address recipient, uint256 amount,
                      uint256 fee) external {
        require(msg.sender == relayer, "DevBridge: not the relayer");
        require(!completed[srcChainId][nonce], "DevBridge: already completed");
        require(fee <= amount, "DevBridge: fee above amount");
        completed[srcChainId][nonce] = true;
        _call(token, abi.encodeWithSelector(0xa9059cbb, recipient, amount - fee)); // transfer
        emit TransferCompleted(srcChainId, nonce, token, recipient, amount - fee, fee);
    }

    function _call(address token, bytes memory data) private {
        (bool ok, bytes memory ret) = token.call(data);
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "DevBridge: token transfer failed");
    }
}
