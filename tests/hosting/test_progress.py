"""The hosting node tells its progress (orchestrator/progress.py) as it quotes, collects u and trains: each
page of quotes, each page of u, each epoch; and it logs each epoch's loss."""
import logging

from market_terms import PRICE

from orchestrator.hosting.collection import collect_projections
from orchestrator.source.direct import DirectSource


def clinic(world, signer, terms):
    source = next(s for phase in world.sources_by_phase for s in phase if s.name == "clinic-a")
    return DirectSource(signer.address, PRICE, source.mapping, source.rows, name="a", **terms)


def test_a_group_tells_its_quotes_its_pages_of_u_and_each_epoch(world, make_node, signer_of, direct_terms, caplog):
    told = []
    node = make_node({"a": clinic(world, signer_of(5), direct_terms)}, epochs=3,
                     progress=lambda *step: told.append(step))
    caplog.set_level(logging.INFO, logger="orchestrator.hosting")
    [report] = node.run(max_groups=1)
    checkpoint = report.checkpoint_id
    assert told[0] == ("quotes to a", 1, 1)
    assert (f"checkpoint {checkpoint}: pages of u", 1, 1) in told
    assert [step for step in told if step[0].endswith("epochs")] == [
        (f"checkpoint {checkpoint}: epochs", epoch, 3) for epoch in (1, 2, 3)]
    lines = [r.getMessage() for r in caplog.records if f"checkpoint {checkpoint}: epoch " in r.getMessage()]
    assert [line.split(", loss")[0].strip() for line in lines] == [
        f"checkpoint {checkpoint}: epoch {epoch}/3" for epoch in (1, 2, 3)]


def test_collecting_u_tells_each_page_as_it_is_merged(world, make_node, signer_of, direct_terms):
    node = make_node({"a": clinic(world, signer_of(5), direct_terms)})
    node.poll_listings()
    node.request_quotes()
    plan = node.plan_group()
    pages = -(-len(plan) // 7)
    told = []
    collect_projections(node.container, node.holders, node.model_id, plan, lambda _: None, checkpoint_id=1,
                        page_rows=7, progress=lambda done, total: told.append((done, total)))
    assert pages > 1 and told == [(page, pages) for page in range(1, pages + 1)]
