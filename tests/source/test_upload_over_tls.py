"""A data source hands rows to an https proxy, trusting it through the CA bundle it names, and is refused,
before anything is stored, by a proxy whose certificate that bundle does not vouch for."""

from proxy_builders import PRICE, source_rows
from test_source_cli import map_args, write_csv
from tls_builders import make_authority, make_server_cert

from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault
from orchestrator.source.cli import main


def test_upload_with_the_proxys_ca_bundle_stores_the_rows(columns, serve, tmp_path, capsys, signed):
    authority = make_authority(tmp_path)
    vault = Vault(Store(":memory:"))
    proxy = serve(vault, tls=make_server_cert(tmp_path, authority), ca_bundle=authority.cert_file)
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(5)))
    code = main(["upload", "--proxy", proxy.url, *signed, "--min-price", str(PRICE), "--csv", path,
                 *map_args(columns), "--ignore", "Patient", "--ca-bundle", authority.cert_file])
    assert code == 0, capsys.readouterr().err
    assert vault.row_count() == 5


def test_upload_without_the_proxys_ca_is_refused_naming_tls_and_stores_nothing(columns, serve, tmp_path, capsys,
                                                                               signed):
    vault = Vault(Store(":memory:"))
    proxy = serve(vault, tls=make_server_cert(tmp_path, make_authority(tmp_path)))
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(5)))
    code = main(["upload", "--proxy", proxy.url, *signed, "--min-price", str(PRICE), "--csv", path,
                 *map_args(columns), "--ignore", "Patient"])
    assert code == 1 and "TLS failure" in capsys.readouterr().err
    assert vault.row_count() == 0
