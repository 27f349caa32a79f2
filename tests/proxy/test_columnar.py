"""The binary wire's codec (orchestrator/proxy/columnar.py): what it carries exactly and what it refuses."""
import numpy as np
import pytest

from orchestrator.proxy.columnar import Column, WireError, categories, decode, encode

IDS = Column("int64")
MATRIX = Column("matrix", width=3)


def test_a_batch_round_trips_control_and_columns_exactly():
    u = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    ids = np.arange(10, 15, dtype=np.int64)
    body = encode({"model_id": 2**200, "note": "x"}, {"row_id": ids, "u": u})
    frame = decode(body, max_rows=5, expect={"row_id": IDS, "u": MATRIX})
    assert frame.control == {"model_id": 2**200, "note": "x"}
    assert frame.rows == 5
    np.testing.assert_array_equal(frame.columns["row_id"], ids)
    assert frame.columns["u"].dtype == np.float32 and np.array_equal(frame.columns["u"], u)


def test_a_body_of_control_only_has_no_rows():
    frame = decode(encode({"model_id": 1}), max_rows=10)
    assert frame.rows == 0 and frame.columns == {}


@pytest.mark.parametrize("cut", [1, 8, 100, -1])
def test_a_truncated_body_is_refused(cut):
    body = encode({"model_id": 1}, {"row_id": np.arange(100, dtype=np.int64)})
    with pytest.raises(WireError, match=r"not a complete Arrow IPC stream|control document|rows"):
        decode(body[:cut] if cut > 0 else body[:len(body) + cut - 8], max_rows=100, expect={"row_id": IDS})


def test_corrupt_bytes_are_refused():
    body = bytearray(encode({"model_id": 1}, {"row_id": np.arange(100, dtype=np.int64)}))
    body[40:60] = b"\xff" * 20
    with pytest.raises(WireError):
        decode(bytes(body), max_rows=100, expect={"row_id": IDS})


def test_json_is_not_a_binary_body():
    with pytest.raises(WireError, match="not a complete Arrow IPC stream"):
        decode(b'{"model_id": 1}', max_rows=10)


def test_more_rows_than_the_bound_are_refused():
    body = encode({}, {"row_id": np.arange(11, dtype=np.int64)})
    with pytest.raises(WireError, match="11 rows in one body; at most 10"):
        decode(body, max_rows=10, expect={"row_id": IDS})


def test_a_missing_column_is_refused():
    with pytest.raises(WireError, match=r"lacks the column\(s\) \['u'\]"):
        decode(encode({}, {"row_id": np.arange(3, dtype=np.int64)}), max_rows=3, expect={"row_id": IDS, "u": MATRIX})


def test_an_unexpected_column_is_refused():
    body = encode({}, {"row_id": np.arange(3, dtype=np.int64), "extra": np.zeros(3)})
    with pytest.raises(WireError, match="unexpected column 'extra'"):
        decode(body, max_rows=3, expect={"row_id": IDS})


def test_a_column_of_the_wrong_type_is_refused():
    body = encode({}, {"row_id": np.arange(3, dtype=np.float64)})
    with pytest.raises(WireError, match="must be int64"):
        decode(body, max_rows=3, expect={"row_id": IDS})


def test_a_matrix_of_the_wrong_width_is_refused():
    body = encode({}, {"u": np.zeros((3, 4))})
    with pytest.raises(WireError, match="must hold 3 values per row, not 4"):
        decode(body, max_rows=3, expect={"u": MATRIX})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_are_refused(bad):
    u = np.zeros((3, 3))
    u[1, 2] = bad
    with pytest.raises(WireError, match="non-finite"):
        decode(encode({}, {"u": u}), max_rows=3, expect={"u": MATRIX})


def test_nulls_are_refused_where_none_are_allowed():
    with pytest.raises(WireError, match="1 null"):
        decode(encode({}, {"age": [1.0, None, 3.0]}), max_rows=3, expect={"age": Column("float")})


def test_nullable_value_columns_report_where_a_value_is_present():
    body = encode({}, {"age": [1.5, None, 3.0], "sex": ["m", "f", None], "n": np.array([1, 2, 3])})
    frame = decode(body, max_rows=3, other=Column("value", nullable=True))
    np.testing.assert_array_equal(frame.present["age"], [True, False, True])
    np.testing.assert_array_equal(frame.present["sex"], [True, True, False])
    assert frame.columns["sex"].tolist()[:2] == ["m", "f"]
    assert frame.columns["n"].dtype == np.int64


def test_row_hashes_cross_as_32_byte_values():
    hashes = [bytes([i]) * 32 for i in range(3)]
    frame = decode(encode({}, {"row_hash": hashes}), max_rows=3, expect={"row_hash": Column("bytes32")})
    assert frame.columns["row_hash"].shape == (3, 32) and [h.tobytes() for h in frame.columns["row_hash"]] == hashes


def test_a_control_document_that_is_not_an_object_is_refused():
    import pyarrow as pa
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([], metadata={b"splitledger": b"[1, 2]"})):
        pass
    with pytest.raises(WireError, match="must be a JSON object"):
        decode(sink.getvalue().to_pybytes(), max_rows=1)


def test_a_category_column_reads_as_its_words_and_a_code_per_row_whether_dictionary_encoded_or_not():
    for column in (["b", "a", "b"], categories(["b", "a", "b"])):
        frame = decode(encode({}, {"s": column}), max_rows=3, expect={"s": Column("category")})
        assert [frame.words["s"][c] for c in frame.columns["s"]] == ["b", "a", "b"]
        assert len(frame.words["s"]) == 2


def test_a_null_of_a_nullable_category_column_reads_as_code_minus_one():
    frame = decode(encode({}, {"s": categories(["a", None])}), max_rows=2,
                   expect={"s": Column("category", nullable=True)})
    assert frame.columns["s"].tolist() == [0, -1] and frame.present["s"].tolist() == [True, False]
