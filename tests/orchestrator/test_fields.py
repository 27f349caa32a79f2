"""Standard field table: operators, fitting, column mapping, and the errors that name row and field."""
import math

import numpy as np
import pytest
from container_builders import wine_columns, wine_table

from orchestrator.container import (
    ColumnMapping,
    FieldSpec,
    FieldTable,
    Identity,
    Label,
    Log1pZScore,
    MinMax,
    OneHot,
    ZScore,
    fit_table,
    normalise_columns,
    normalise_rows,
    standard_name,
)
from orchestrator.errors import FieldError, RowError

TABLE = FieldTable(
    inputs=(
        FieldSpec("age", "age of the customer in years", ZScore(40.0, 10.0)),
        FieldSpec("income", "yearly income in euros", Log1pZScore(10.0, 2.0)),
        FieldSpec("colour", "favourite colour", OneHot(("red", "green", "blue"))),
        FieldSpec("height", "height in cm", MinMax(100.0, 200.0)),
    ),
    output=FieldSpec("churn", "did the customer leave", Label(("no", "yes"))),
)
MAPPING = ColumnMapping({"Age": "age", "Income": "income", "Colour": "colour", "Height": "height", "Left": "churn"})
ROW = {"Age": 50, "Income": 0.0, "Colour": "green", "Height": 150.0, "Left": "yes"}


def row_error(rows, mapping=MAPPING):
    with pytest.raises(RowError) as error:
        normalise_rows(TABLE, mapping, rows)
    return error.value


def test_a_row_becomes_model_inputs_in_table_order_and_a_label():
    rows = normalise_rows(TABLE, MAPPING, [ROW])
    assert rows.features.tolist() == [[1.0, -5.0, 0.0, 1.0, 0.0, 0.5]]
    assert rows.labels.tolist() == [1.0]


def test_one_hot_field_expands_to_one_model_input_per_category():
    assert TABLE.model_inputs == ("age", "income", "colour=red", "colour=green", "colour=blue", "height")


def test_min_max_does_not_clip_values_outside_its_bounds():
    assert MinMax(0.0, 10.0).apply([15, -5], "x").tolist() == [1.5, -0.5]


def test_log1p_z_score_scales_the_log():
    assert Log1pZScore(0.0, 2.0).apply([math.e - 1], "x").tolist() == pytest.approx([0.5])


def test_identity_passes_numbers_through():
    assert Identity().apply(np.array([2, -3]), "x").tolist() == [2.0, -3.0]


def test_columns_and_records_normalise_alike():
    columns = {name: [ROW[name], ROW[name]] for name in ROW}
    by_columns = normalise_columns(TABLE, MAPPING, columns)
    by_rows = normalise_rows(TABLE, MAPPING, [ROW, ROW])
    assert np.array_equal(by_columns.features, by_rows.features)


def test_an_ignored_column_is_left_out():
    mapping = ColumnMapping(MAPPING.columns, ignored=frozenset({"Notes"}))
    assert normalise_rows(TABLE, mapping, [ROW | {"Notes": "called twice"}]).features.shape == (1, 6)


def test_fitted_operators_take_their_parameters_from_the_reference_data():
    columns = wine_columns()
    table = wine_table(columns)
    alcohol = next(spec for spec in table.inputs if spec.name == "alcohol").operator
    proline = next(spec for spec in table.inputs if spec.name == "proline").operator
    assert (alcohol.mean, alcohol.std) == (np.mean(columns["alcohol"]), np.std(columns["alcohol"]))
    assert proline.mean == pytest.approx(np.log1p(columns["proline"]).mean())
    assert table.output.operator.categories == ("class_0", "class_1", "class_2")


def test_fitted_one_hot_knows_the_sorted_distinct_categories():
    table = fit_table({"c": ["b", "a", "b"], "y": [1.0, 2.0, 3.0]}, [("c", "one-hot", "c")], ("y", "identity", "y"))
    assert table.model_inputs == ("c=a", "c=b")


def test_a_constant_reference_column_cannot_be_fitted():
    with pytest.raises(FieldError, match="'x': the reference values are constant"):
        fit_table({"x": [3.0, 3.0], "y": ["a", "b"]}, [("x", "z-score", "x")], ("y", "label", "y"))


def test_a_table_survives_a_json_round_trip_with_the_same_commitment():
    again = FieldTable.from_json(TABLE.to_json())
    assert again == TABLE and again.commitment() == TABLE.commitment()


def test_the_commitment_changes_with_any_operator_parameter():
    changed = FieldTable((*TABLE.inputs[:3], FieldSpec("height", "height in cm", MinMax(100.0, 201.0))), TABLE.output)
    assert changed.commitment() != TABLE.commitment()


def test_standard_names_are_made_from_free_form_labels():
    assert standard_name("sepal length (cm)") == "sepal_length_cm"
    assert standard_name("OD280/OD315 of diluted wines") == "od280_od315_of_diluted_wines"


@pytest.mark.parametrize("name", ["Age", "2nd", "colour=red", "", "age group"])
def test_a_field_name_outside_the_standard_pattern_is_refused(name):
    with pytest.raises(FieldError, match="not a standard field name"):
        FieldSpec(name, "meaning", ZScore(0.0, 1.0))


def test_a_field_without_a_meaning_is_refused():
    with pytest.raises(FieldError, match="needs a meaning"):
        FieldSpec("age", "  ", ZScore(0.0, 1.0))


def test_repeated_field_names_are_refused():
    with pytest.raises(FieldError, match=r"repeated: \['age'\]"):
        FieldTable((*TABLE.inputs, FieldSpec("age", "again", ZScore(0.0, 1.0))), TABLE.output)


def test_z_score_with_zero_std_is_refused():
    with pytest.raises(FieldError, match="std > 0"):
        ZScore(1.0, 0.0)


def test_min_max_with_inverted_bounds_is_refused():
    with pytest.raises(FieldError, match="low < high"):
        MinMax(5.0, 1.0)


def test_one_hot_without_categories_is_refused():
    with pytest.raises(FieldError, match="non-empty list"):
        OneHot(())


def test_label_operator_on_an_input_is_refused():
    with pytest.raises(FieldError, match="label operator is for the output field only"):
        FieldTable((FieldSpec("kind", "k", Label(("a", "b"))),), TABLE.output)


def test_one_hot_output_is_refused():
    with pytest.raises(FieldError, match="use the label operator"):
        FieldTable(TABLE.inputs, FieldSpec("churn", "left", OneHot(("no", "yes"))))


def test_unknown_operator_kind_in_a_document_is_refused():
    doc = TABLE.to_dict()
    doc["inputs"][0]["operator"] = {"kind": "rank"}
    with pytest.raises(FieldError, match="'age': operator kind must be one of"):
        FieldTable.from_dict(doc)


def test_mapping_onto_a_name_the_table_does_not_have_is_refused():
    mapping = ColumnMapping(MAPPING.columns | {"Age": "years"})
    with pytest.raises(FieldError, match="column 'Age' is mapped to 'years', which is not a standard field"):
        normalise_rows(TABLE, mapping, [ROW])


def test_a_standard_field_without_a_mapped_column_is_refused():
    mapping = ColumnMapping({k: v for k, v in MAPPING.columns.items() if k != "Height"})
    with pytest.raises(FieldError, match=r"no column is mapped to the standard fields \['height'\]"):
        normalise_rows(TABLE, mapping, [ROW])


def test_two_columns_mapped_onto_one_field_are_refused():
    mapping = ColumnMapping(MAPPING.columns | {"Years": "age"})
    with pytest.raises(FieldError, match="'Age' and 'Years' are both mapped to 'age'"):
        normalise_rows(TABLE, mapping, [ROW])


def test_a_column_neither_mapped_nor_ignored_is_refused():
    columns = {name: [value] for name, value in ROW.items()} | {"Notes": ["x"]}
    with pytest.raises(FieldError, match="column 'Notes' is neither mapped"):
        normalise_columns(TABLE, MAPPING, columns)


def test_an_unknown_column_in_a_record_names_its_row():
    error = row_error([ROW, ROW | {"Notes": "x"}])
    assert (error.row, error.field) == (1, "Notes")


def test_a_record_missing_a_mapped_column_names_its_row_and_field():
    error = row_error([ROW, ROW, {k: v for k, v in ROW.items() if k != "Income"}])
    assert (error.row, error.field) == (2, "income") and "'Income' is missing" in str(error)


@pytest.mark.parametrize(
    "column, field, value, problem",
    [
        ("Age", "age", "51", "str '51' where a number is expected"),
        ("Age", "age", True, "bool True where a number is expected"),
        ("Age", "age", None, "NoneType None where a number is expected"),
        ("Height", "height", float("nan"), "nan is not a finite number"),
        ("Height", "height", float("-inf"), "-inf is not a finite number"),
        ("Income", "income", -1.0, "outside log1p's domain"),
        ("Colour", "colour", "purple", "unknown category 'purple'"),
        ("Colour", "colour", 1, "int 1 where a category (string) is expected"),
        ("Left", "churn", "maybe", "unknown category 'maybe'"),
    ],
)
def test_a_value_that_cannot_be_normalised_names_its_row_and_field(column, field, value, problem):
    error = row_error([ROW, ROW, ROW | {column: value}])
    assert (error.row, error.field) == (2, field)
    assert problem in str(error) and f"source column {column!r}" in str(error)


def test_a_boolean_numpy_column_is_not_numbers():
    columns = {name: [value] for name, value in ROW.items()} | {"Height": np.array([True])}
    with pytest.raises(RowError, match="bool True where a number is expected") as error:
        normalise_columns(TABLE, MAPPING, columns)
    assert error.value.row == 0
