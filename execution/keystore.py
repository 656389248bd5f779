"""The executor's signing key: an encrypted Ethereum keystore (Web3 Secret Storage v3), nothing else.

``alphapulse executor new-keystore --out FILE --password-file F`` generates a fresh random key,
writes only the encrypted keystore (mode 0600, never over an existing file) and prints the
address. The plaintext key exists in memory only: it is never printed, logged or written.

At start the executor reads the password from a file (``[keystore] password_file``) or from an
environment variable (``password_env``) and decrypts the keystore with eth-account.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from runtime.secrets import SecretSourceError, read_secret


class KeystoreError(Exception):
    """The keystore or its password could not be read or did not decrypt."""


def read_password(*, password_file: str = "", password_env: str = "") -> str:
    """The keystore password from a file (trailing newline stripped) or an environment variable."""
    if not password_file and not password_env:
        raise KeystoreError("no password source: give a password file or an environment variable")
    try:
        return read_secret(file=password_file, env="" if password_file else password_env,
                           what="the keystore password")
    except SecretSourceError as exc:
        raise KeystoreError(str(exc)) from None


def create_keystore(out: str | os.PathLike[str], password: str, *, kdf: str = "scrypt",
                    iterations: int | None = None) -> str:
    """Generate a random key, write it encrypted to ``out`` (0600, exclusive create); the address."""
    return str(new_keystore_account(out, password, kdf=kdf, iterations=iterations).address)


def new_keystore_account(out: str | os.PathLike[str], password: str, *, kdf: str = "scrypt",
                         iterations: int | None = None) -> LocalAccount:
    """:func:`create_keystore`, returning the account itself (who deploys right after creating the
    key need not decrypt it again)."""
    if not password:
        raise KeystoreError("refusing an empty keystore password")
    acct = Account.create(os.urandom(32).hex())
    doc = Account.encrypt(acct.key, password, kdf=kdf, iterations=iterations)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"{path} exists; refusing to overwrite a keystore") from None
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
        fh.write("\n")
    return acct


def keystore_address(path: str | os.PathLike[str]) -> str:
    """The address recorded in a keystore (no password needed)."""
    from eth_utils import to_checksum_address

    doc = json.loads(Path(path).read_text())
    return to_checksum_address("0x" + doc["address"].removeprefix("0x"))


def load_account(path: str | os.PathLike[str], password: str) -> LocalAccount:
    """Decrypt the keystore; the account signs locally (eth-account)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"cannot read the keystore {path}: {exc}") from None
    try:
        key = Account.decrypt(doc, password)
    except ValueError:
        raise KeystoreError(f"{path}: wrong password or corrupt keystore") from None
    return Account.from_key(key)


def new_keystore_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse executor new-keystore",
                                 description="Generate a fresh random signing key and write only its encrypted "
                                             "keystore; prints the address.")
    ap.add_argument("--out", required=True, help="keystore file to create (refuses to overwrite)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--password-file", help="file holding the password")
    src.add_argument("--password-env", help="environment variable holding the password")
    ap.add_argument("--kdf", choices=("scrypt", "pbkdf2"), default="scrypt")
    ap.add_argument("--kdf-iterations", type=int, default=None,
                    help="KDF work factor (scrypt n / pbkdf2 rounds); default eth-account's. Lower only for tests")
    args = ap.parse_args(argv)
    try:
        password = read_password(password_file=args.password_file or "", password_env=args.password_env or "")
        address = create_keystore(args.out, password, kdf=args.kdf, iterations=args.kdf_iterations)
    except KeystoreError as exc:
        print(f"new-keystore: {exc}", file=sys.stderr)
        return 2
    print(address)
    return 0
