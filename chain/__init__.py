"""L1 chain: the one JSON-RPC client, ABI helpers, addresses, revert decoding, solc-js, deployment files."""
