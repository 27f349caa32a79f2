"""A hosting node training under the default (ldp) policy, on direct-mode sources whose holders release each
row once through the mechanism: honest rows raise accuracy and are paid; mislabelled rows that outweigh them
swap the fitted class means, lower accuracy and are rolled back, paying nobody. (Fewer mislabelled rows than
honest ones barely move the model fitted to every kept release: docs/privacy.md, "What the gate sees under
ldp".)"""
import json

import pytest
from market_terms import PRICE

from orchestrator.hosting import registration
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice
from orchestrator.source.direct import DirectSource


@pytest.fixture
def package(world):
    """The default ldp policy at epsilon 8: at the default 4, the test world's 60 honest rows fix the class
    means only to about +-0.75 of a clip bound of 0.96, and which way a few hundred rows tip them is chance."""
    return OwnerPackage.with_default_policy(json.dumps(world.model_doc).encode(), world.field_table,
                                            registration.test_set_bytes(world.test_columns),
                                            choice=PolicyChoice(epsilon=8.0))


def source(world, name, signer, direct_terms, *, flip=False):
    rows = next(s for phase in world.sources_by_phase for s in phase if s.name == name)
    label = next(column for column, standard in rows.mapping.items() if standard == world.field_table.output.name)
    classes = world.field_table.output.operator.categories
    data = [{**row, label: classes[1 - classes.index(row[label])]} if flip else row for row in rows.rows]
    return DirectSource(signer.address, PRICE, rows.mapping, data, name=name, hash_key=rows.hash_key, **direct_terms)


def test_under_ldp_honest_rows_are_paid_and_mislabelled_rows_outweighing_them_are_rolled_back(
        world, package, make_node, market_model, signer_of, direct_terms):
    model_id, _owner, host = market_model
    assert package.policy.mode == "ldp"
    node = make_node({"e": source(world, "lab-e", signer_of(5), direct_terms)})
    [honest] = node.run(max_groups=1)
    assert honest.kept and honest.accuracy_after > honest.accuracy_before and honest.paid
    best = host.model(model_id)["bestAccuracy"]
    node.holders = {name: source(world, name, signer_of(6 + i), direct_terms, flip=True)
                    for i, name in enumerate(("clinic-a", "clinic-b", "registry-f"))}
    [flipped] = node.run(max_groups=1)
    assert not flipped.kept and flipped.paid == {}
    assert host.checkpoint(flipped.checkpoint_id)["state"] == "rolled_back"
    assert host.model(model_id)["bestAccuracy"] == best and node.container.accuracy_ppm() == best
