"""The source tests reuse the proxy tests' builders and fixtures (a source is tested against real proxies)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))

from proxy_fixtures import columns, serve, table  # noqa: E402, F401
