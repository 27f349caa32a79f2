"""Fixtures shared by the proxy and source tests (imported by both folders' conftest.py)."""
from contextlib import ExitStack

import pytest
from eth_account import Account
from proxy_builders import cancer_columns, cancer_table

from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.gate import Gate
from orchestrator.proxy.limits import Limits
from orchestrator.proxy.server import running
from orchestrator.proxy.service import create_app


@pytest.fixture(scope="session")
def columns():
    return cancer_columns()


@pytest.fixture(scope="session")
def table(columns):
    return cancer_table(columns)


@pytest.fixture
def serve(onchain):
    """serve(vault, publisher=None) -> a ProxyClient of the vault's service, run by uvicorn on a free loopback
    port for the rest of the test, with a gate on the test chain (a fresh holder key) and the client signing
    as the `onchain` fixture's hosting node (`signer=` to sign as someone else); serve(app=..., holder=ADDRESS) runs
    any ASGI app (e.g. a proxy that lies) as the holder at ADDRESS. `limits` are the service's (the defaults
    unless given); with `tls` (a ServerTLS) it serves https, and the client trusts `ca_bundle`."""
    with ExitStack() as stack:

        def start(vault=None, *, publisher=None, app=None, holder=None, signer=None, timeout=30.0, gated=True,
                  limits=Limits(), tls=None, ca_bundle=None):
            if app is None:
                account = Account.create()
                holder = account.address
                if vault.registry is None:  # the chain's commitments, as a proxy started with --rpc reads them
                    vault.registry = onchain.registry.commitments
                gate = Gate(holder, onchain.registry, vault.store, account=account) if gated else None
                app = create_app(vault, gate=gate, publisher=publisher, limits=limits)
            url = stack.enter_context(running(app, tls=tls))
            return stack.enter_context(ProxyClient(url, timeout=timeout, signer=signer or onchain.host_signer,
                                                   holder=holder, ca_bundle=ca_bundle))

        yield start


def post_signed(proxy, signer, operation: str, body: dict):
    """POSTs a hand-made body (e.g. one the client would never send) to `proxy`, signed by `signer` as a
    hosting node signs it; the raw httpx response."""
    import httpx

    from orchestrator.proxy import wire

    content = wire.dumps(body)
    auth = signer.request(proxy.holder, body["model_id"], operation, content)
    return httpx.post(f"{proxy.url}/v1/{operation}", content=content,
                      headers={"content-type": "application/json", **auth.headers()})
