"""Collecting u page by page (hosting/collection.py): bounded requests, the same outcome as one request per
holder, and a holder that fails mid-way keeping the pages it answered."""
import numpy as np
import pytest
from market_terms import PRICE

from orchestrator.errors import ProxyError
from orchestrator.hosting.collection import RowStore, collect_projections
from orchestrator.hosting.plan import Plan
from orchestrator.hosting.recording import Recording, RecordingHolder
from orchestrator.proxy.privacy import DEFAULT_CHECKS, Failure
from orchestrator.source.direct import DirectSource


def source(world, name):
    return next(s for phase in world.sources_by_phase for s in phase if s.name == name)


class RowLiar(DirectSource):
    """An adversarial holder: shifts the u of every row whose row id is a multiple of 3, whatever it is asked
    with (so that its lies are the same rows however the requests are cut)."""

    def evaluate(self, model_id, row_ids, submodels, **named):
        honest = super().evaluate(model_id, row_ids, submodels, **named)
        z = np.array(honest.z)
        z[np.asarray(row_ids) % 3 == 0] += 0.5
        return honest._replace(z=z)


class FailsAfter(DirectSource):
    """A holder that answers its first `answers` evaluate requests and is gone after (a proxy killed mid-way)."""

    def __init__(self, *args, answers: int, **named):
        super().__init__(*args, **named)
        self.left = answers

    def evaluate(self, model_id, row_ids, submodels, **named):
        if self.left == 0:
            raise ProxyError("direct:gone", None, "unavailable", "killed")
        self.left -= 1
        return super().evaluate(model_id, row_ids, submodels, **named)


def stops_selling(request) -> list[Failure]:
    return [Failure("source", None, None, "this source no longer answers for its rows")]


def holder(world, name, rows_of, signer, terms, kind=DirectSource, **options):
    """A direct source named `name` holding the rows of the world's source `rows_of`."""
    s = source(world, rows_of)
    return kind(signer.address, PRICE, s.mapping, s.rows, name=name, **options, **terms)


@pytest.fixture
def mixed(world, signer_of, direct_terms):
    """Four holders: one alone, an honest one and a liar holding the same rows, and one that refuses u."""
    return {"a": holder(world, "a", "clinic-a", signer_of(5), direct_terms),
            "lab": holder(world, "lab", "lab-e", signer_of(6), direct_terms),
            "liar": holder(world, "liar", "lab-e", signer_of(6), direct_terms, kind=RowLiar),
            "refuser": holder(world, "refuser", "clinic-b", signer_of(7), direct_terms,
                              checks=(*DEFAULT_CHECKS, stops_selling))}


def planned(node) -> Plan:
    node.poll_listings()
    node.request_quotes()
    return node.plan_group()


def collect(node, plan, page_rows, holders=None):
    return collect_projections(node.container, holders or node.holders, node.model_id, plan, lambda _: None,
                               checkpoint_id=1, page_rows=page_rows)


def test_collecting_in_small_pages_gives_what_one_request_per_holder_gives(make_node, mixed, market_model):
    node = make_node(mixed, group_size=1_000)
    plan = planned(node)
    whole, paged = collect(node, plan, page_rows=len(plan)), collect(node, plan, page_rows=7)
    assert whole.drops() == paged.drops() and set(whole.drops().values()) == {"mismatch", "privacy_refused"}
    active = whole.active
    assert np.array_equal(active, paged.active) and active.sum() == len(plan) - len(whole.drops())
    np.testing.assert_array_equal(paged.kept.u[active], whole.kept.u[active])
    np.testing.assert_array_equal(paged.kept.labels[active], whole.kept.labels[active])
    assert [(h, name) for h, name, _page in paged.mismatches] == [(h, name) for h, name, _r in whole.mismatches]
    assert {r for _h, _n, r in whole.mismatches} == {0}


def test_a_mismatch_found_on_a_page_is_recorded_under_that_pages_index(make_node, mixed, market_model):
    # (the signed answers behind it are kept under the same (page, holder): EvidenceLog; over HTTP, tests/e2e)
    node = make_node(mixed, group_size=1_000)
    plan = planned(node)
    position = {plan.row_hash(i): i for i in range(len(plan))}
    paged = collect(node, plan, page_rows=7)
    pages = {page for _h, _n, page in paged.mismatches}
    assert len(pages) > 1 and all(position[h] // 7 == page for h, _name, page in paged.mismatches)


def test_a_page_bound_below_a_holders_rows_makes_several_requests_each_within_it(world, make_node, mixed,
                                                                                  market_model):
    recording = Recording(world.standard_inputs)
    recorded = {name: RecordingHolder(h, recording) for name, h in mixed.items()}
    node = make_node(recorded, group_size=1_000)
    plan = planned(node)
    collect(node, plan, page_rows=16)
    for h, name in enumerate(plan.holders):
        asked = [e for e in recording.of("evaluate") if e.holder == name]
        held = plan.row_ids[h][plan.row_ids[h] >= 0]
        assert all(len(e.row_ids) <= 16 for e in asked)
        if name == "refuser":  # refused at its first page, and not asked again
            assert [e.refused for e in asked] == ["privacy_check_failed"]
        else:
            assert len(asked) > 1 and np.array_equal(np.concatenate([e.row_ids for e in asked]), held)


def test_a_holder_killed_mid_way_keeps_the_pages_it_answered_and_is_asked_no_more(world, make_node, signer_of,
                                                                                   direct_terms):
    recording = Recording(world.standard_inputs)
    dying = holder(world, "a", "clinic-a", signer_of(5), direct_terms, kind=FailsAfter, answers=2)
    node = make_node({"a": RecordingHolder(dying, recording)}, group_size=1_000)
    plan = planned(node)
    collected = collect(node, plan, page_rows=25)
    assert [e.refused for e in recording.of("evaluate")] == [None, None, "unavailable"]
    assert np.array_equal(np.flatnonzero(collected.active), np.arange(50))
    assert collected.drops() == {i: "no_holder_answered" for i in range(50, len(plan))}


def test_rows_collected_into_a_scratch_file_are_those_collected_in_memory_and_no_file_is_left(
        make_node, mixed, market_model, tmp_path):
    node = make_node(mixed, group_size=1_000)
    plan = planned(node)
    in_memory = collect(node, plan, page_rows=16)
    scratch = tmp_path / "scratch"
    on_disk = collect_projections(node.container, node.holders, node.model_id, plan, lambda _: None, 1,
                                  page_rows=16, kept=RowStore(len(plan), node.container.k, scratch))
    assert isinstance(on_disk.kept.u, np.memmap)
    np.testing.assert_array_equal(on_disk.kept.u, in_memory.kept.u)
    np.testing.assert_array_equal(on_disk.kept.labels, in_memory.kept.labels)
    assert list(scratch.iterdir()) == []
