"""Fixtures for the market's unit tests.

Contracts are deployed once per module (module-scoped fixtures); the autouse ``fn_isolation`` in
tests/conftest.py rolls the chain back after every test, so each test starts from the same funded,
quoted model. Constants and helpers live in market_helpers.py.
"""
import market_helpers as h
import pytest


def _account(index):
    @pytest.fixture(scope="module")
    def account(accounts):
        return accounts[index]

    return account


deployer = _account(0)
owner = _account(1)  # registers model 1, funds it and sets its quote
node = _account(2)  # model 1's hosting node
stranger = _account(7)  # holds no role anywhere
proxy = _account(8)


@pytest.fixture(scope="module")
def sources(accounts):
    return accounts[3:7]


@pytest.fixture(scope="module")
def token(SplitLedgerToken, deployer, owner):
    token = SplitLedgerToken.deploy("SplitLedger Token", "SPLT", h.SUPPLY, {"from": deployer})
    token.transfer(owner, h.SUPPLY // 2, {"from": deployer})
    return token


@pytest.fixture(scope="module")
def market(SplitLedgerMarket, token, deployer, owner):
    market = SplitLedgerMarket.deploy(token, h.CHECKPOINT_TIMEOUT, {"from": deployer})
    token.approve(market, 2**256 - 1, {"from": owner})
    return market


@pytest.fixture(scope="module")
def model(market, owner, node):
    """Model 1: registered by ``owner`` with ``node`` hosting it, ESCROW deposited, quoted at PRICE / ROW_CAP."""
    market.registerModel(
        node,
        h.MODEL_HASH,
        h.TEST_SET_HASH,
        h.FIELD_TABLE_HASH,
        h.POLICY_HASH,
        h.WEIGHTS_HASH,
        h.BASELINE_ACCURACY,
        {"from": owner},
    )
    market.deposit(h.MODEL_ID, h.ESCROW, {"from": owner})
    market.setQuote(h.MODEL_ID, h.PRICE, h.ROW_CAP, {"from": owner})
    return h.MODEL_ID


@pytest.fixture(scope="module")
def ledger(market, model, node):
    return h.Ledger(market, model, node)


@pytest.fixture
def claim(market):
    """Claims ``account``'s leaf of ``tree`` from the market."""

    def _claim(tree, account):
        return market.claim(tree.checkpoint_id, tree.amount_of(account), tree.proof_for(account), {"from": account})

    return _claim
