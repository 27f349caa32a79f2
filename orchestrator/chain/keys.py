"""Signing keys for each role, from the environment or an encrypted keystore; never from code.

    SPLITLEDGER_<ROLE>_KEY=0x...                       a raw private key (local chains, CI)
    SPLITLEDGER_<ROLE>_KEYSTORE=path/to/keystore.json  an encrypted keystore (eth-account / geth format)
    SPLITLEDGER_<ROLE>_PASSWORD=...                    its password

ROLE is OWNER, HOST, PROXY or SOURCE (or any name a command is given with --key-env).
"""
import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.errors import ChainError


def account_from_env(role: str, environ=os.environ) -> LocalAccount:
    prefix = f"SPLITLEDGER_{role.upper()}"
    raw = environ.get(f"{prefix}_KEY")
    if raw:
        try:
            return Account.from_key(raw)
        except (ValueError, TypeError) as e:
            raise ChainError(f"{prefix}_KEY is not a private key: {e}") from None
    keystore = environ.get(f"{prefix}_KEYSTORE")
    if keystore:
        password = environ.get(f"{prefix}_PASSWORD")
        if password is None:
            raise ChainError(f"{prefix}_KEYSTORE is set but {prefix}_PASSWORD is not")
        try:
            encrypted = json.loads(Path(keystore).read_text())
            return Account.from_key(Account.decrypt(encrypted, password))
        except (OSError, ValueError) as e:
            raise ChainError(f"cannot open keystore {keystore}: {e}") from None
    raise ChainError(f"no key for role {role}: set {prefix}_KEY or {prefix}_KEYSTORE and {prefix}_PASSWORD")
