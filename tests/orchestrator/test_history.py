"""Row hashes (the documented encoding) and the history set: dedup, anchors, proofs."""
import struct

import numpy as np
import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.container.history import HistorySet
from orchestrator.errors import HistoryError
from orchestrator.hashing.merkle import MerkleTree, standard_leaf, verify
from orchestrator.hashing.rows import row_hash, row_hashes

MODEL_ID = 3


def test_row_hash_is_keccak_of_the_documented_encoding():
    message = b"SplitLedger.row.v1" + MODEL_ID.to_bytes(32, "big") + (2).to_bytes(4, "big")
    message += struct.pack(">ddd", 0.25, -1.5, 2.0)
    assert row_hash(MODEL_ID, [0.25, -1.5], 2.0) == keccak(message)


def test_keyed_row_hash_is_hmac_keccak_over_the_same_message():
    key = b"source secret"
    message = b"SplitLedger.row.v1" + MODEL_ID.to_bytes(32, "big") + (1).to_bytes(4, "big") + struct.pack(">dd", 1.0, 0.0)
    padded = key.ljust(136, b"\0")
    inner = keccak(bytes(b ^ 0x36 for b in padded) + message)
    assert row_hash(MODEL_ID, [1.0], 0.0, key=key) == keccak(bytes(b ^ 0x5C for b in padded) + inner)


def test_the_same_row_hashes_differently_for_another_model():
    assert row_hash(1, [0.5, 0.5], 1.0) != row_hash(2, [0.5, 0.5], 1.0)


def test_the_label_is_part_of_the_row():
    assert row_hash(MODEL_ID, [0.5, 0.5], 0.0) != row_hash(MODEL_ID, [0.5, 0.5], 1.0)


def test_negative_zero_hashes_like_zero():
    assert row_hash(MODEL_ID, [-0.0], 1.0) == row_hash(MODEL_ID, [0.0], 1.0)


def test_batch_hashing_gives_each_rows_own_hash():
    features = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    labels = np.array([0.0, 1.0, 0.0, 2.0])
    assert row_hashes(MODEL_ID, features, labels) == [row_hash(MODEL_ID, f, y) for f, y in zip(features, labels)]


def test_a_non_finite_row_is_not_hashed():
    with pytest.raises(HistoryError, match="row 1 holds a non-finite value"):
        row_hashes(MODEL_ID, np.array([[0.0], [np.inf]]), np.array([0.0, 1.0]))


def test_a_model_id_beyond_uint256_is_refused():
    with pytest.raises(HistoryError, match="not a uint256"):
        row_hash(1 << 256, [0.0], 0.0)


def hashes(n, salt=b""):
    return [keccak(salt + i.to_bytes(4, "big")) for i in range(n)]


def test_adding_returns_only_the_hashes_not_seen_before():
    history = HistorySet()
    history.add(hashes(3))
    assert history.add(hashes(5)) == hashes(5)[3:]
    assert len(history) == 5


def test_a_hash_repeated_within_one_batch_is_added_once():
    history = HistorySet()
    h = hashes(2)
    assert history.add([h[0], h[1], h[0]]) == h
    assert len(history) == 2


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.integers(0, 20)), max_size=6))
def test_the_history_holds_every_hash_once_in_first_seen_order(batches):
    history, seen = HistorySet(), []
    for batch in batches:
        added = history.add([hashes(21)[i] for i in batch])
        assert added == [h for h in dict.fromkeys(hashes(21)[i] for i in batch) if h not in seen]
        seen += added
    assert len(history) == len(seen) == len(set(seen))
    assert history.pending == seen


def test_unseen_filters_without_recording():
    history = HistorySet()
    history.add(hashes(2))
    assert history.unseen(hashes(4)) == hashes(4)[2:]
    assert hashes(4)[3] not in history


def test_a_row_hash_must_be_32_bytes():
    with pytest.raises(HistoryError, match="32 bytes"):
        HistorySet().add([b"\x01" * 31])


def test_an_anchor_roots_the_standard_leaves_of_the_rows_added_since_the_last_one():
    history = HistorySet()
    history.add(hashes(4))
    history.anchor()
    history.add(hashes(3, b"new"))
    anchor = history.anchor()
    assert (anchor.index, anchor.first_row, anchor.row_count) == (1, 4, 3)
    assert anchor.root == MerkleTree([standard_leaf(h) for h in hashes(3, b"new")]).root


def test_anchoring_with_nothing_new_is_refused():
    history = HistorySet()
    history.add(hashes(2))
    history.anchor()
    with pytest.raises(HistoryError, match="no rows were added"):
        history.anchor()


def test_an_anchor_is_unconfirmed_until_its_block_is_recorded():
    history = HistorySet()
    history.add(hashes(2))
    anchor = history.anchor()
    assert not anchor.confirmed
    confirmed = history.confirm(anchor.index, 1234, b"\xaa" * 32)
    assert (confirmed.block_number, confirmed.block_hash) == (1234, b"\xaa" * 32)
    assert history.anchors[0].confirmed


def test_an_anchor_is_confirmed_only_once():
    history = HistorySet()
    history.add(hashes(2))
    history.confirm(history.anchor().index, 10, b"\x01" * 32)
    with pytest.raises(HistoryError, match="already confirmed in block 10"):
        history.confirm(0, 11, b"\x02" * 32)


def test_confirming_an_unknown_anchor_is_refused():
    with pytest.raises(HistoryError, match="there is no anchor 0"):
        HistorySet().confirm(0, 1, b"\x00" * 32)


def test_pending_lists_the_rows_since_the_last_anchor():
    history = HistorySet()
    history.add(hashes(2))
    history.anchor()
    history.add(hashes(3))
    assert history.pending == [hashes(3)[2]]


def test_a_rows_proof_verifies_against_its_anchors_root():
    history = HistorySet()
    history.add(hashes(5))
    history.anchor()
    history.add(hashes(6, b"b"))
    history.anchor()
    anchor, proof = history.proof(hashes(6, b"b")[4])
    assert anchor.index == 1 and verify(proof, anchor.root, standard_leaf(hashes(6, b"b")[4]))


def test_a_row_not_yet_anchored_has_no_proof():
    history = HistorySet()
    history.add(hashes(1))
    with pytest.raises(HistoryError, match="not anchored yet"):
        history.proof(hashes(1)[0])


def test_holds_tells_for_each_of_many_hashes_whether_it_is_in_the_history():
    import numpy as np
    history = HistorySet()
    history.add(hashes(3))
    asked = np.frombuffer(b"".join([hashes(5)[4], hashes(5)[1], hashes(5)[1], hashes(5)[3]]), np.uint8)
    assert history.holds(asked.reshape(-1, 32)).tolist() == [False, True, True, False]


def test_rows_added_as_an_array_are_the_hashes_added_as_bytes():
    import numpy as np
    as_bytes, as_rows = HistorySet(), HistorySet()
    as_bytes.add(hashes(4))
    as_rows.add_rows(np.frombuffer(b"".join(hashes(4)), np.uint8).reshape(-1, 32))
    assert as_rows.add_rows(np.frombuffer(b"".join(hashes(6)), np.uint8).reshape(-1, 32)) == 2
    as_bytes.add(hashes(6))
    assert as_rows.pending == as_bytes.pending and as_rows.anchor().root == as_bytes.anchor().root
    assert hashes(6)[5] in as_rows and hashes(7)[6] not in as_rows
