"""The source tests reuse the proxy tests' builders and fixtures (a source is tested against real proxies)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))

import pytest
from proxy_builders import SOURCE_A_KEY
from proxy_fixtures import columns, serve, table  # noqa: F401

from orchestrator.chain.deployment import save_deployment


@pytest.fixture
def signed(onchain, tmp_path, monkeypatch):
    """The source CLI's signing options: source A's key in the environment, the test chain's deployment file."""
    path = tmp_path / "deployment.json"
    save_deployment(onchain.deployment, path)
    monkeypatch.setenv("SPLITLEDGER_SOURCE_KEY", SOURCE_A_KEY.key.hex())
    return ["--deployment", str(path)]
