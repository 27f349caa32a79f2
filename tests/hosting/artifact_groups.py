"""A hosting node that closes one settled and one rolled-back group (a module of its own, like market_terms)."""
from market_terms import PRICE

from orchestrator.source.direct import DirectSource


def holder(world, name, address, terms, flip=False):
    """A direct source with one of the world's sources' rows; `flip` mislabels every row."""
    source = next(s for phase in world.sources_by_phase for s in phase if s.name == name)
    label = next(c for c, s in source.mapping.items() if s == "diagnosis")
    rows = [{**r, label: "benign" if r[label] == "malignant" else "malignant"} if flip else r for r in source.rows]
    return DirectSource(address, PRICE, source.mapping, rows, name=name, **terms)


def closed_groups(world, make_node, signer_of, direct_terms, **config):
    """(node, settled report, rolled-back report): clean rows first, then mislabelled ones."""
    node = make_node({"a": holder(world, "clinic-a", signer_of(5).address, direct_terms)}, **config)
    [settled] = node.run(max_groups=1)
    node.holders = {"f": holder(world, "clinic-b", signer_of(6).address, direct_terms, flip=True)}
    [rolled_back] = node.run(max_groups=1)
    assert settled.kept and not rolled_back.kept
    return node, settled, rolled_back
