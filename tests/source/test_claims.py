"""Which payouts a source claims from published bills."""
import json

import pytest

from orchestrator.errors import SplitLedgerError
from orchestrator.source.claims import Payout, bill_files, payouts_of, read_bills

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
    with pytest.raises(SplitLedgerError, match="checkpoint-1.json"):
        read_bills([path])
