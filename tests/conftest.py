"""Shared fixtures. brownie's pytest plugin starts anvil and isolates every test in a snapshot."""
import pytest


@pytest.fixture(autouse=True)
def _isolate_chain(fn_isolation):
    """Every test starts from the same chain state, so tests never depend on each other's transactions."""
