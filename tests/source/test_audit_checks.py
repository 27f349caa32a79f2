"""The audit's judgement of one checkpoint (orchestrator.source.audit.check_checkpoint), on records made here:
what it concludes when a bill is missing, forged, told two ways, or rows name no checkpoint."""
from eth_account import Account

from orchestrator.auth.messages import Domain
from orchestrator.auth.signing import RequestSigner
from orchestrator.hosting.billing import BilledRow, make_bill
from orchestrator.hosting.publication import bill_document, document_pages
from orchestrator.proxy import wire
from orchestrator.proxy.holder import ComputedRow, ReceivedBill, SourceRecords
from orchestrator.source.audit import ChainCheckpoint, audit_records, check_checkpoint

DOMAIN = Domain(31337, "0x" + "11" * 20)
HOST, HOLDER, SOURCE = Account.create(), Account.create().address, Account.create().address
MODEL, CHECKPOINT, PRICE = 3, 9, 10**16
ROW_HASHES = [bytes([i]) * 32 for i in range(1, 4)]


def computed(checkpoint=CHECKPOINT):
    return [ComputedRow(MODEL, checkpoint, i, h, PRICE) for i, h in enumerate(ROW_HASHES, 1)]


def honest_bill():
    return make_bill(CHECKPOINT, [BilledRow(h, SOURCE, PRICE) for h in ROW_HASHES])


def chain_of(bill, host=HOST.address):
    return ChainCheckpoint(CHECKPOINT, MODEL, "settled", len(bill.rows), bill.total, bill.payout_root, bill.rows_root,
                           host)


def received(document, signer=HOST):
    body = wire.dumps(document)
    auth = RequestSigner(signer, DOMAIN).request(HOLDER, MODEL, "bill", body)
    return ReceivedBill(HOLDER, MODEL, CHECKPOINT, body, auth.nonce, auth.expiry, auth.signature)


def judged(bills, chain=None):
    records = SourceRecords(HOLDER, "direct:test", tuple(computed()), tuple(bills))
    report = audit_records(SOURCE, [records], lambda c: chain or chain_of(honest_bill()), DOMAIN)
    return {d.kind for d in report.discrepancies}


def test_an_honest_bill_signed_by_the_hosting_node_passes():
    assert judged([received(bill_document(MODEL, CHECKPOINT, honest_bill(), []))]) == set()


def test_a_settled_checkpoint_whose_bill_never_arrived_is_a_missing_bill():
    assert judged([]) == {"missing_bill"}


def test_a_bill_signed_by_someone_else_than_the_hosting_node_is_not_believed():
    forged = received(bill_document(MODEL, CHECKPOINT, honest_bill(), []), signer=Account.create())
    assert judged([forged]) == {"bill_not_signed_by_host", "missing_bill"}


def test_two_different_bills_of_one_checkpoint_from_the_hosting_node_are_conflicting():
    honest = bill_document(MODEL, CHECKPOINT, honest_bill(), [])
    other = {**honest, "drops": [{"row_hash": "0x" + "ee" * 32, "reason": "mismatch"}]}
    assert judged([received(honest), received(other)]) == {"conflicting_bills"}


def paged(document, page_rows=1):
    return list(document_pages(document, page_rows))


def test_a_bill_in_pages_is_judged_as_the_pages_make_it_whatever_order_or_holder_they_came_in():
    pages = paged(bill_document(MODEL, CHECKPOINT, honest_bill(), []))
    assert len(pages) == len(ROW_HASHES)
    assert judged([received(p) for p in reversed(pages)]) == set()


def test_a_bill_in_pages_whose_rows_are_wrong_fails_as_a_whole_bill_would():
    bill = make_bill(CHECKPOINT, [BilledRow(h, SOURCE, PRICE) for h in ROW_HASHES[1:]])
    assert judged([received(p) for p in paged(bill_document(MODEL, CHECKPOINT, bill, []))]) >= {"row_left_out"}


def test_a_settled_bill_with_a_page_no_holder_received_is_incomplete_and_its_rows_are_not_judged():
    first, _second, third = paged(bill_document(MODEL, CHECKPOINT, honest_bill(), []))
    records = SourceRecords(HOLDER, "direct:test", tuple(computed()), (received(first), received(third)))
    [discrepancy] = audit_records(SOURCE, [records], lambda c: chain_of(honest_bill()), DOMAIN).discrepancies
    assert discrepancy.kind == "incomplete_bill" and "pages 2 of the 3 pages" in discrepancy.detail
    assert discrepancy.evidence["bill"]["missing_pages"] == [1] and len(discrepancy.evidence["bill"]["pages"]) == 2


def test_two_bodies_for_one_page_of_a_bill_are_conflicting():
    pages = paged(bill_document(MODEL, CHECKPOINT, honest_bill(), []))
    other = {**pages[0], "drops": [{"row_hash": "0x" + "ee" * 32, "reason": "mismatch"}]}
    assert judged([received(p) for p in pages] + [received(other)]) == {"conflicting_bills"}


def test_rows_listed_as_dropped_are_not_owed_a_place_in_the_bill():
    bill = make_bill(CHECKPOINT, [BilledRow(h, SOURCE, PRICE) for h in ROW_HASHES[1:]])
    document = bill_document(MODEL, CHECKPOINT, bill, [(ROW_HASHES[0], "mismatch")])
    assert judged([received(document)], chain_of(bill)) == set()


def test_a_bill_claiming_a_rollback_of_a_settled_checkpoint_is_an_outcome_mismatch():
    document = bill_document(MODEL, CHECKPOINT, None, [])
    assert judged([received(document)]) == {"outcome_mismatch"}


def test_rows_computed_by_a_request_naming_no_checkpoint_are_reported():
    records = SourceRecords(HOLDER, "direct:test", tuple(computed(checkpoint=None)), ())
    report = audit_records(SOURCE, [records], lambda c: None, DOMAIN)
    assert [d.kind for d in report.discrepancies] == ["computed_without_checkpoint"] * len(ROW_HASHES)


def test_rows_computed_for_a_checkpoint_the_chain_does_not_know_are_reported():
    verdict = check_checkpoint(SOURCE, CHECKPOINT, [], [], None, DOMAIN)
    assert [d.kind for d in verdict.discrepancies] == ["unknown_checkpoint"]
