"""After an upload, each run of consecutive row ids with one field composition is published once; a failing
publisher never loses the rows."""
import argparse
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_account import Account
from proxy_builders import PRICE, SOURCE_A_KEY

from orchestrator.chain.deployment import save_deployment
from orchestrator.chain.listings import listing_publisher
from orchestrator.errors import SplitLedgerError
from orchestrator.proxy.cli import main, proxy_account
from orchestrator.proxy.intake import ListingRun, listing_runs
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault

MAPPING = {"R": "mean_radius", "T": "mean_texture", "Y": "diagnosis"}


def row(*present):
    full = {"R": 12.5, "T": 19.0, "Y": "benign"}
    return {column: full[column] for column in present}


def test_runs_group_consecutive_ids_with_the_same_composition():
    a, b = ("x", "y"), ("x",)
    assert listing_runs([1, 2, 3, 4, 6], [a, a, b, a, a]) == [
        ListingRun(1, 2, a), ListingRun(3, 1, b), ListingRun(4, 1, a), ListingRun(6, 1, a)
    ]


def test_the_publisher_is_called_once_per_run_with_first_id_count_and_sorted_fields(serve, onchain):
    calls = []
    proxy = serve(Vault(Store(":memory:")), publisher=lambda *args: calls.append(args))
    rows = [row("R", "T", "Y"), row("Y", "T", "R"), row("R", "Y"), row("R", "T", "Y"), row("R", "T", "Y")]
    answer = proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, MAPPING, rows)
    full, partial = ["diagnosis", "mean_radius", "mean_texture"], ["diagnosis", "mean_radius"]
    assert calls == [(1, 2, full), (3, 1, partial), (4, 2, full)]
    assert answer.warnings == ()
    proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, MAPPING, [row("R", "Y")])
    assert calls[-1] == (6, 1, partial)


def test_a_failing_publisher_leaves_the_rows_stored_and_listed_and_says_so(serve, onchain):
    def chain_down(first, count, fields):
        raise ConnectionError("chain unreachable")

    proxy = serve(Vault(Store(":memory:")), publisher=chain_down)
    answer = proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, MAPPING, [row("R", "T", "Y")] * 3)
    assert answer.row_ids == (1, 2, 3)
    assert len(answer.warnings) == 1
    assert "rows 1..3 are stored but their listing was not published: ConnectionError: chain unreachable" in answer.warnings[0]
    assert [x.row_id for x in proxy.listings()] == [1, 2, 3]


def test_a_refused_upload_publishes_nothing(serve, onchain):
    calls = []
    proxy = serve(Vault(Store(":memory:")), publisher=lambda *args: calls.append(args))
    with pytest.raises(SplitLedgerError):
        proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, MAPPING, [row("R", "T", "Y"), {"R": None}])
    assert calls == []


def chain_args(**given):
    return argparse.Namespace(**{"rpc": None, "deployment": None, "key_env": None, **given})


def test_a_proxy_without_chain_arguments_refuses_to_start(capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["--db", str(tmp_path / "p.sqlite"), "--port", "1"])
    assert stopped.value.code == 2
    assert "--rpc" in capsys.readouterr().err


def test_the_private_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.delenv("SPLITLEDGER_TEST_NO_KEY", raising=False)
    with pytest.raises(SplitLedgerError, match="SPLITLEDGER_TEST_NO_KEY holds no private key"):
        proxy_account(chain_args(key_env="SPLITLEDGER_TEST_NO_KEY"))


def test_concurrent_uploads_are_each_listed_on_chain_once_in_row_id_order(serve, onchain, tmp_path):
    # Found by bench/load.py: uploads run on the server's worker threads, and their listings raced for the
    # proxy's nonce ("nonce too low") and reached the chain out of row-id order (ListingOverlaps).
    account = Account.create()
    onchain.fund(account.address, 10**18)
    deployment = tmp_path / "deployment.json"
    save_deployment(onchain.deployment, deployment)
    publisher = listing_publisher(onchain.owner.w3.provider.endpoint_uri, str(deployment), account.key.hex())
    proxy = serve(Vault(Store(":memory:")), publisher=publisher)
    uploads, rows = 12, 3
    start = threading.Barrier(uploads)

    def upload(_k):
        start.wait()
        return proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, MAPPING, [row("R", "T", "Y")] * rows)

    with ThreadPoolExecutor(uploads) as pool:
        answers = list(pool.map(upload, range(uploads)))
    assert [w for a in answers for w in a.warnings] == []
    market = onchain.registry.client.market
    listed = sorted((e["args"]["firstRowId"], e["args"]["rowCount"])
                    for e in market.events.RowsListed.get_logs(from_block=0) if e["args"]["proxy"] == account.address)
    assert listed == [(1 + k * rows, rows) for k in range(uploads)]
