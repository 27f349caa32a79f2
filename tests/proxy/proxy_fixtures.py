"""Fixtures shared by the proxy and source tests (imported by both folders' conftest.py)."""
from contextlib import ExitStack

import pytest

from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.limits import Limits
from orchestrator.proxy.server import running
from orchestrator.proxy.service import create_app

from proxy_builders import cancer_columns, cancer_table


@pytest.fixture(scope="session")
def columns():
    return cancer_columns()


@pytest.fixture(scope="session")
def table(columns):
    return cancer_table(columns)


@pytest.fixture
def serve():
    """serve(vault, publisher=None) -> a ProxyClient of the vault's service, run by uvicorn on a free loopback
    port for the rest of the test; serve(app=...) runs any ASGI app (e.g. a proxy that lies). `limits` are the
    service's (the defaults unless given); with `tls` (a ServerTLS) it serves https, and the client trusts
    `ca_bundle`."""
    with ExitStack() as stack:

        def start(vault=None, *, publisher=None, app=None, timeout=30.0, limits=Limits(), tls=None, ca_bundle=None):
            url = stack.enter_context(running(app or create_app(vault, publisher=publisher, limits=limits), tls=tls))
            return stack.enter_context(ProxyClient(url, timeout=timeout, ca_bundle=ca_bundle))

        yield start
