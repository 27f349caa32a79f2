"""TLS for proxies: the certificate a proxy serves with, and how a client decides to trust it.

A proxy started with `--tls-cert FILE --tls-key FILE` serves HTTPS (uvicorn loads the files). A client
verifies the proxy's certificate and host name against a CA bundle it names (`ca_bundle`: a private CA for a
consortium's proxies) or, without one, against the system's trust store; it never talks to an https proxy
unverified. A verification failure is raised as ProxyUnavailable whose detail names the TLS failure, so a
hosting node reports "certificate did not verify" rather than a bare connection error.
"""
import ssl
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SplitLedgerError


@dataclass(frozen=True)
class ServerTLS:
    cert_file: str  # PEM: the server certificate, followed by any intermediate certificates
    key_file: str  # PEM: its private key (unencrypted: the proxy starts unattended)

    def __post_init__(self) -> None:
        for what, path in (("certificate", self.cert_file), ("key", self.key_file)):
            if not Path(path).is_file():
                raise SplitLedgerError(f"TLS {what} file {path} does not exist")

    def uvicorn_options(self) -> dict[str, str]:
        return {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file}


def client_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verification against `ca_bundle` alone (PEM file of CA certificates) or, without one, the system store."""
    if ca_bundle is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as e:
        raise SplitLedgerError(f"cannot read the CA bundle {ca_bundle}: {e}") from None


def tls_failure(error: BaseException) -> ssl.SSLError | None:
    """The TLS error underneath a transport error (httpx wraps it), if that is what it was."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe(error: ssl.SSLError, ca_bundle: str | None) -> str:
    trusted = f"the CA bundle {ca_bundle}" if ca_bundle else "the system's trust store"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS failure: the proxy's certificate did not verify against {trusted}: {error.verify_message}"
    return f"TLS failure: {error.reason or error} (is the proxy serving https at this address?)"
