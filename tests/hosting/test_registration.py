"""The owner's package: its privacy policy is chosen, committed, written and read back as one document."""
import json

import numpy as np
import pytest

from orchestrator.chain.deployment import save_deployment
from orchestrator.container import parse_model_json
from orchestrator.container.canonical_weights import weights_hash
from orchestrator.container.modelfile import to_network
from orchestrator.container.projected import ProjectedContainer
from orchestrator.errors import SplitLedgerError
from orchestrator.hosting import registration
from orchestrator.hosting.cli import owner_main
from orchestrator.hosting.registration import OwnerPackage, owner_default_policy, verify_registration
from orchestrator.container.container import normalise_standard_columns
from orchestrator.privacy.ldp_default import choose_ldp_policy
from orchestrator.privacy.policy import PrivacyPolicy


def files(tmp_path, world):
    package = OwnerPackage.with_default_policy(
        json.dumps(world.model_doc).encode(), world.field_table, registration.test_set_bytes(world.test_columns))
    paths = {name: tmp_path / f"{name}.json" for name in ("model", "fields", "test", "policy")}
    paths["model"].write_bytes(package.model_bytes)
    paths["fields"].write_bytes(package.table.to_json())
    paths["test"].write_bytes(package.test_bytes)
    paths["policy"].write_bytes(package.policy.to_json())
    return package, paths


def test_the_default_policy_is_projection_mode_chosen_on_the_test_set_and_committed_as_the_policy_hash(
        world, package):
    assert package.policy == owner_default_policy(world.field_table, world.test_columns)
    assert package.policy.mode == "projection"
    assert package.commitments()["policyHash"] == package.policy.commitment()


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
    model_id = int(capsys.readouterr().out.split()[1])
    target = package.container(model_id).target  # projection mode: W1 = A P over the raw inputs
    registered = owner.model(model_id)["weightsHash"]
    assert registered == weights_hash(target) == registration.RegistrationTerms.of(package).initial_weights_hash
    # Not the model file's own W1: projection mode trains (and the owner fetches) W1 = A P.
    assert registered != weights_hash(to_network(parse_model_json(package.model_bytes)))
