"""Deploy and configure our ``AlphaPulseArb`` from the executor's keystore: the one place that does
it (``alphapulse executor deploy-contract`` and the demo both call :func:`deploy_and_configure`).

    alphapulse executor deploy-contract --keystore var/executor/keystore.json \\
        --password-file var/executor/password --rpc-url-file /etc/alphapulse/rpc_url \\
        --recipient 0xYourColdWallet --factory UNISWAP_V2=0x5C69... --factory UNISWAP_V3=0x1F98... \\
        --factory CURVE=0xYourStableSwapPool --balancer-vault 0xBA12222222228d8Ba445958a75a0704d566BF2C8

What it does, in order, every transaction signed locally by the keystore's account (the owner of
the contract is whoever deploys it, so the executor's own key must send the deployment):

1. checks the node (``eth_chainId``, against ``--chain-id`` when given), the account's balance
   against the worst-case cost of every transaction (gas limit x max fee), and with ``--dry-run``
   stops there, printing the plan;
2. deploys the contract with ``constructor(recipient)`` (skipped with ``--contract``: configure an
   existing deployment we own);
3. allow-lists each factory with its kind and the official Uniswap init-code hash
   (``setFactory``), skipping those already allow-listed; a Curve StableSwap pool (venue ``CURVE``)
   is allow-listed by its own address (the contract's CURVE hops call the pool itself);
4. with ``--balancer-vault`` (with ``--deployment``: the devnet's Vault), sets the Balancer V2 Vault
   ``executeBalancer`` borrows from (``setBalancerVault``) unless it already is that Vault: paths
   whose first hop cannot flash-swap (a Curve first hop) need it;
5. reads back ``owner()``, ``recipient()``, ``initCodeHashOf`` and ``balancerVault()`` and refuses
   to report success unless they are what was asked;
6. prints the contract address and the lines to paste into the executor's configuration
   (``[executor] contract`` and one ``[[venues]]`` table per factory; Curve pools are not venues: the
   executor's ``[[curve_pools]]`` names them, with their coins and parameters).

Venues: the executor re-derives every pool address with the **official** Uniswap V2/V3 init-code
hashes (:func:`execution.calldata.compute_pool_address`), so only venues that deploy official
Uniswap pools can be allow-listed: ``UNISWAP_V2``, ``UNISWAP_V3`` and the devnet's
``DEVNET_V2_A``, ``DEVNET_V2_B``, ``DEVNET_V3`` (and the V4 PoolManagers, ``UNISWAP_V4``,
``DEVNET_V4``, and Curve pools, ``CURVE``, each allow-listed by its own address). Forks with their own
init-code hash (Sushiswap, PancakeSwap) are refused with that reason.

The RPC URL usually carries an API key: give it in a file (``--rpc-url-file``) or an environment
variable (``--rpc-url-env``); ``--rpc-url`` works but ends up in the shell history and process
list. No message printed here carries more of it than :func:`chain.rpc.redact_url` leaves.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tomli_w
from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from chain.abi import encode_call
from chain.addresses import UNISWAP_V2_INIT_CODE_HASH, UNISWAP_V3_INIT_CODE_HASH
from chain.revert import revert_data
from chain.rpc import RpcError, RpcFailure, SyncHttpRpc, redact_url, scrub
from execution.build import load_artifact
from execution.calldata import (
    CURVE_POOL_MARK,
    V4_MANAGER_MARK,
    Kind,
    decode_error,
    encode_constructor_args,
    encode_set_balancer_vault,
    encode_set_factory,
)
from execution.keystore import KeystoreError, load_account, read_password
from protocol.ids import Venue
from runtime.secrets import SecretSourceError, read_secret

__all__ = ["DeployError", "Deployed", "FactorySpec", "deploy_and_configure", "main", "parse_factory",
           "paste_lines", "set_factory_gas"]

#: the venues whose pools the executor can address (official Uniswap init-code hashes), and their kind
VENUE_KINDS: dict[Venue, Kind] = {
    Venue.UNISWAP_V2: Kind.V2, Venue.DEVNET_V2_A: Kind.V2, Venue.DEVNET_V2_B: Kind.V2,
    Venue.UNISWAP_V3: Kind.V3, Venue.DEVNET_V3: Kind.V3,
    Venue.UNISWAP_V4: Kind.V4, Venue.DEVNET_V4: Kind.V4,  # the "factory" is the PoolManager
    Venue.CURVE: Kind.CURVE,  # the "factory" is the StableSwap pool itself
}
INIT_CODE_HASH = {Kind.V2: UNISWAP_V2_INIT_CODE_HASH, Kind.V3: UNISWAP_V3_INIT_CODE_HASH, Kind.V4: V4_MANAGER_MARK,
                  Kind.CURVE: CURVE_POOL_MARK}


def set_factory_gas(entries: int) -> int:
    """A bound on one ``setFactory`` / ``setBalancerVault`` call's gas when the allow-list holds
    ``entries`` afterwards (the cost check of a dry run). Every change redeploys the configuration's
    data contract, whose code holds a hash table of at most 4 x ``entries`` buckets of 53 bytes (200
    gas a byte): ~120k for the first entry, ~265k with 7, ~810k with 20."""
    return 150_000 + 4 * 53 * 200 * entries


class DeployError(Exception):
    """The deployment or the configuration could not be done (one line, no URL secrets)."""


@dataclass(frozen=True, kw_only=True)
class FactorySpec:
    """One factory to allow-list: its venue (a ``protocol.ids.Venue``) decides the kind."""

    venue: Venue
    factory: str

    @property
    def kind(self) -> Kind:
        return VENUE_KINDS[self.venue]


def parse_factory(text: str) -> FactorySpec:
    """``VENUE=0xADDRESS`` (``UNISWAP_V2=0x5C69...``); ValueError with the reason otherwise."""
    name, sep, address = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r}: expected VENUE=0xADDRESS (e.g. UNISWAP_V3=0x1F98...)")
    try:
        venue = Venue[name.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown venue {name!r} (one of {', '.join(v.name for v in VENUE_KINDS)})") from None
    if venue not in VENUE_KINDS:
        raise ValueError(f"venue {venue.name}: the executor computes pool addresses with the official Uniswap "
                         f"init-code hashes only (one of {', '.join(v.name for v in VENUE_KINDS)})")
    try:
        factory = to_checksum_address(address.strip())
    except ValueError:
        raise ValueError(f"{name}: {address!r} is not an address") from None
    return FactorySpec(venue=venue, factory=factory)


@dataclass(frozen=True, kw_only=True)
class Fees:
    """EIP-1559 fees: ``max_fee = min(2 x base fee + tip, cap)``; the cap must cover base fee + tip."""

    tip_wei: int | None = None  # None: the node's eth_maxPriorityFeePerGas
    max_fee_wei: int | None = None  # None: no cap


@dataclass
class Deployed:
    """What :func:`deploy_and_configure` did."""

    chain_id: int
    contract: str
    owner: str
    recipient: str
    factories: tuple[FactorySpec, ...]
    transactions: list[tuple[str, str, int]] = field(default_factory=list)  # (what, tx hash, gas used)
    deployed: bool = True  # False: an existing contract was configured
    dry_run: bool = False
    cost_bound_wei: int = 0
    balancer_vault: str | None = None  # the Vault executeBalancer borrows from (None: not asked to set one)


class _Sender:
    """Signs with the keystore's account and sends through one node, waiting for each receipt."""

    def __init__(self, rpc: SyncHttpRpc, account: LocalAccount, chain_id: int, fees: Fees,
                 receipt_timeout: float, say: Callable[[str], None]) -> None:
        self.rpc, self.account, self.chain_id = rpc, account, chain_id
        self.fees, self.receipt_timeout, self.say = fees, receipt_timeout, say
        self.nonce = int(rpc.call("eth_getTransactionCount", [account.address, "pending"]), 16)

    def fee_fields(self) -> tuple[int, int]:
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        tip = self.fees.tip_wei
        if tip is None:
            try:
                tip = int(self.rpc.call("eth_maxPriorityFeePerGas", []), 16)
            except RpcError:
                tip = 10**9
        max_fee = 2 * base + tip
        if self.fees.max_fee_wei is not None:
            if self.fees.max_fee_wei < base + tip:
                raise DeployError(f"the base fee is {base / 1e9:.3f} gwei (+ tip {tip / 1e9:.3f}): above the "
                                  f"cap of {self.fees.max_fee_wei / 1e9:.3f} gwei (--max-fee-gwei); try later")
            max_fee = min(max_fee, self.fees.max_fee_wei)
        return max_fee, tip

    def estimate(self, to: str | None, data: bytes) -> int:
        call: dict[str, Any] = {"from": self.account.address, "data": "0x" + data.hex()}
        if to is not None:
            call["to"] = to
        try:
            gas = int(self.rpc.call("eth_estimateGas", [call]), 16)
        except RpcError as exc:
            raise DeployError(f"the node says it would revert: {_reason(exc)}") from None
        return gas * 6 // 5 + 20_000

    def send(self, what: str, to: str | None, data: bytes, gas: int) -> dict[str, Any]:
        max_fee, tip = self.fee_fields()
        signed = self.account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": self.nonce, "to": to or b"", "value": 0, "data": data,
            "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip,
        })
        try:
            tx_hash = str(self.rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]))
        except RpcError as exc:
            raise DeployError(f"{what}: the node refused the transaction: {exc.message}") from None
        self.nonce += 1
        self.say(f"{what}: sent {tx_hash} (nonce {self.nonce - 1}, gas limit {gas}, max fee "
                 f"{max_fee / 1e9:.3f} gwei); waiting for the receipt")
        receipt = self.wait(tx_hash)
        if int(receipt["status"], 16) != 1:
            raise DeployError(f"{what}: transaction {tx_hash} reverted (gas used {int(receipt['gasUsed'], 16)})")
        return receipt

    def wait(self, tx_hash: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.01
        while True:
            r = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if r is not None:
                return dict(r)
            if time.monotonic() > deadline:
                raise DeployError(f"no receipt for {tx_hash} after {self.receipt_timeout:g} s; it may still be "
                                  "mined: check it, then rerun with --contract ADDRESS to finish the set-up")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _reason(exc: RpcError) -> str:
    err = decode_error(revert_data(exc))
    return str(err) if err is not None else exc.message


def _call(rpc: SyncHttpRpc, to: str, data: bytes, types: Sequence[str]) -> tuple[Any, ...]:
    out = rpc.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
    return tuple(decode(list(types), bytes.fromhex(str(out).removeprefix("0x"))))


def _allowed_hash(rpc: SyncHttpRpc, contract: str, spec: FactorySpec) -> bytes:
    (h,) = _call(rpc, contract, encode_call("initCodeHashOf(address,uint8)", spec.factory, int(spec.kind)),
                 ["bytes32"])
    return bytes(h)


def _vault_of(rpc: SyncHttpRpc, contract: str) -> str:
    (vault,) = _call(rpc, contract, encode_call("balancerVault()"), ["address"])
    return to_checksum_address(vault)


def deploy_and_configure(rpc: SyncHttpRpc, account: LocalAccount, *, recipient: str,
                         factories: Sequence[FactorySpec], chain_id: int | None = None,
                         contract: str | None = None, balancer_vault: str | None = None, fees: Fees = Fees(),
                         dry_run: bool = False, receipt_timeout: float = 300.0,
                         say: Callable[[str], None] = lambda _: None) -> Deployed:
    """Deploy ``AlphaPulseArb`` (or take ``contract``) from ``account``, allow-list ``factories``, set
    the Balancer V2 Vault to ``balancer_vault`` when given, read the result back. :class:`DeployError`
    on anything the user must fix; :class:`RpcFailure` when the node does not answer."""
    node_chain = int(rpc.call("eth_chainId", []), 16)
    if chain_id is not None and chain_id != node_chain:
        raise DeployError(f"the node is chain {node_chain}, not {chain_id} (--chain-id): wrong endpoint?")
    recipient = to_checksum_address(recipient)
    if int(recipient, 16) == 0:
        raise DeployError("the recipient must not be the zero address")
    if balancer_vault is not None:
        balancer_vault = to_checksum_address(balancer_vault)
        if rpc.call("eth_getCode", [balancer_vault, "latest"]) in ("0x", "0x0", None):
            raise DeployError(f"no contract at the Balancer Vault address {balancer_vault} on chain {node_chain}")
    sender = _Sender(rpc, account, node_chain, fees, receipt_timeout, say)
    owner = account.address
    done = Deployed(chain_id=node_chain, contract=contract or "", owner=owner, recipient=recipient,
                    factories=tuple(factories), deployed=contract is None, dry_run=dry_run,
                    balancer_vault=balancer_vault)
    todo = list(factories)
    set_vault = balancer_vault is not None
    if contract is not None:
        contract = to_checksum_address(contract)
        if rpc.call("eth_getCode", [contract, "latest"]) in ("0x", "0x0", None):
            raise DeployError(f"no contract at {contract} on chain {node_chain}")
        (current_owner,) = _call(rpc, contract, encode_call("owner()"), ["address"])
        if to_checksum_address(current_owner) != owner:
            raise DeployError(f"{contract} is owned by {to_checksum_address(current_owner)}, not by the "
                              f"keystore's account {owner}")
        todo = [f for f in factories if _allowed_hash(rpc, contract, f) != INIT_CODE_HASH[f.kind]]
        set_vault = balancer_vault is not None and _vault_of(rpc, contract) != balancer_vault
    code = bytes.fromhex(load_artifact()["bytecode"].removeprefix("0x")) + encode_constructor_args(recipient)
    deploy_gas = sender.estimate(None, code) if contract is None else 0
    max_fee, _ = sender.fee_fields()
    listed = len(factories) - len(todo)  # those already allow-listed (at least)
    set_gas = sum(set_factory_gas(listed + k) for k in range(1, len(todo) + 1))
    set_gas += set_factory_gas(len(factories)) if set_vault else 0
    done.cost_bound_wei = (deploy_gas + set_gas) * max_fee
    balance = int(rpc.call("eth_getBalance", [owner, "latest"]), 16)
    if balance < done.cost_bound_wei:
        raise DeployError(f"the account {owner} holds {balance / 1e18:.6f} of the chain's coin; the deployment may "
                          f"cost up to {done.cost_bound_wei / 1e18:.6f} (gas limit x max fee): fund it first")
    if dry_run:
        return done
    if contract is None:
        receipt = sender.send("deploy AlphaPulseArb", None, code, deploy_gas)
        contract = to_checksum_address(receipt["contractAddress"])
        done.contract = contract
        done.transactions.append(("deploy", str(receipt["transactionHash"]), int(receipt["gasUsed"], 16)))
        say(f"AlphaPulseArb deployed at {contract} (block {int(receipt['blockNumber'], 16)})")
    for spec in todo:
        data = encode_set_factory(spec.factory, spec.kind)
        receipt = sender.send(f"allow-list {spec.venue.name} factory {spec.factory}", contract, data,
                              sender.estimate(contract, data))
        done.transactions.append((f"setFactory {spec.venue.name}", str(receipt["transactionHash"]),
                                  int(receipt["gasUsed"], 16)))
    if set_vault:
        assert balancer_vault is not None
        data = encode_set_balancer_vault(balancer_vault)
        receipt = sender.send(f"set the Balancer Vault {balancer_vault}", contract, data,
                              sender.estimate(contract, data))
        done.transactions.append(("setBalancerVault", str(receipt["transactionHash"]), int(receipt["gasUsed"], 16)))
    _verify(rpc, done)
    return done


def _verify(rpc: SyncHttpRpc, done: Deployed) -> None:
    (owner,) = _call(rpc, done.contract, encode_call("owner()"), ["address"])
    (recipient,) = _call(rpc, done.contract, encode_call("recipient()"), ["address"])
    if to_checksum_address(owner) != done.owner:
        raise DeployError(f"{done.contract}: owner() is {to_checksum_address(owner)}, expected {done.owner}")
    if to_checksum_address(recipient) != done.recipient:
        raise DeployError(f"{done.contract}: recipient() is {to_checksum_address(recipient)}, expected "
                          f"{done.recipient} (an existing contract keeps its recipient: setRecipient changes it)")
    for spec in done.factories:
        if _allowed_hash(rpc, done.contract, spec) != INIT_CODE_HASH[spec.kind]:
            raise DeployError(f"{done.contract}: factory {spec.factory} is not allow-listed as {spec.kind.name}")
    if done.balancer_vault is not None and _vault_of(rpc, done.contract) != done.balancer_vault:
        raise DeployError(f"{done.contract}: balancerVault() is {_vault_of(rpc, done.contract)}, expected "
                          f"{done.balancer_vault}")


def paste_lines(done: Deployed) -> str:
    """The executor configuration lines for this contract (TOML, to paste into executor.toml). Curve
    pools are no venue (the executor's ``[[curve_pools]]`` lists them with their coins and parameters)."""
    doc = {"executor": {"chain_id": done.chain_id, "contract": done.contract},
           "venues": [{"venue": f.venue.name, "factory": f.factory} for f in done.factories if f.kind != Kind.CURVE]}
    return tomli_w.dumps(doc)


# --------------------------------------------------------------------------- the command


def _rpc_url(args: argparse.Namespace) -> str:
    if args.rpc_url:
        return str(args.rpc_url)
    if args.deployment:
        from chain.deployment import load_deployment

        try:
            return load_deployment(args.deployment).chain(args.chain_id).rpc_url
        except (OSError, ValueError, KeyError) as exc:
            raise DeployError(f"{args.deployment}: {exc}") from None
    try:
        return read_secret(file=args.rpc_url_file or "", env=args.rpc_url_env or "", what="the RPC URL")
    except SecretSourceError as exc:
        raise DeployError(str(exc)) from None


def _factories(args: argparse.Namespace) -> list[FactorySpec]:
    specs = [parse_factory(t) for t in args.factory or ()]
    if args.deployment:
        from chain.deployment import load_deployment

        dep = load_deployment(args.deployment).chain(args.chain_id)
        specs += devnet_factories(dep)
    if not specs:
        raise DeployError("no factory to allow-list: give --factory VENUE=0xADDRESS (or --deployment FILE)")
    return specs


def devnet_factories(dep: Any) -> list[FactorySpec]:
    """Every factory of a devnet deployment (``chain.deployment.ChainDeployment``), with its venue."""
    names = {"uniswap_v2_a": Venue.DEVNET_V2_A, "uniswap_v2_b": Venue.DEVNET_V2_B}
    specs = []
    for v in dep.v2:
        if v.name not in names:
            raise DeployError(f"devnet V2 venue {v.name!r} has no venue code (one of {', '.join(names)})")
        specs.append(FactorySpec(venue=names[v.name], factory=v.factory))
    specs.append(FactorySpec(venue=Venue.DEVNET_V3, factory=dep.v3.factory))
    if dep.v4 is not None:
        specs.append(FactorySpec(venue=Venue.DEVNET_V4, factory=dep.v4.pool_manager))
    specs += [FactorySpec(venue=Venue.CURVE, factory=p.address) for p in dep.curve_pools]
    return specs


def _balancer_vault(args: argparse.Namespace) -> str | None:
    if args.balancer_vault:
        try:
            return str(to_checksum_address(args.balancer_vault))
        except ValueError:
            raise DeployError(f"--balancer-vault: {args.balancer_vault!r} is not an address") from None
    if args.deployment:
        from chain.deployment import load_deployment

        return load_deployment(args.deployment).chain(args.chain_id).balancer_vault
    return None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="alphapulse executor deploy-contract",
        description="Deploy AlphaPulseArb from the executor's keystore (which becomes its owner), allow-list the "
                    "venues' factories, and print the executor configuration lines to paste.")
    ap.add_argument("--keystore", required=True, help="the executor's encrypted keystore (executor new-keystore)")
    pw = ap.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password-file", help="file holding the keystore password")
    pw.add_argument("--password-env", help="environment variable holding the keystore password")
    url = ap.add_mutually_exclusive_group(required=True)
    url.add_argument("--rpc-url-file", help="file holding the node's HTTP JSON-RPC URL (it often holds an API key)")
    url.add_argument("--rpc-url-env", help="environment variable holding the RPC URL")
    url.add_argument("--rpc-url", help="the RPC URL itself (visible in the process list and shell history)")
    url.add_argument("--deployment", help="a devnet deployment file: its RPC URL, every factory and Curve pool it "
                                          "deployed and its Balancer Vault")
    ap.add_argument("--chain-id", type=int, default=None,
                    help="refuse unless the node is this chain (strongly advised on a real chain)")
    ap.add_argument("--recipient", required=True, help="where the contract sends every profit (not the hot key)")
    ap.add_argument("--factory", action="append", metavar="VENUE=0xADDRESS",
                    help="a factory to allow-list, repeatable: UNISWAP_V2=0x..., UNISWAP_V3=0x..., a V4 "
                         "PoolManager UNISWAP_V4=0x..., a Curve StableSwap pool CURVE=0x...")
    ap.add_argument("--balancer-vault", default=None, metavar="0xADDRESS",
                    help="the Balancer V2 Vault executeBalancer borrows from (paths whose first hop cannot "
                         "flash-swap, e.g. Curve); with --deployment, the devnet's Vault by default")
    ap.add_argument("--contract", default=None,
                    help="configure this existing AlphaPulseArb (owned by the keystore) instead of deploying one")
    ap.add_argument("--tip-gwei", type=float, default=None, help="priority fee (default: the node's suggestion)")
    ap.add_argument("--max-fee-gwei", type=float, default=None,
                    help="refuse to send while base fee + tip is above this (default: no cap)")
    ap.add_argument("--receipt-timeout", type=float, default=300.0, help="seconds to wait for each receipt")
    ap.add_argument("--fund-on-devnet", action="store_true",
                    help="with --deployment: give the account 1000 ETH first (anvil_setBalance; devnet only)")
    ap.add_argument("--dry-run", action="store_true",
                    help="check the node, the account's balance and the deployment's gas; send nothing")
    return ap


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    prog = "deploy-contract"

    def say(text: str) -> None:
        print(f"{prog}: {text}", file=sys.stderr, flush=True)

    url = ""
    try:
        factories = _factories(args)
        vault = _balancer_vault(args)
        url = _rpc_url(args)
        if not url.startswith(("http://", "https://")):
            raise DeployError(f"the RPC URL must be http:// or https://, got {redact_url(url)}")
        password = read_password(password_file=args.password_file or "", password_env=args.password_env or "")
        account = load_account(args.keystore, password)
        fees = Fees(tip_wei=None if args.tip_gwei is None else int(args.tip_gwei * 10**9),
                    max_fee_wei=None if args.max_fee_gwei is None else int(args.max_fee_gwei * 10**9))
        say(f"owner (the keystore's account) {account.address}; node {redact_url(url)}")
        if args.fund_on_devnet and not args.deployment:
            raise DeployError("--fund-on-devnet needs --deployment (a devnet's deployment file)")
        with SyncHttpRpc(url, timeout=30.0) as rpc:
            if args.fund_on_devnet:
                rpc.call("anvil_setBalance", [account.address, hex(1000 * 10**18)])
            done = deploy_and_configure(rpc, account, recipient=args.recipient, factories=factories,
                                        chain_id=args.chain_id, contract=args.contract, balancer_vault=vault,
                                        fees=fees,
                                        dry_run=args.dry_run, receipt_timeout=args.receipt_timeout, say=say)
    except (ValueError, DeployError, KeystoreError) as exc:
        say(scrub(str(exc), url) if url else str(exc))
        return 2
    except RpcFailure as exc:
        say(f"the node did not answer: {scrub(str(exc), url)}")
        return 1
    if done.dry_run:
        print(f"dry run on chain {done.chain_id}: would {'deploy AlphaPulseArb and ' if done.deployed else ''}"
              f"allow-list {len(done.factories)} factories from {done.owner}; worst-case cost "
              f"{done.cost_bound_wei / 1e18:.6f} of the chain's coin. Nothing was sent.")
        return 0
    gas = sum(g for _, _, g in done.transactions)
    print(f"AlphaPulseArb {done.contract} on chain {done.chain_id}: owner {done.owner}, recipient {done.recipient}, "
          f"{len(done.factories)} factories allow-listed"
          + (f", Balancer Vault {done.balancer_vault}" if done.balancer_vault else "")
          + f" ({len(done.transactions)} transactions, {gas} gas)")
    if done.balancer_vault:
        print("# the strategy may borrow from the Vault for this contract: balancer_vault = true in its [[chains]]")
    print("# paste into the executor's configuration (executor.toml):")
    print(paste_lines(done), end="")
    return 0
