"""Detection model: a field composition passes only with every input field and the output field."""
from container_builders import wine_columns, wine_table

from orchestrator.container import DetectionModel, FieldSpec, FieldTable, OneHot, ZScore

TABLE = wine_table(wine_columns())
DETECT = DetectionModel.from_table(TABLE)
COMPLETE = set(TABLE.field_names)


def test_a_composition_with_every_input_and_the_output_passes():
    assert DETECT(COMPLETE)


def test_extra_fields_do_not_stop_a_composition():
    assert DETECT(COMPLETE | {"vineyard", "bottling_date"})


def test_a_composition_without_the_output_field_fails():
    assert not DETECT(COMPLETE - {"cultivar"})


def test_a_composition_missing_one_input_fails_and_says_which():
    assert not DETECT(COMPLETE - {"hue"})
    assert DETECT.missing(COMPLETE - {"hue"}) == {"hue"}


def test_one_hot_fields_count_under_their_own_name_not_their_expansion():
    table = FieldTable((FieldSpec("colour", "colour", OneHot(("red", "blue"))),), FieldSpec("y", "y", ZScore(0.0, 1.0)))
    detect = DetectionModel.from_table(table)
    assert detect({"colour", "y"}) and not detect({"colour=red", "colour=blue", "y"})
