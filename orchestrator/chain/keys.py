"""Signing keys for each role, from the environment or an encrypted keystore; never from code or arguments.

    SPLITLEDGER_<ROLE>_KEY=0x...                       a raw private key (local chains, CI)
    SPLITLEDGER_<ROLE>_KEYSTORE=path/to/keystore.json  an encrypted keystore (eth-account / geth format)
    SPLITLEDGER_<ROLE>_PASSWORD=...                    its password

ROLE is OWNER, HOST, PROXY, SOURCE or DEPLOYER. A command that signs also takes `--keystore FILE`
(orchestrator/commandline.py), whose password is SPLITLEDGER_<ROLE>_PASSWORD or, on a terminal, asked for.
"""
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.errors import ChainError

Ask = Callable[[str], str]


def account_from_env(role: str, environ: Mapping[str, str] = os.environ) -> LocalAccount:
    prefix = _prefix(role)
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
        return decrypted(Path(keystore), password)
    raise ChainError(f"no key for role {role}: set {prefix}_KEY or {prefix}_KEYSTORE and {prefix}_PASSWORD "
                     f"(or give --keystore FILE)")


def account_from_keystore(path: Path, role: str, environ: Mapping[str, str] = os.environ,
                          ask: Ask | None = None) -> LocalAccount:
    """The key in keystore `path`, its password from SPLITLEDGER_<ROLE>_PASSWORD, else from `ask` (default: a
    prompt that does not echo, when stdin is a terminal); refused when there is neither."""
    prefix = _prefix(role)
    password = environ.get(f"{prefix}_PASSWORD")
    if password is None:
        if ask is None and sys.stdin is not None and sys.stdin.isatty():
            ask = getpass.getpass
        if ask is None:
            raise ChainError(f"no password for keystore {path}: set {prefix}_PASSWORD, or run on a terminal to be "
                             f"asked for it")
        password = ask(f"password of keystore {path}: ")
    return decrypted(path, password)


def decrypted(path: Path, password: str) -> LocalAccount:
    try:
        encrypted = json.loads(Path(path).read_text())
        return Account.from_key(Account.decrypt(encrypted, password))
    except (OSError, ValueError, TypeError, KeyError) as e:  # a wrong password is a ValueError ("MAC mismatch")
        raise ChainError(f"cannot open keystore {path}: {e}") from None


def _prefix(role: str) -> str:
    return f"SPLITLEDGER_{role.upper()}"
