"""Claims 5, 6, 8: a holder refuses sub-models one of whose outputs would give an input away."""
import pytest
from proxy_builders import MODEL_ID, PRICE, layer1_submodels, plain_policy, vault_with

from orchestrator.container.split import SubModel
from orchestrator.errors import PrivacyCheckFailed, ProxyError, RowsNotQuoted
from orchestrator.proxy import privacy
from orchestrator.proxy.privacy import CheckRequest, Failure, literal_check, run_checks
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault


def request(*subs):
    return CheckRequest(model_id=1, row_ids=(1,), submodels=tuple(subs))


def test_a_submodel_reading_one_input_fails_naming_the_neuron_and_the_input():
    result = run_checks(request(SubModel(0, ("a", "b"), (0.5, 1.0), 0.0), SubModel(1, ("c",), (2.0,), 0.1)))
    assert not result.passed
    assert [(f.neuron, f.field) for f in result.failures] == [(1, "c")]
    assert "sub-model 1 reads only 'c'" in result.describe()


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_zero_weight_connections_are_dropped_before_counting_inputs(zero):
    result = run_checks(request(SubModel(0, ("a", "b", "c"), (zero, 1.5, zero), 0.0)))
    assert [(f.neuron, f.field) for f in result.failures] == [(0, "b")]


def test_a_submodel_with_no_connected_input_passes_because_its_output_is_the_same_for_every_row():
    assert run_checks(request(SubModel(0, ("a", "b"), (0.0, 0.0), 0.7), SubModel(1, (), (), 0.1))).passed


def test_submodels_reading_two_or_more_inputs_pass():
    assert run_checks(request(SubModel(0, ("a", "b"), (1e-30, -2.0), 0.0), SubModel(1, ("a", "b", "c"), (1, 2, 3), 0))).passed


def test_every_failing_submodel_is_reported_not_only_the_first():
    result = run_checks(request(*(SubModel(j, (f"x{j}",), (1.0,), 0.0) for j in range(3))))
    assert [f.neuron for f in result.failures] == [0, 1, 2]


def test_further_checks_run_after_the_literal_one_and_can_refuse_on_their_own():
    seen = []

    def no_model_seven(req: CheckRequest) -> list[Failure]:
        seen.append(req.model_id)
        return [Failure("audit", None, None, "model 7 is audited")] if req.model_id == 7 else []

    checks = (literal_check, no_model_seven)
    subs = (SubModel(0, ("a", "b"), (1.0, 1.0), 0.0),)
    assert run_checks(CheckRequest(1, (1,), subs), checks).passed
    assert run_checks(CheckRequest(7, (1,), subs), checks).failures[0].check == "audit"
    assert seen == [1, 7]
    assert (literal_check, privacy.policy_check) == privacy.DEFAULT_CHECKS


def test_the_vault_runs_its_checks_before_looking_for_the_model_or_the_rows():
    with pytest.raises(PrivacyCheckFailed) as caught:
        Vault(Store(":memory:")).evaluate(404, [1], [SubModel(0, ("a",), (1.0,), 0.0)])
    assert caught.value.failures[0].field == "a"


def test_a_vault_given_an_extra_check_refuses_what_it_refuses(columns, table):
    vault, ids = vault_with(columns, range(3))
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    strict = Vault(vault.store, checks=(literal_check, lambda req: [Failure("cap", None, None, "too many rows")]))
    with pytest.raises(PrivacyCheckFailed, match="too many rows"):
        strict.evaluate(MODEL_ID, ids, layer1_submodels(table))


def test_over_http_failing_submodels_are_refused_422_and_nothing_is_computed(columns, table, serve, onchain):
    vault, ids = vault_with(columns, range(5))
    vault.quote(MODEL_ID, PRICE, table, ids, plain_policy(table))
    onchain.register_as(MODEL_ID, table, plain_policy(table))
    proxy = serve(vault)
    subs = list(layer1_submodels(table, 4))
    leaky = subs[2]
    subs[2] = SubModel(2, leaky.fields, (leaky.weights[0],) + (0.0,) * (len(leaky.fields) - 1), leaky.bias)
    with pytest.raises(ProxyError) as caught:
        proxy.evaluate(MODEL_ID, ids, subs)
    assert (caught.value.status, caught.value.code) == (422, "privacy_check_failed")
    assert f"sub-model 2 reads only {leaky.fields[0]!r}" in caught.value.detail
    with pytest.raises(RowsNotQuoted):  # the refused sub-models did not become the gradient's mask either
        vault.gradient(MODEL_ID, ids, [[0.0] * 4] * 5)
