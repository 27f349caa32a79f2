"""A proxy started with a certificate serves https; a client trusts it only through the CA bundle it is given
(or the system's trust store), and says so when the certificate does not verify."""
import pytest
from proxy_builders import PRICE, SOURCE_A_KEY, source_mapping, source_rows
from tls_builders import make_authority, make_server_cert

from orchestrator.errors import ProxyUnavailable, SplitLedgerError
from orchestrator.proxy.cli import main
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.server import proxy_process
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


@pytest.fixture
def authority(tmp_path):
    return make_authority(tmp_path)


@pytest.fixture
def server_tls(tmp_path, authority):
    return make_server_cert(tmp_path, authority)


def test_a_tls_proxy_answers_a_client_that_trusts_its_ca(serve, authority, server_tls, columns, onchain):
    proxy = serve(Vault(Store(":memory:")), tls=server_tls, ca_bundle=authority.cert_file)
    assert proxy.url.startswith("https://127.0.0.1:")
    ids = proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns), source_rows(columns, range(3)),
                       ["Patient"]).row_ids
    assert [x.row_id for x in proxy.listings()] == list(ids)


def test_the_certificate_names_localhost_too(serve, authority, server_tls):
    url = serve(Vault(Store(":memory:")), tls=server_tls).url.replace("127.0.0.1", "localhost")
    with ProxyClient(url, ca_bundle=authority.cert_file) as proxy:
        assert proxy.health() == 0


def test_a_client_without_the_ca_is_refused_naming_the_tls_failure(serve, server_tls):
    url = serve(Vault(Store(":memory:")), tls=server_tls).url
    with ProxyClient(url) as stranger, pytest.raises(ProxyUnavailable) as refused:
        stranger.health()
    assert "TLS failure" in refused.value.detail and "did not verify against the system's trust store" in refused.value.detail


def test_a_client_trusting_another_ca_is_refused(serve, server_tls, tmp_path):
    other = make_authority(tmp_path, "another CA")
    url = serve(Vault(Store(":memory:")), tls=server_tls).url
    with ProxyClient(url, ca_bundle=other.cert_file) as client, pytest.raises(ProxyUnavailable) as refused:
        client.health()
    assert f"did not verify against the CA bundle {other.cert_file}" in refused.value.detail


def test_a_certificate_for_another_name_is_refused(serve, authority, tmp_path):
    elsewhere = make_server_cert(tmp_path, authority, names=("proxy.example",))
    url = serve(Vault(Store(":memory:")), tls=elsewhere).url
    with ProxyClient(url, ca_bundle=authority.cert_file) as client, pytest.raises(ProxyUnavailable) as refused:
        client.health()
    assert "TLS failure" in refused.value.detail and "127.0.0.1" in refused.value.detail


def test_plain_http_to_the_tls_port_fails_clearly(serve, server_tls):
    url = serve(Vault(Store(":memory:")), tls=server_tls).url
    with ProxyClient(url.replace("https://", "http://")) as plain, pytest.raises(ProxyUnavailable) as refused:
        plain.health()
    assert "is the URL https://?" in refused.value.detail


def test_https_to_a_plain_proxy_fails_naming_tls(serve, authority):
    url = serve(Vault(Store(":memory:"))).url
    with (ProxyClient(url.replace("http://", "https://"), ca_bundle=authority.cert_file) as client,
          pytest.raises(ProxyUnavailable) as refused):
        client.health()
    assert "TLS failure" in refused.value.detail


def test_a_missing_ca_bundle_is_refused_before_any_request(tmp_path):
    with pytest.raises(SplitLedgerError, match="cannot read the CA bundle"):
        ProxyClient("https://127.0.0.1:1", ca_bundle=str(tmp_path / "absent.pem"))


def test_a_proxy_process_started_with_tls_options_serves_https(tmp_path, authority, server_tls, columns, onchain,
                                                               proxy_options):
    args, env = proxy_options()
    with proxy_process(str(tmp_path / "p.sqlite"), args=args, env=env, tls=server_tls,
                       ca_bundle=authority.cert_file) as proxy:
        assert proxy.url.startswith("https://")
        proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns), source_rows(columns, range(2)),
                     ["Patient"])
        assert proxy.health() == 2


def test_a_certificate_without_its_key_stops_the_proxy_before_it_listens(tmp_path, server_tls, capsys):
    chain = ["--rpc", "http://127.0.0.1:1", "--deployment", str(tmp_path / "absent.json"), "--key-env", "NO_SUCH_VAR"]
    assert main(["--db", str(tmp_path / "p.sqlite"), "--port", "1", *chain, "--tls-cert", server_tls.cert_file]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


def test_a_plain_http_client_loads_no_trust_store():
    # Nothing to verify over plain http; loading the system's CA certificates cost every upload and CLI call.
    with ProxyClient("http://127.0.0.1:9") as plain, ProxyClient("https://127.0.0.1:9") as secured:
        assert plain._http._transport._pool._ssl_context.cert_store_stats()["x509_ca"] == 0
        assert secured._http._transport._pool._ssl_context.cert_store_stats()["x509_ca"] > 0
