"""Split: sub-models per layer-1 neuron, the main model, and batched evaluation that recomposes the target."""
import json

import jax
import numpy as np
import pytest
from container_builders import breast_cancer, model_doc

from orchestrator.container import (
    SubModel,
    bank_from_submodels,
    derive_bank,
    evaluate,
    join,
    parse_model,
    submodels,
    to_network,
)
from orchestrator.container.network import logits, main_logits
from orchestrator.container.split import split
from orchestrator.errors import SubModelError

INPUTS, X, _, TASK = breast_cancer()


@pytest.fixture(scope="module")
def masked():
    """A 30-16-8-2 model whose layer-1 neurons each see about a third of the inputs."""
    doc = model_doc(INPUTS, [16, 8], TASK, ["relu", "tanh", "softmax"], seed=3, mask_density=0.35)
    return parse_model(doc), to_network(parse_model(doc))


def test_one_sub_model_per_layer_one_neuron(masked):
    _, mlp = masked
    _, subs = split(mlp, INPUTS)
    assert [s.neuron for s in subs] == list(range(16))


def test_a_sub_model_holds_only_the_inputs_its_neuron_is_connected_to(masked):
    model, mlp = masked
    _, subs = split(mlp, INPUTS)
    for sub in subs:
        connected = [INPUTS[i] for i in np.flatnonzero(model.connectivity[sub.neuron])]
        assert list(sub.fields) == connected
        assert all(w != 0.0 for w in sub.weights)


def test_a_sub_model_carries_its_neurons_weights_and_bias(masked):
    model, mlp = masked
    sub = split(mlp, INPUTS)[1][5]
    cols = [INPUTS.index(f) for f in sub.fields]
    assert np.array_equal(np.float32(sub.weights), model.layers[0].weight[5, cols])
    assert np.float32(sub.bias) == model.layers[0].bias[5]


def test_main_model_is_the_target_without_its_input_layer(masked):
    _, mlp = masked
    main, _ = split(mlp, INPUTS)
    assert [layer.weight.shape for layer in main.layers] == [(8, 16), (2, 8)]
    assert main.activations == ("relu", "tanh", "softmax")


def test_sub_model_outputs_through_the_main_model_give_exactly_the_targets_logits(masked):
    _, mlp = masked
    main, subs = split(mlp, INPUTS)
    z = evaluate(bank_from_submodels(subs, INPUTS), X)
    assert np.array_equal(np.asarray(main_logits(main, z)), np.asarray(logits(mlp, X)))


def test_sub_models_and_main_model_join_back_into_the_target(masked):
    _, mlp = masked
    bank = derive_bank(mlp, INPUTS)
    joined = join(mlp.main, bank_from_submodels(submodels(bank), INPUTS))
    assert jax.tree.structure(joined) == jax.tree.structure(mlp)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(joined), jax.tree.leaves(mlp)))


def test_a_sub_model_survives_a_json_round_trip_on_its_own(masked):
    _, mlp = masked
    for sub in split(mlp, INPUTS)[1]:
        assert SubModel.from_dict(json.loads(json.dumps(sub.to_dict()))) == sub


def test_all_sub_models_are_evaluated_as_one_matmul(masked):
    _, mlp = masked
    jaxpr = str(jax.make_jaxpr(evaluate)(derive_bank(mlp, INPUTS), X))
    assert jaxpr.count("dot_general") == 1
    assert "while" not in jaxpr and "scan" not in jaxpr


def test_serialised_sub_model_with_an_extra_key_is_refused():
    with pytest.raises(SubModelError, match="exactly: neuron, fields, weights, bias"):
        SubModel.from_dict({"neuron": 0, "fields": ["a"], "weights": [1.0], "bias": 0.0, "inputs": ["b"]})


def test_sub_model_with_fewer_weights_than_fields_is_refused():
    with pytest.raises(SubModelError, match="2 fields need as many weights"):
        SubModel.from_dict({"neuron": 0, "fields": ["a", "b"], "weights": [1.0], "bias": 0.0})


def test_sub_model_with_a_nan_weight_is_refused():
    with pytest.raises(SubModelError, match="finite"):
        SubModel(0, ("a",), (float("nan"),), 0.0)


def test_sub_models_missing_a_neuron_cannot_be_banked():
    subs = [SubModel(0, ("a",), (1.0,), 0.0), SubModel(2, ("b",), (1.0,), 0.0)]
    with pytest.raises(SubModelError, match=r"neurons 0..1, each once"):
        bank_from_submodels(subs, ["a", "b"])


def test_sub_model_reading_an_input_the_source_does_not_have_is_refused():
    with pytest.raises(SubModelError, match=r"sub-model 0 reads \['salary'\]"):
        bank_from_submodels([SubModel(0, ("a", "salary"), (1.0, 2.0), 0.0)], ["a", "b"])
