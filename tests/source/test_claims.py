"""Which payouts a source claims from published bills."""
import json

import pytest

from orchestrator.chain.deployment import save_deployment
from orchestrator.errors import SplitLedgerError
from orchestrator.hashing.merkle import MerkleTree, payout_leaf
from orchestrator.source.claims import Payout, bill_files, payouts_of, read_bills
from orchestrator.source.cli import main

ME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _bill(checkpoint_id, *leaves):
    return {"checkpoint_id": checkpoint_id,
            "payouts": [{"source": s, "amount": str(a), "proof": ["0x" + "ab" * 32]} for s, a in leaves]}


def test_a_source_gets_its_own_leaf_of_each_bill_in_checkpoint_order():
    bills = [_bill(7, (OTHER, 5), (ME.lower(), 3)), _bill(2, (ME, 4))]
    assert payouts_of(bills, ME) == [Payout(2, 4, (b"\xab" * 32,)), Payout(7, 3, (b"\xab" * 32,))]


def test_a_bill_without_the_source_gives_it_nothing():
    assert payouts_of([_bill(1, (OTHER, 5))], ME) == []


def test_bills_in_a_directory_are_read_by_checkpoint_number(tmp_path):
    for n in (10, 2, 1):
        (tmp_path / f"checkpoint-{n}.json").write_text(json.dumps(_bill(n, (ME, n))))
    assert [b["checkpoint_id"] for b in read_bills(bill_files(tmp_path))] == [1, 2, 10]


def test_an_empty_bills_directory_is_an_error(tmp_path):
    with pytest.raises(SplitLedgerError, match="no published bill"):
        bill_files(tmp_path)


def test_a_bill_that_is_not_json_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint-1.json"
    path.write_text("{not json")
    with pytest.raises(SplitLedgerError, match=r"checkpoint-1.json"):
        read_bills([path])


# ------------------------------------------------------------------ claiming on chain, through the command line

UNIT = 10**18


@pytest.fixture
def two_settled_bills(deployed, signer_of, accounts, tmp_path):
    """(bills dir, deployment file, source): two settled checkpoints of one model, each paying the source."""
    token, _market, deployment = deployed
    owner, host, source = signer_of(1), signer_of(2), signer_of(5)
    token.transfer(owner.address, 100 * UNIT, {"from": accounts[0]})
    weights = [bytes([n]) * 32 for n in (1, 2, 3)]
    model_id, _ = owner.register_model(host.address, *(b"\x09" * 32,) * 4, weights[0], 500_000)
    owner.approve_and_deposit(model_id, 100 * UNIT)
    owner.set_quote(model_id, UNIT, 0)
    bills = tmp_path / "bills"
    bills.mkdir()
    for step, amount in enumerate((3 * UNIT, 2 * UNIT)):
        checkpoint_id, _ = host.open_checkpoint(model_id, 5, weights[step], 500_000 + step)
        tree = MerkleTree([payout_leaf(checkpoint_id, source.address, amount)])
        host.commit_bill(checkpoint_id, tree.root, b"\x06" * 32, amount // UNIT, amount)
        host.settle(checkpoint_id, 500_001 + step, weights[step + 1])
        (bills / f"checkpoint-{checkpoint_id}.json").write_text(json.dumps({
            "checkpoint_id": checkpoint_id,
            "payouts": [{"source": source.address, "amount": str(amount),
                         "proof": ["0x" + h.hex() for h in tree.proof(0)]}]}))
    path = tmp_path / "deployment.json"
    save_deployment(deployment, path)
    return bills, path, source


def test_claim_with_a_bills_dir_takes_every_payout_in_one_transaction_and_skips_it_the_second_time(
        two_settled_bills, w3, monkeypatch, capsys):
    bills, deployment, source = two_settled_bills
    monkeypatch.setenv("SPLITLEDGER_SOURCE_KEY", source.account.key.hex())
    argv = ["claim", "--bills-dir", str(bills), "--rpc", w3.provider.endpoint_uri, "--deployment", str(deployment)]
    before = source.balance_of(source.address)
    assert main(argv) == 0
    assert source.balance_of(source.address) - before == 5 * UNIT
    first = capsys.readouterr().out
    assert first.count("claimed") == 2 and len(set(line.split("(tx ")[1] for line in first.splitlines())) == 1
    assert main(argv) == 0
    assert source.balance_of(source.address) - before == 5 * UNIT
    assert capsys.readouterr().out.count("already claimed") == 2
