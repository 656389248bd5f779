"""A real local EVM chain for tests and the demo: anvil + the official Uniswap V2/V3 bytecode.

Modules (see tools/devnet/README.md):

- ``rpc``        RPC / AsyncRPC: tiny JSON-RPC clients over httpx (sync, and trio-compatible async)
- ``anvil``      AnvilProcess: start/stop one anvil node (free port, dies with its parent)
- ``artifacts``  official creation bytecode + ABIs from node_modules; DevToken compiled by solc-js
- ``deploy``     deploy(): the devnet market; start_devnet()/devnet(): anvil + deployment in one go
- ``deployment`` ChainDeployment / DeploymentFile: what is where, as frozen dataclasses and JSON
- ``actions``    ChainClient / DevnetClient: swaps, liquidity, reads, quotes, snapshots, reorgs
- ``cli``        ``alphapulse devnet``
"""
