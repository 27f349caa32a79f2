"""The loopback relay: bytes through unchanged, and each fault does to a live connection what it says."""
import socket
import socketserver
import threading
import time

import pytest

from chaos.relay import LinkFault, Relay

ANSWER = bytes(range(256)) * 40  # 10,240 bytes


class _Answering(socketserver.BaseRequestHandler):
    """Reads one line, answers ANSWER, then echoes whatever else comes until the client closes."""

    def handle(self):
        stream = self.request.makefile("rb")
        stream.readline()
        self.request.sendall(ANSWER)
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def upstream():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Answering)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def relay(upstream):
    with Relay(upstream, name="test") as relay:
        yield relay


def ask(port: int, timeout: float = 5.0) -> tuple[bytes, socket.socket]:
    """Sends a line, reads until the answer is whole or the connection closes; (what came, the socket)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn.sendall(b"hello\n")
    got = b""
    while len(got) < len(ANSWER):
        try:
            data = conn.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        got += data
    return got, conn


def closed(conn: socket.socket) -> bool:
    try:
        conn.sendall(b"more")
        return conn.recv(10) == b""
    except OSError:
        return True


def test_bytes_pass_through_unchanged_both_ways(relay):
    got, conn = ask(relay.port)
    conn.sendall(b"echo me")
    assert got == ANSWER and conn.recv(100) == b"echo me"
    conn.close()


def test_a_cut_closes_open_connections_and_refuses_new_ones_until_cleared(relay):
    _got, conn = ask(relay.port)
    relay.set(LinkFault(cut=True))
    assert closed(conn)
    refused, _ = ask(relay.port)
    assert refused == b""
    relay.clear()
    assert ask(relay.port)[0] == ANSWER


def test_a_truncated_answer_stops_after_the_bytes_allowed_and_the_connection_is_closed(relay):
    relay.set(LinkFault(truncate_after=1000))
    got, conn = ask(relay.port)
    assert got == ANSWER[:1000] and closed(conn)
    relay.clear()
    assert ask(relay.port)[0] == ANSWER


def test_a_delay_holds_every_chunk_back_and_loses_nothing(relay):
    relay.set(LinkFault(delay_ms=300))
    started = time.monotonic()
    got, _ = ask(relay.port)
    # the question and at least one chunk of the answer each waited
    assert got == ANSWER and time.monotonic() - started >= 0.6


def test_a_service_that_is_down_looks_down_through_the_relay():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nothing_listens = probe.getsockname()[1]
    with Relay(nothing_listens) as relay:
        assert ask(relay.port)[0] == b""
