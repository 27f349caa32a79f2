"""A loopback TCP relay whose faults are switched while it runs: cut, delay, truncate.

It sits between a client and a service it cannot tell apart from the real one (the hosting node and a proxy,
or anyone and the chain's RPC): every connection accepted on `port` is joined to a fresh connection to
`upstream_port`, and bytes are pumped both ways by an asyncio loop on a daemon thread, so the process that
owns the relay (the chaos driver) can keep running while connections are broken under the processes it
watches. Faults apply to traffic from the moment they are set:

  cut        every open connection is closed now, and new ones are closed as soon as they are accepted,
             until cleared (what a crashed load balancer or a pulled cable looks like to both sides)
  delay      every chunk, either way, waits `ms` before it is forwarded (a slow or congested link)
  truncate   a connection is closed after `bytes` of the upstream's answers have gone through it (a
             response cut in the middle: a half-written HTTP body, a JSON-RPC reply missing its end)

Nothing is parsed: the relay knows bytes, not HTTP, so what it breaks is exactly what a network breaks.
"""
import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass

CHUNK = 64 * 1024


@dataclass(frozen=True)
class LinkFault:
    """What the relay does to traffic now; the default is nothing."""

    cut: bool = False
    delay_ms: int = 0
    truncate_after: int | None = None  # bytes of upstream answers a connection may carry before it is closed


CLEAR = LinkFault()


class Relay:
    """`Relay(upstream_port).start()` listens on a free loopback port (or `port`) and forwards to upstream."""

    def __init__(self, upstream_port: int, port: int = 0, name: str = "relay"):
        self.upstream_port = upstream_port
        self.name = name
        self._requested_port = port
        self.port = 0
        self.fault = CLEAR
        self.connections = 0  # accepted so far
        self.broken = 0  # closed by a fault
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"relay:{name}")
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Relay":
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def set(self, fault: LinkFault) -> None:
        """Switches the fault; a cut closes every open connection at once."""
        self.fault = fault
        if fault.cut:
            asyncio.run_coroutine_threadsafe(self._cut_all(), self._loop).result(timeout=10)

    def clear(self) -> None:
        self.set(CLEAR)

    def __enter__(self) -> "Relay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the loop's side

    async def _listen(self) -> asyncio.Server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._requested_port))
        return await asyncio.start_server(self._accept, sock=sock)

    async def _shutdown(self) -> None:
        if self._server is None:  # never started
            await self._cut_all()
            return
        self._server.close()
        await self._cut_all()
        await self._server.wait_closed()

    async def _cut_all(self) -> None:
        for writer in list(self._open):
            self.broken += 1
            _abort(writer)
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.fault.cut:
            self.broken += 1
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _abort(writer)  # the service is down: the client sees its connection closed, as without a relay
            return
        self._open |= {writer, up_writer}
        answered = [0]  # bytes of upstream answers through this connection
        try:
            await asyncio.gather(self._pump(reader, up_writer, None), self._pump(up_reader, writer, answered))
        finally:
            for side in (writer, up_writer):
                self._open.discard(side)
                _abort(side)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counted: list[int] | None):
        """Copies reader to writer until either end closes; `counted` is the answer direction's byte count."""
        try:
            while data := await reader.read(CHUNK):
                fault = self.fault
                if fault.delay_ms:
                    await asyncio.sleep(fault.delay_ms / 1000)
                if counted is not None and fault.truncate_after is not None:
                    room = fault.truncate_after - counted[0]
                    if room < len(data):
                        writer.write(data[:max(room, 0)])
                        await writer.drain()
                        self.broken += 1
                        break
                if counted is not None:
                    counted[0] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Closes a connection at once (no lingering half-close: a cut is abrupt)."""
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()
