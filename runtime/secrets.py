"""The one secret refusal: no plaintext private key in any configuration document.

Signing keys live only in encrypted keystores (``execution.keystore``); their passwords come from a
file or an environment variable that the configuration *names*. :func:`refuse_secrets` walks a parsed
document (tables, arrays, keys and values) and raises :class:`~runtime.config.ConfigError` at the first

* value or key that holds 64 hex digits (32 bytes, with or without ``0x``/``0X``) as a token of its
  own, e.g. ``"0xab…"``, ``"key:0xab…"``, ``"https://node/?key=ab…"`` or ``"--key=ab…"``, also when
  the digits are split by spaces or tabs (``"0xabcd… ef01…"``, a key pasted in two halves): what a
  private key looks like written out;
* key named like a secret (``private_key``, ``priv_key``, ``secret``, ``mnemonic``, ``seed``,
  ``seed_phrase``, or exactly ``password`` / ``key``); ``password_file`` and ``password_env`` are the
  sanctioned ways to name where a password is.

The message names the key path and never the value: an error message ends up in logs and terminals.

:func:`read_secret` is the other half: a secret a configuration or a command line *names* (a file or
an environment variable: a keystore password, an RPC URL carrying an API key) read once, its trailing
newline stripped, an empty one refused, and any failure one line that never quotes the content.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .config import ConfigError, join_path

# 64 hex digits not part of a longer hex run: a 32-byte secret written out (a 20-byte address is 40)
_KEY_LIKE = re.compile(r"(?<![0-9a-fA-F])(?:0[xX])?[0-9a-fA-F]{64}(?![0-9a-fA-F])")
# blanks between hex digits are dropped before the search: a key split in two is still a key
_HEX_BLANKS = re.compile(r"(?<=[0-9a-fA-F])[ \t]+(?=[0-9a-fA-F])")
_SECRET_NAME = re.compile(
    r"(^|_)(private_?key|priv_?key|secret|mnemonic|seed|seed_phrase)($|_)|^(password|key)$", re.IGNORECASE
)
_SANCTIONED = frozenset({"password_file", "password_env"})

ADVICE = "keep keys in an encrypted keystore and name its password file or environment variable"


def looks_like_private_key(text: str) -> bool:
    """True if ``text`` contains 64 hex digits as a token of its own."""
    return _KEY_LIKE.search(text) is not None or _KEY_LIKE.search(_HEX_BLANKS.sub("", text)) is not None


def refuse_secrets(doc: Any, path: str = "", *, file: str = "") -> None:
    """Raise :class:`ConfigError` (naming the key path, never the value) if ``doc`` holds a secret."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            where = join_path(path, str(key))
            if looks_like_private_key(str(key)):
                raise ConfigError(f"a key looks like a plaintext private key; refused ({ADVICE})",
                                  path=path, file=file)
            if _SECRET_NAME.search(str(key)) and key not in _SANCTIONED:
                raise ConfigError(f"secrets do not belong in the configuration ({ADVICE})", path=where, file=file)
            refuse_secrets(value, where, file=file)
    elif isinstance(doc, list | tuple):
        for i, value in enumerate(doc):
            refuse_secrets(value, join_path(path, i), file=file)
    elif isinstance(doc, str) and looks_like_private_key(doc):
        raise ConfigError(f"looks like a plaintext private key (32 bytes of hex); refused ({ADVICE})",
                          path=path, file=file)


class SecretSourceError(ValueError):
    """A named secret could not be read (the message names the file or variable, never the content)."""


def read_secret(*, file: str = "", env: str = "", what: str = "the secret") -> str:
    """The text of the file ``file`` or of the environment variable ``env`` (exactly one given),
    trailing newline stripped; :class:`SecretSourceError` when it is missing, unreadable or empty."""
    if bool(file) == bool(env):
        raise SecretSourceError(f"{what}: give exactly one of a file or an environment variable")
    if file:
        try:
            value = Path(file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise SecretSourceError(f"cannot read {what} from {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SecretSourceError(f"{file} ({what}) is not UTF-8 text") from None
        source = file
    else:
        found = os.environ.get(env)
        if found is None:
            raise SecretSourceError(f"environment variable {env} ({what}) is not set")
        value, source = found.rstrip("\r\n"), f"${env}"
    if not value.strip():
        raise SecretSourceError(f"{source} ({what}) is empty")
    return value
