"""The adversarial suite: each attack on a holder, run against real proxy processes on the test chain, asserts
the refusal and that what the holder stores is unchanged. It reuses the proxy tests' builders and fixtures."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))

from proxy_fixtures import columns, serve, table  # noqa: F401
