"""A source's CSV cells become numbers, strings or missing values by their text alone; mappings come from
arguments or JSON."""
import math

import pytest

from orchestrator.errors import FieldError
from orchestrator.source.rows import cell_value, mapping_from_args, mapping_from_json, read_csv, rows_from_records


@pytest.mark.parametrize(
    "text, value",
    [("42", 42), ("-7", -7), ("+3", 3), ("1.5", 1.5), ("2e-3", 0.002), (".5", 0.5), ("5.", 5.0), ("-1.5E+2", -150.0)],
)
def test_numbers_are_numbers(text, value):
    assert cell_value(text) == value and type(cell_value(text)) is type(value)


@pytest.mark.parametrize("text", ["benign", "1_000", " 12", "12 ", "0x1f", "1,5", "e5", "--1"])
def test_text_that_is_not_strictly_a_number_stays_a_string(text):
    assert cell_value(text) == text


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite_number_names_become_floats_so_the_upload_refuses_them(text):
    value = cell_value(text)
    assert isinstance(value, float) and not math.isfinite(value)


def test_an_empty_cell_leaves_the_column_out_of_that_row(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,radius,outcome\nr1,12.5,benign\nr2,,malignant\n")
    assert read_csv(path) == [{"id": "r1", "radius": 12.5, "outcome": "benign"}, {"id": "r2", "outcome": "malignant"}]


def test_text_columns_keep_number_like_cells_as_strings(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("radius,class\n12.5,0\n13,1\n")
    assert read_csv(path, text_columns=["class"]) == [{"radius": 12.5, "class": "0"}, {"radius": 13, "class": "1"}]


def test_a_line_with_the_wrong_number_of_cells_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(FieldError, match="line 3: 1 cells for 2 columns"):
        read_csv(path)


def test_repeated_column_names_are_refused(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,a\n1,2\n")
    with pytest.raises(FieldError, match="distinct"):
        read_csv(path)


def test_records_with_none_leave_those_columns_out():
    assert rows_from_records([{"a": 1, "b": None}]) == [{"a": 1}]


def test_mapping_arguments_split_at_the_last_equals_sign():
    mapping = mapping_from_args(["Radius (mean)=mean_radius", "a=b=c"], ["Id"])
    assert mapping.columns == {"Radius (mean)": "mean_radius", "a=b": "c"} and mapping.ignored == {"Id"}


@pytest.mark.parametrize("pair", ["radius", "=mean_radius", "radius="])
def test_a_malformed_mapping_argument_is_refused(pair):
    with pytest.raises(FieldError, match="their_column=standard_name"):
        mapping_from_args([pair])


def test_a_mapping_document_holds_the_mapping_and_the_ignored_columns():
    mapping = mapping_from_json('{"mapping": {"Radius": "mean_radius"}, "ignored": ["Id"]}')
    assert mapping.columns == {"Radius": "mean_radius"} and mapping.ignored == {"Id"}
    with pytest.raises(FieldError):
        mapping_from_json('{"columns": {}}')
