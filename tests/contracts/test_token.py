"""SplitLedgerToken: a fixed-supply ERC-20 for local chains."""
from brownie import ZERO_ADDRESS
from market_helpers import SUPPLY


def test_token_mints_the_whole_supply_to_the_deployer(SplitLedgerToken, deployer, stranger):
    token = SplitLedgerToken.deploy("SplitLedger Token", "SPLT", SUPPLY, {"from": deployer})

    assert token.name() == "SplitLedger Token"
    assert token.symbol() == "SPLT"
    assert token.decimals() == 18
    assert token.totalSupply() == SUPPLY
    assert token.balanceOf(deployer) == SUPPLY
    assert token.balanceOf(stranger) == 0
    assert token.tx.events["Transfer"] == {"from": ZERO_ADDRESS, "to": deployer, "value": SUPPLY}
