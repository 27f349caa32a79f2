"""The owner's package: its privacy policy is chosen, committed, written and read back as one document."""
import json

import numpy as np
import pytest

from orchestrator.chain.deployment import save_deployment
from orchestrator.container import parse_model_json
from orchestrator.container.canonical_weights import weights_hash
from orchestrator.container.container import normalise_standard_columns
from orchestrator.container.modelfile import dump_model, to_network, with_network
from orchestrator.container.training import centralized_step
from orchestrator.errors import SplitLedgerError
from orchestrator.hosting import registration
from orchestrator.hosting.cli import owner_main
from orchestrator.hosting.records import Commitments
from orchestrator.hosting.registration import OwnerPackage, PolicyChoice, owner_default_policy, verify_registration
from orchestrator.privacy.ldp_default import DEFAULT_EPSILON, choose_ldp_policy
from orchestrator.privacy.policy import LDPSettings, PrivacyPolicy, ldp_policy
from orchestrator.privacy.projected import ProjectedContainer


def files(tmp_path, world):
    package = OwnerPackage.with_default_policy(
        json.dumps(world.model_doc).encode(), world.field_table, registration.test_set_bytes(world.test_columns))
    paths = {name: tmp_path / f"{name}.json" for name in ("model", "fields", "test", "policy")}
    paths["model"].write_bytes(package.model_bytes)
    paths["fields"].write_bytes(package.table.to_json())
    paths["test"].write_bytes(package.test_bytes)
    paths["policy"].write_bytes(package.policy.to_json())
    return package, paths


def test_the_default_policy_is_ldp_mode_at_the_default_epsilon_chosen_on_the_test_set_and_committed(world):
    package = OwnerPackage.with_default_policy(json.dumps(world.model_doc).encode(), world.field_table,
                                               registration.test_set_bytes(world.test_columns))
    assert package.policy == owner_default_policy(world.field_table, world.test_columns)
    assert package.policy.mode == "ldp" and package.policy.ldp.epsilon == DEFAULT_EPSILON
    assert package.commitments().policy_hash == package.policy.commitment()


def test_the_policy_file_the_owner_writes_is_the_policy_the_hosting_node_reads_back(world, tmp_path):
    written, paths = files(tmp_path, world)
    read = OwnerPackage.from_files(paths["model"], paths["fields"], paths["test"], policy=paths["policy"])
    assert read.policy == written.policy and read.commitments() == written.commitments()


def test_the_owner_may_choose_the_default_policy_on_reference_rows_other_than_the_test_set(world, tmp_path):
    _package, paths = files(tmp_path, world)
    reference = {name: values[: len(values) // 2] for name, values in world.test_columns.items()}
    paths["reference"] = tmp_path / "reference.json"
    paths["reference"].write_text(json.dumps(reference))
    read = OwnerPackage.from_files(paths["model"], paths["fields"], paths["test"], reference=paths["reference"])
    assert read.policy == owner_default_policy(world.field_table, reference)
    assert read.policy != owner_default_policy(world.field_table, world.test_columns)


def test_the_chain_holds_the_commitments_the_package_registers_in_their_order(market_model, package):
    model_id, _owner, host = market_model
    registered = Commitments.registered(host.model(model_id))
    assert registered == package.commitments()
    assert registered.policy_hash == package.policy.commitment() and registered.model_hash != registered.policy_hash


def test_files_with_another_policy_than_the_registered_one_are_refused(world, package):
    other = OwnerPackage(package.model_bytes, package.table, package.test_bytes,
                         PrivacyPolicy("plain", world.standard_inputs))
    with pytest.raises(SplitLedgerError, match="policyHash"):
        verify_registration(other, package.commitments())


def test_the_container_is_the_one_the_policy_calls_for(world, package):
    assert isinstance(package.container(1), ProjectedContainer)
    plain = OwnerPackage(package.model_bytes, package.table, package.test_bytes,
                         PrivacyPolicy("plain", world.standard_inputs))
    container = plain.container(1)
    assert not isinstance(container, ProjectedContainer) and container.policy == plain.policy


def test_an_ldp_policy_gets_the_projected_container_that_knows_its_release(world, package):
    rows = normalise_standard_columns(world.field_table, world.test_columns)
    classes = len(world.field_table.output.operator.categories)
    policy = choose_ldp_policy(world.standard_inputs, rows.features, rows.labels, 4.0, classes=classes)
    container = OwnerPackage(package.model_bytes, package.table, package.test_bytes, policy).container(1)
    assert isinstance(container, ProjectedContainer) and container.release == policy.release
    assert np.array_equal(container.projection, policy.matrix)


def test_owner_register_commits_the_weights_hash_of_the_target_the_hosting_node_trains(
        world, tmp_path, deployed, signer_of, monkeypatch, capsys):
    package, paths = files(tmp_path, world)
    owner, host = signer_of(1), signer_of(2)
    save_deployment(deployed[2], tmp_path / "deployment.json")
    monkeypatch.setenv("SPLITLEDGER_OWNER_KEY", owner.account.key.hex())

    code = owner_main(["register", "--rpc", owner.w3.provider.endpoint_uri, "--deployment",
                       str(tmp_path / "deployment.json"), "--model", str(paths["model"]), "--fields",
                       str(paths["fields"]), "--test-set", str(paths["test"]), "--policy", str(paths["policy"]),
                       "--host", host.address])

    assert code == 0
    out = capsys.readouterr().out
    model_id = int(out.split()[1])
    assert f"privacy policy: {package.policy.summary()}" in out and "what it costs: the owner's model scores" in out
    target = package.container(model_id).target  # projection mode: W1 = A P over the raw inputs
    registered = owner.model(model_id)["weightsHash"]
    assert registered == weights_hash(target) == registration.RegistrationTerms.of(package).initial_weights_hash
    # Not the model file's own W1: projection mode trains (and the owner fetches) W1 = A P.
    assert registered != weights_hash(to_network(parse_model_json(package.model_bytes)))


def trained_package(world, package: OwnerPackage, steps: int = 300) -> OwnerPackage:
    """The package with the owner's network trained (unsplit, on its test rows): a model that already scores."""
    container = OwnerPackage(package.model_bytes, package.table, package.test_bytes,
                             PrivacyPolicy("plain", world.standard_inputs)).container(0)
    mlp, state = container.target, container.opt_state
    x, y = container.test_set.features, container.test_set.labels
    for _ in range(steps):
        mlp, state, _loss = centralized_step(container.optimizer, container.task, mlp, state, x, y)
    trained = dump_model(with_network(parse_model_json(package.model_bytes), mlp))
    return OwnerPackage(trained, package.table, package.test_bytes, package.policy)


def test_registration_reports_what_the_policy_costs_a_trained_model_on_the_owners_rows(world, package):
    cost = trained_package(world, package).policy_cost()
    assert cost.scored_on == "test rows" and cost.rows == len(world.test_columns["diagnosis"])
    # W1 = A P keeps only the part of the trained W1 inside P's row space: the trained model loses accuracy.
    assert cost.as_given_ppm > 900_000 and cost.under_policy_ppm < cost.as_given_ppm
    assert f"{cost.as_given_ppm / 1e4:.1f} %" in cost.describe()


def test_the_policy_cost_is_scored_on_the_reference_rows_the_owner_named(world, tmp_path):
    _package, paths = files(tmp_path, world)
    reference = {name: values[:40] for name, values in world.test_columns.items()}
    paths["reference"] = tmp_path / "reference.json"
    paths["reference"].write_text(json.dumps(reference))
    read = OwnerPackage.from_files(paths["model"], paths["fields"], paths["test"], reference=paths["reference"])
    cost = read.policy_cost()
    assert (cost.scored_on, cost.rows) == ("reference rows", 40)


def test_owner_register_refuses_a_policy_file_whose_noise_does_not_give_its_claimed_epsilon(
        world, tmp_path, capsys):
    _package, paths = files(tmp_path, world)
    direction = np.zeros((1, len(world.standard_inputs)), np.float32)
    direction[0, :2] = np.float32(0.5)
    honest = ldp_policy(world.standard_inputs, direction, LDPSettings.for_epsilon(2.0, 1.0, 1e-5, label_share=0.25))
    forged = json.loads(honest.to_json())
    forged["ldp"]["noise_multiplier"] /= 2  # half the noise, the same claim
    paths["policy"].write_text(json.dumps(forged))

    code = owner_main(["register", "--rpc", "http://127.0.0.1:1", "--model", str(paths["model"]), "--fields",
                       str(paths["fields"]), "--test-set", str(paths["test"]), "--policy", str(paths["policy"]),
                       "--host", "0x" + "11" * 20])

    assert code != 0
    assert "not the claimed 2" in capsys.readouterr().err


def test_the_owner_chooses_the_epsilon_label_share_and_budget_of_the_default_policy(world, tmp_path):
    _package, paths = files(tmp_path, world)
    choice = PolicyChoice(epsilon=2.0, label_share=None, budget=6.0)
    read = OwnerPackage.from_files(paths["model"], paths["fields"], paths["test"], choice=choice)
    ldp = read.policy.ldp
    assert (ldp.epsilon, ldp.label_epsilon, ldp.budget) == (2.0, None, 6.0)
    assert ldp.recomputed_epsilon() == pytest.approx(2.0, rel=1e-6)


def test_the_owner_may_still_choose_the_projection_policy_without_noise(world):
    policy = owner_default_policy(world.field_table, world.test_columns, choice=PolicyChoice(mode="projection"))
    assert policy.mode == "projection" and policy.ldp is None
