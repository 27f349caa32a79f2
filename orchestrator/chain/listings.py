"""On-chain listings for a proxy: RowsListed events carrying row-id ranges and field compositions."""
from collections.abc import Callable, Sequence

from eth_account import Account

from orchestrator.errors import ChainError

from .client import MarketClient, connect
from .deployment import load_deployment


def listing_publisher(rpc_url: str, deployment_path: str, private_key: str,
                      endpoint: str | None = None) -> Callable[[int, int, Sequence[str]], None]:
    """A publisher for the proxy service: registers the proxy (once) and emits one listing per call."""
    try:
        account = Account.from_key(private_key)
    except (ValueError, TypeError) as e:
        raise ChainError(f"the proxy's key is not a private key: {e}") from None
    client = MarketClient(connect(rpc_url), load_deployment(deployment_path), account, track_nonce=False)
    if not client.market.functions.isProxy(account.address).call():
        client.register_proxy(endpoint or "")

    def publish(first_row_id: int, row_count: int, fields: Sequence[str]) -> None:
        client.publish_listing(first_row_id, row_count, list(fields))

    return publish
