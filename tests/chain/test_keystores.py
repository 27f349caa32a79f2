"""Every role's key can come from an encrypted keystore (orchestrator/chain/keys.py): named in the environment
(SPLITLEDGER_<ROLE>_KEYSTORE + _PASSWORD) or by --keystore FILE, its password from the environment or asked."""
import json

import pytest
from eth_account import Account

from orchestrator.chain.keys import account_from_env, account_from_keystore
from orchestrator.errors import ChainError

PASSWORD = "correct horse"


@pytest.fixture
def keystore(tmp_path):
    """(the account, a keystore file of its key); pbkdf2 with few rounds: a test, not a secret."""
    account = Account.create()
    path = tmp_path / "host.keystore.json"
    path.write_text(json.dumps(Account.encrypt(account.key, PASSWORD, kdf="pbkdf2", iterations=1000)))
    return account, path


def test_a_keystore_named_in_the_environment_opens_with_its_password(keystore):
    account, path = keystore
    env = {"SPLITLEDGER_HOST_KEYSTORE": str(path), "SPLITLEDGER_HOST_PASSWORD": PASSWORD}
    assert account_from_env("host", env).address == account.address


def test_a_keystore_given_as_a_file_takes_the_roles_password_from_the_environment(keystore):
    account, path = keystore
    assert account_from_keystore(path, "proxy", {"SPLITLEDGER_PROXY_PASSWORD": PASSWORD}).address == account.address


def test_without_a_password_in_the_environment_the_password_is_asked_for(keystore):
    account, path = keystore
    asked = []
    opened = account_from_keystore(path, "source", {}, ask=lambda prompt: asked.append(prompt) or PASSWORD)
    assert opened.address == account.address and asked == [f"password of keystore {path}: "]


def test_without_a_password_or_a_terminal_to_ask_on_the_keystore_is_refused(keystore):
    _account, path = keystore
    with pytest.raises(ChainError, match="set SPLITLEDGER_OWNER_PASSWORD"):
        account_from_keystore(path, "owner", {})


def test_a_wrong_password_is_refused_naming_the_keystore(keystore):
    _account, path = keystore
    with pytest.raises(ChainError, match=f"cannot open keystore {path}"):
        account_from_keystore(path, "host", {"SPLITLEDGER_HOST_PASSWORD": "wrong"})
