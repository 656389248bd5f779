"""Contract addresses: EIP-55 checksums, CREATE and CREATE2 derivation, Uniswap V2 pair / V3 pool addresses.

The official Uniswap init-code hashes are stated here once: the periphery contracts (Router02,
SwapRouter, QuoterV2) and our AlphaPulseArb recompute pool addresses from them, and the npm
creation code of UniswapV2Pair / UniswapV3Pool hashes to exactly these values
(``tools.devnet.artifacts.check_init_code_hashes`` checks it on every devnet start).

web3 has ``get_create_address`` / ``get_create2_address``, but importing web3 costs seconds and
its CREATE2 helper takes the init code, not its hash; the derivations are one keccak each over
eth-utils and rlp, as web3's own are.
"""

from __future__ import annotations

from functools import lru_cache

import eth_abi
import rlp
from eth_utils import keccak, to_canonical_address, to_checksum_address

__all__ = [
    "UNISWAP_V2_INIT_CODE_HASH",
    "UNISWAP_V3_INIT_CODE_HASH",
    "checksum",
    "create2_address",
    "create_address",
    "sort_tokens",
    "v2_pair_address",
    "v3_pool_address",
]

UNISWAP_V2_INIT_CODE_HASH = bytes.fromhex("96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f")
UNISWAP_V3_INIT_CODE_HASH = bytes.fromhex("e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54")


def checksum(address: str | bytes) -> str:
    """The EIP-55 form of a 20-byte address given as hex or bytes (``eth_utils.to_checksum_address``),
    remembered: a running executor meets the same few hundred pool, factory and token addresses in every
    signal, and each checksum is a keccak (four per hop of a re-validated path were ~80 % of its
    re-validation CPU). Raises ValueError for what is not an address, as eth-utils does."""
    return _checksum(address if isinstance(address, (str, bytes)) else bytes(address))


@lru_cache(maxsize=1 << 16)
def _checksum(address: str | bytes) -> str:
    return to_checksum_address(address)


def _hash32(value: bytes | str) -> bytes:
    raw = value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def create_address(sender: str, nonce: int) -> str:
    """Address of the contract created by ``sender``'s transaction with ``nonce`` (CREATE)."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def create2_address(deployer: str, salt: bytes, init_code_hash: bytes | str) -> str:
    """CREATE2: ``keccak(0xff ++ deployer ++ salt ++ keccak(init_code))[12:]``."""
    if len(salt) != 32:
        raise ValueError(f"salt must be 32 bytes, got {len(salt)}")
    return to_checksum_address(
        keccak(b"\xff" + to_canonical_address(deployer) + salt + _hash32(init_code_hash))[12:])


def sort_tokens(a: str, b: str) -> tuple[str, str]:
    """Order two token addresses as Uniswap does (numerically); identical tokens are refused."""
    if int(a, 16) == int(b, 16):
        raise ValueError("identical tokens")
    return (a, b) if int(a, 16) < int(b, 16) else (b, a)


def v2_pair_address(factory: str, token_a: str, token_b: str,
                    init_code_hash: bytes | str = UNISWAP_V2_INIT_CODE_HASH) -> str:
    """The pair of two tokens on a Uniswap V2 factory (``UniswapV2Library.pairFor``)."""
    t0, t1 = sort_tokens(token_a, token_b)
    salt = keccak(to_canonical_address(t0) + to_canonical_address(t1))
    return create2_address(factory, salt, init_code_hash)


def v3_pool_address(factory: str, token_a: str, token_b: str, fee: int,
                    init_code_hash: bytes | str = UNISWAP_V3_INIT_CODE_HASH) -> str:
    """The pool of two tokens and a fee tier on a Uniswap V3 factory (``PoolAddress.computeAddress``)."""
    t0, t1 = sort_tokens(token_a, token_b)
    salt = keccak(eth_abi.encode(["address", "address", "uint24"],
                                 [to_canonical_address(t0), to_canonical_address(t1), fee]))
    return create2_address(factory, salt, init_code_hash)
