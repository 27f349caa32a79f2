"""A registered, funded, quoted model on the test chain, with its owner's and hosting node's clients."""
import pytest
from chain_terms import INITIAL_WEIGHTS, UNIT


@pytest.fixture
def funded_model(deployed, signer_of, accounts):
    token, _market, _deployment = deployed
    owner, host = signer_of(1), signer_of(2)
    token.transfer(owner.address, 1_000 * UNIT, {"from": accounts[0]})
    model_id, _ = owner.register_model(host.address, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32,
                                       INITIAL_WEIGHTS, 500_000)
    owner.approve_and_deposit(model_id, 100 * UNIT)
    owner.set_quote(model_id, UNIT, 0)
    return model_id, owner, host
