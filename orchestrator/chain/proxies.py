"""Source proxies as the chain knows them: each registered address, the endpoint it last registered, and the
rows it has listed (`ProxyRegistered`, `RowsListed`).

A hosting node finds the proxies to buy from here rather than from a list it was handed: the address comes
with the endpoint, so the node signs its requests for that address and accepts only answers signed by it,
whoever answers at the endpoint.
"""
from dataclasses import dataclass

from .client import MarketClient


@dataclass(frozen=True)
class RegisteredProxy:
    address: str
    endpoint: str  # as last registered
    listed_rows: int  # rows announced in RowsListed events


def registered_proxies(client: MarketClient, *, with_rows_only: bool = True) -> list[RegisteredProxy]:
    """Every registered proxy (by default only those that listed rows), in order of their latest registration,
    so where two addresses registered the same endpoint the one registered last comes last."""
    start = client.deployment.market_deploy_block
    endpoints: dict[str, str] = {}
    for log in client.market.events.ProxyRegistered.get_logs(from_block=start):
        endpoints.pop(log["args"]["proxy"], None)  # a later registration updates the endpoint
        endpoints[log["args"]["proxy"]] = log["args"]["endpoint"]
    listed: dict[str, int] = {}
    for log in client.market.events.RowsListed.get_logs(from_block=start):
        listed[log["args"]["proxy"]] = listed.get(log["args"]["proxy"], 0) + log["args"]["rowCount"]
    return [RegisteredProxy(address, endpoint, listed.get(address, 0)) for address, endpoint in endpoints.items()
            if listed.get(address) or not with_rows_only]
