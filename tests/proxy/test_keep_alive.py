"""A proxy keeps an idle connection open longer than its clients keep it in their pools, so that a client never
reuses a connection the proxy is closing at that moment (bench/load.py saw such requests fail, reset or
"server disconnected", with 50 sources at once)."""
import socket
import time

import httpx

from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

CLIENT_POOL_EXPIRY = httpx.Limits().keepalive_expiry  # httpx's default (5 s): how long ProxyClient's pool keeps one


def get_health(connection: socket.socket, host: str) -> bytes:
    connection.sendall(f"GET /v1/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(65536)
        if not chunk:
            return head  # the proxy closed the connection
        head += chunk
    header, _, body = head.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = int(lengths[0])
    while len(body) < length:
        body += connection.recv(65536)
    return header


def test_an_idle_connection_is_still_served_after_the_clients_pool_would_have_dropped_it(serve):
    proxy = serve(Vault(Store(":memory:")))
    host_port = proxy.url.split("://")[1]
    host, port = host_port.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        assert get_health(connection, host_port).startswith(b"HTTP/1.1 200")
        time.sleep(CLIENT_POOL_EXPIRY + 1.0)
        assert get_health(connection, host_port).startswith(b"HTTP/1.1 200")
