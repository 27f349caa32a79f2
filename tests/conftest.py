"""Shared fixtures. brownie's pytest plugin starts anvil and isolates every test in a snapshot."""
import os
import socket

import brownie
import pytest


def _free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# (brownie._config is reached through the package because brownie hashes conftest imports and
# cannot read its compiled module.) brownie attaches to whatever already listens on its port; a test run must never share a chain
# with another run (a developer's demo, a parallel suite), whose resets would wipe its contracts.
brownie._config.CONFIG.networks["development"]["cmd_settings"]["port"] = int(
    os.environ.get("SPLITLEDGER_TEST_RPC_PORT") or _free_loopback_port()
)


@pytest.fixture(autouse=True)
def _isolate_chain(fn_isolation):
    """Every test starts from the same chain state, so tests never depend on each other's transactions."""
