"""Model file: what loads, what it becomes, and every way loading refuses a file."""
import copy
import json

import numpy as np
import pytest
from container_builders import model_doc

from orchestrator.container import dump_model, parse_model, parse_model_json, to_network, with_network
from orchestrator.container.network import predict
from orchestrator.errors import ModelFileError

INPUTS = ["age", "income", "colour=red", "colour=blue"]
TASK = {"kind": "classification", "output": "churn", "classes": ["no", "yes"]}


def doc(**overrides):
    base = model_doc(INPUTS, [3], TASK, ["relu", "softmax"], seed=1)
    return {**base, **overrides}


def refused(document, *fragments):
    with pytest.raises(ModelFileError) as error:
        parse_model(document)
    for fragment in fragments:
        assert fragment in str(error.value)
    return error.value


def test_a_valid_file_loads_with_its_inputs_task_and_default_adam():
    model = parse_model(doc())
    assert model.inputs == tuple(INPUTS)
    assert model.task.classes == ("no", "yes")
    assert [layer.weight.shape for layer in model.layers] == [(3, 4), (2, 3)]
    assert model.optimizer.name == "adam" and model.optimizer.learning_rate == 1e-3


def test_dumped_file_reloads_to_bit_identical_weights():
    model = parse_model(doc(mask=[[1, 1, 0, 1], [1, 1, 1, 1], [0, 1, 1, 1]]) | {"layers": _masked_layers()})
    again = parse_model_json(dump_model(model))
    for a, b in zip(model.layers, again.layers):
        assert a.weight.tobytes() == b.weight.tobytes() and a.bias.tobytes() == b.bias.tobytes()
    assert (again.mask == model.mask).all()


def _masked_layers():
    layers = copy.deepcopy(doc()["layers"])
    layers[0]["weight"][0][2] = 0.0
    layers[0]["weight"][2][0] = 0.0
    return layers


def test_exported_trained_network_reloads_with_the_same_predictions():
    model = parse_model(doc())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    again = parse_model_json(dump_model(with_network(model, to_network(model))))
    assert np.array_equal(predict(to_network(again), x), predict(to_network(model), x))


def test_an_exact_zero_in_layer_one_means_not_connected():
    layers = copy.deepcopy(doc()["layers"])
    layers[0]["weight"][1][3] = 0.0
    connectivity = parse_model(doc(layers=layers)).connectivity
    assert not connectivity[1, 3] and connectivity.sum() == 11


def test_file_that_is_not_json_is_refused():
    with pytest.raises(ModelFileError, match="not JSON"):
        parse_model_json(b"{weights: nope")


def test_unknown_top_level_key_is_refused():
    refused(doc(learning_rate=0.1), "unknown keys", "learning_rate")


def test_missing_layers_are_refused():
    document = doc()
    del document["layers"]
    refused(document, "lacks", "layers")


def test_wrong_format_name_is_refused():
    refused(doc(format="keras"), "splitledger-mlp")


def test_duplicate_input_names_are_refused():
    refused(doc(inputs=["age", "age", "colour=red", "colour=blue"]), "repeat", "age")


def test_input_name_that_is_not_a_standard_name_is_refused():
    refused(doc(inputs=["Age", "income", "colour=red", "colour=blue"]), "inputs[0]", "'Age'")


def test_unknown_activation_is_refused_naming_the_layer():
    layers = doc()["layers"]
    layers[0]["activation"] = "swish"
    refused(doc(layers=layers), "layers[0].activation", "swish")


def test_softmax_on_a_hidden_layer_is_refused():
    layers = doc()["layers"]
    layers[0]["activation"] = "softmax"
    refused(doc(layers=layers), "layers[0]", "only allowed on the output layer")


def test_weight_columns_not_matching_the_inputs_are_refused():
    layers = doc()["layers"]
    layers[0]["weight"] = [row[:3] for row in layers[0]["weight"]]
    refused(doc(layers=layers), "layers[0].weight has 3 columns", "4 inputs")


def test_weight_not_matching_the_previous_layer_is_refused():
    layers = doc()["layers"]
    layers[1]["weight"] = [[*row, 0.5] for row in layers[1]["weight"]]
    refused(doc(layers=layers), "layers[1].weight has 4 columns", "3 inputs")


def test_bias_of_the_wrong_length_is_refused():
    layers = doc()["layers"]
    layers[0]["bias"] = [0.0, 0.0]
    refused(doc(layers=layers), "layers[0].bias has 2 entries", "3 units")


def test_ragged_weight_matrix_is_refused():
    layers = doc()["layers"]
    layers[0]["weight"][2] = layers[0]["weight"][2][:2]
    refused(doc(layers=layers), "ragged", "layers[0].weight[2]")


def test_nan_weight_is_refused_naming_its_position():
    text = json.dumps(doc()).replace(json.dumps(doc()["layers"][1]["weight"][1][2]), "NaN", 1)
    with pytest.raises(ModelFileError, match=r"layers\[1\]\.weight\[1\]\[2\] is nan"):
        parse_model_json(text)


def test_weight_beyond_float32_range_is_refused():
    layers = doc()["layers"]
    layers[0]["bias"][1] = 1e39
    refused(doc(layers=layers), "layers[0].bias[1]", "finite float32")


def test_boolean_weight_is_refused():
    layers = doc()["layers"]
    layers[0]["bias"][0] = True
    refused(doc(layers=layers), "layers[0].bias[0] = True is not a number")


def test_string_weight_is_refused():
    layers = doc()["layers"]
    layers[1]["weight"][0][0] = "0.5"
    refused(doc(layers=layers), "layers[1].weight[0][0] = '0.5' is not a number")


def test_mask_of_the_wrong_shape_is_refused():
    refused(doc(mask=[[1, 1, 1, 1]] * 2), "mask must be a 3 x 4")


def test_mask_entries_other_than_zero_or_one_are_refused():
    refused(doc(mask=[[1, 1, 1, 1], [1, 2, 1, 1], [1, 1, 1, 1]]), "mask[1][1] = 2")


def test_masked_out_nonzero_weight_is_a_mask_weight_mismatch():
    error = refused(doc(mask=[[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]]), "mask/weight mismatch", "neuron 1")
    assert "'colour=blue'" in str(error)


def test_layer_one_without_any_connection_is_refused():
    layers = doc()["layers"]
    layers[0]["weight"] = [[0.0] * 4 for _ in range(3)]
    refused(doc(layers=layers), "layer 1 has no connections")


def test_output_units_not_matching_the_classes_are_refused():
    task = {"kind": "classification", "output": "churn", "classes": ["no", "yes", "maybe"]}
    refused(doc(task=task), "does not fit the task", "3 units")


def test_single_sigmoid_output_fits_two_classes():
    model = parse_model(model_doc(INPUTS, [3], TASK, ["tanh", "sigmoid"]))
    assert model.layers[-1].weight.shape == (1, 3)


def test_regression_with_softmax_output_is_refused():
    task = {"kind": "regression", "output": "price", "tolerance": 0.1}
    document = model_doc(INPUTS, [3], task, ["relu", "identity"])
    document["layers"][-1]["activation"] = "softmax"
    refused(document, "does not fit the task")


def test_regression_without_a_positive_tolerance_is_refused():
    document = model_doc(INPUTS, [3], {"kind": "regression", "output": "price", "tolerance": 0.1}, ["relu", "identity"])
    document["task"]["tolerance"] = 0
    refused(document, "task.tolerance must be a finite number > 0")


def test_classification_with_repeated_classes_is_refused():
    refused(doc(task={"kind": "classification", "output": "churn", "classes": ["no", "no"]}), "distinct classes")


def test_task_of_unknown_kind_is_refused():
    refused(doc(task={"kind": "ranking", "output": "churn"}), "task must be one of")


def test_unknown_optimizer_is_refused():
    refused(doc(optimizer={"name": "lion", "learning_rate": 0.01}), "optimizer.name", "lion")


def test_optimizer_option_it_does_not_take_is_refused():
    refused(doc(optimizer={"name": "adam", "learning_rate": 0.01, "momentum": 0.9}), "optimizer adam takes")


def test_negative_learning_rate_is_refused():
    refused(doc(optimizer={"name": "sgd", "learning_rate": -0.1}), "optimizer.learning_rate")
