"""The attack tests reuse the proxy tests' builders and fixtures (attacks run against real vaults)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))

from proxy_fixtures import columns, serve, table  # noqa: E402, F401
