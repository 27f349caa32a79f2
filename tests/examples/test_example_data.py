"""The worked example's inputs: a bundled dataset cut into owner rows, test set and sources, without overlap."""
import csv
import json

import numpy as np
import onnxruntime as ort
import pytest

from orchestrator.container.fields import ColumnMapping, fit_table, normalise_columns
from orchestrator.examples.cli import main
from orchestrator.examples.datasets import example_data
from orchestrator.examples.model import owner_model_onnx
from orchestrator.source.rows import mapping_from_json, read_csv


def _rows(columns, names):
    return {tuple(values) for values in zip(*(columns[n] for n in names))}


def test_owner_test_and_source_rows_are_disjoint_and_cover_the_dataset():
    example = example_data("wine", seed=3)
    names = (*example.inputs, example.output)
    owner, test = _rows(example.owner_rows, names), _rows(example.test_set, names)
    held = {row for source in example.sources for row in source.rows}
    assert len(owner) == 30 and len(test) == 60
    assert not owner & test and not (owner | test) & held
    assert len(owner) + len(test) + len(held) == 178


def test_the_same_seed_gives_the_same_cut():
    assert example_data("breast_cancer", seed=5) == example_data("breast_cancer", seed=5)


def test_each_source_maps_its_own_column_names_onto_the_standard_names():
    example = example_data("wine", sources=3)
    for source in example.sources:
        assert set(source.mapping.values()) == {*example.inputs, example.output}
        assert not set(source.header) & set(example.inputs)


def test_too_many_rows_asked_of_a_small_dataset_is_refused():
    with pytest.raises(ValueError, match="fewer than"):
        example_data("wine", owner_rows=100, test_rows=100)


def test_data_command_writes_csv_files_the_source_cli_reads_back(tmp_path):
    assert main(["data", "--dataset", "wine", "--out", str(tmp_path)]) == 0
    example = example_data("wine")
    rows = read_csv(tmp_path / "source-a.csv", text_columns=["Cultivar (label)"])
    mapping = mapping_from_json((tmp_path / "source-a.mapping.json").read_text())
    assert len(rows) == len(example.sources[0].rows)
    assert set(rows[0]) == set(mapping.columns)
    assert json.loads((tmp_path / "test-set.json").read_text()) == example.test_set
    with open(tmp_path / "source-b.csv", newline="") as f:
        assert next(csv.reader(f)) == list(example.sources[1].header)


def test_owner_model_is_an_onnx_classifier_over_the_normalised_inputs():
    example = example_data("wine")
    table = fit_table(example.owner_rows, [(n, "z-score", n) for n in example.inputs],
                      (example.output, "label", "cultivar"))
    session = ort.InferenceSession(owner_model_onnx(table, example.owner_rows))
    x = normalise_columns(table, ColumnMapping.identity(table), example.test_set).features.astype(np.float32)
    labels = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert labels.shape == (60,) and set(labels.tolist()) <= {0, 1, 2}
