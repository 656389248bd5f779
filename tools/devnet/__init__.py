"""A real local EVM chain for tests and the demo: anvil + the official Uniswap V2/V3 bytecode.

Modules (see tools/devnet/README.md):

- ``anvil``      AnvilProcess: start/stop one anvil node (free port, dies with its parent)
- ``artifacts``  official creation bytecode + ABIs from node_modules; DevToken compiled by solc-js
- ``deploy``     deploy(): the devnet market; start_devnet()/devnet(): anvil + deployment in one go
- ``actions``    ChainClient / DevnetClient: swaps, liquidity, reads, quotes, snapshots, reorgs
- ``cli``        ``alphapulse devnet``

What is not devnet-specific lives in ``chain/``: the JSON-RPC client (``chain.rpc``), the
deployment file (``chain.deployment``), ABI helpers, addresses, revert decoding and solc-js.
"""
