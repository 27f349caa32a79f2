"""The proxy command's options for its transport: TLS, and the limits on what a request may cost
(docs/proxy.md, "Transport and limits")."""
import argparse

from orchestrator.errors import UsageError

from .limits import DEFAULT_BURST, DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE, Limits
from .tls import ServerTLS


def add_transport_options(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("TLS (both together; without them the proxy serves plain http)")
    tls.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain) to serve https with")
    tls.add_argument("--tls-key", metavar="FILE", help="PEM private key of that certificate")
    limits = parser.add_argument_group("limits (docs/protocol.md, 'Limits')")
    limits.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, metavar="N",
                        help="refuse request bodies over N bytes with 413 (default: %(default)s, 32 MiB)")
    limits.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="PER_SECOND",
                        help="requests a second each caller (client address) may make, sustained "
                             "(default: %(default)s); over it: 429 with Retry-After")
    limits.add_argument("--burst", type=int, default=DEFAULT_BURST, metavar="N",
                        help="requests a caller may make at once after being idle (default: %(default)s)")
    limits.add_argument("--no-rate-limit", action="store_true",
                        help="no per-caller rate limit (benchmarks that drive the proxy flat out)")


def server_tls(args: argparse.Namespace) -> ServerTLS | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together: give both or neither")
    return ServerTLS(args.tls_cert, args.tls_key) if args.tls_cert else None


def limits(args: argparse.Namespace) -> Limits:
    try:
        return Limits(max_body_bytes=args.max_body_bytes, rate=None if args.no_rate_limit else args.rate,
                      burst=args.burst)
    except ValueError as e:
        raise UsageError(str(e)) from None
