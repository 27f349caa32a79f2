"""A pytest plugin for a brownie test run attached to a Ganache node (test_contracts_on_ganache.py loads it with
-p): it refuses any other node, so a run that brownie pointed at its own anvil cannot pass for one on Ganache, and
makes brownie's transactions pay the node's fees instead of brownie's development price of 0 wei, which Ganache
refuses (scripts/deploy.py, price_like_the_node)."""
import pytest


@pytest.fixture(scope="session", autouse=True)
def _on_ganache_at_its_fees():
    from brownie import web3

    from scripts.deploy import price_like_the_node

    if not web3.client_version.startswith("Ganache/"):
        pytest.exit(f"brownie_on_ganache: the chain is {web3.client_version}, not Ganache", returncode=3)
    price_like_the_node()
