"""Atoms: coordinates of a row's raw values that every model's inputs are affine in, whatever its field table
(orchestrator/privacy/atoms.py), and the holder's per-row budget kept in them (orchestrator/proxy/budget.py)."""
import numpy as np

from orchestrator.container.fields import ColumnMapping, fit_table, normalise_rows
from orchestrator.privacy.atoms import assess_atoms, atom_covariance, atom_values
from orchestrator.privacy.span import row_basis
from orchestrator.proxy.budget import RevelationBudget

RNG = np.random.default_rng(0)
RAW = [{"size": float(s), "count": float(c), "colour": col, "kind": k}
       for s, c, col, k in zip(RNG.normal(50, 10, 200), RNG.gamma(2, 30, 200),
                               RNG.choice(["red", "blue", "green"], 200), RNG.choice(["a", "b"], 200))]
COLUMNS = {name: [row[name] for row in RAW] for name in RAW[0]}


def table(size_kind, count_kind="log1p-z-score"):
    return fit_table(COLUMNS, [("size", size_kind, "size"), ("count", count_kind, "count"),
                               ("colour", "one-hot", "colour")], ("kind", "label", "kind"))


def model_inputs(t):
    return normalise_rows(t, ColumnMapping.identity(t), RAW).features


def test_a_z_score_and_a_min_max_of_one_field_are_one_atom_each_input_exactly_affine_in_it():
    budget = RevelationBudget()
    for t in (table("z-score"), table("min-max")):
        atoms = budget.register(t)
        coordinates = atom_values(budget.atoms, RAW)[:, atoms.columns]
        x = model_inputs(t)
        # x_i - slope_i * atom_i is the same constant for every row: the public offset
        residual = x - coordinates * atoms.slopes
        np.testing.assert_allclose(residual - residual[0], 0.0, atol=1e-9)
    assert budget.names == ("size", "log1p(count)", "colour=blue", "colour=green", "colour=red", "kind=a", "kind=b")


def test_log1p_of_a_field_is_another_atom_than_its_value():
    budget = RevelationBudget()
    budget.register(table("z-score", "log1p-z-score"))
    budget.register(table("z-score", "z-score"))
    assert {"log1p(count)", "count"} <= set(budget.names)


def test_the_labels_atoms_are_released_with_every_answer_but_never_judged():
    budget = RevelationBudget()
    atoms = budget.register(table("z-score"))
    released = atoms.request(np.zeros((1, 5)), len(budget.atoms))
    assert np.count_nonzero(released) == 2 and set(np.flatnonzero(released.any(axis=0))) == set(atoms.label.tolist())
    covariance = atom_covariance(atom_values(budget.atoms, RAW))
    verdict = assess_atoms(row_basis(released), covariance, budget.names, budget.judged(), threshold=0.5,
                           tolerance=1e-6)
    assert verdict.allowed and verdict.recoverable == ()


def test_an_atom_inside_the_span_is_recoverable_whatever_the_threshold():
    budget = RevelationBudget()
    atoms = budget.register(table("z-score"))
    weights = np.zeros((1, 5))
    weights[0, 0] = 1.0
    released = atoms.request(weights, len(budget.atoms))
    covariance = atom_covariance(atom_values(budget.atoms, RAW))
    verdict = assess_atoms(row_basis(released), covariance, budget.names, budget.judged(), threshold=1.0,
                           tolerance=1e-6)
    assert not verdict.allowed and verdict.recoverable == ("size",)


def test_rows_released_the_same_share_one_basis_and_the_state_round_trips():
    budget = RevelationBudget()
    atoms = budget.register(table("z-score"))
    w = RNG.normal(size=(2, 5))
    assert budget.record(np.arange(1, 10_001), atoms.request(w, len(budget.atoms)))
    assert not budget.record(np.arange(1, 5_001), atoms.request(w[:1], len(budget.atoms)))  # nothing new
    budget.record(np.arange(1, 11), atoms.request(RNG.normal(size=(1, 5)), len(budget.atoms)))
    assert budget.group_count == 3  # nothing, the 2 directions, and 3 for rows 1..10
    budget.record(np.arange(1, 10_001, 7), atoms.request(RNG.normal(size=(1, 5)), len(budget.atoms)))  # scattered
    again = RevelationBudget.from_json(budget.to_json())
    assert again.to_json() == budget.to_json()
    np.testing.assert_array_equal(again.group_of(np.arange(0, 10_005)), budget.group_of(np.arange(0, 10_005)))


def test_a_new_models_atoms_extend_the_old_histories_with_nothing_revealed_along_them():
    budget = RevelationBudget()
    atoms = budget.register(table("z-score"))
    budget.record(np.arange(1, 5), atoms.request(RNG.normal(size=(2, 5)), len(budget.atoms)))
    before = budget.revealed(1)
    budget.register(table("z-score", "z-score"))  # adds the atom "count"
    after = budget.revealed(1)
    assert after.shape == (before.shape[0] + 1, before.shape[1]) and not after[-1].any()


def test_missing_values_are_taken_at_the_atoms_mean_so_the_covariance_stays_positive_semidefinite():
    values = atom_values(RevelationBudget([]).atoms, RAW)  # no atoms: shape only
    assert values.shape == (200, 0)
    budget = RevelationBudget()
    budget.register(table("z-score"))
    partial = [dict(row) for row in RAW]
    for row in partial[::3]:
        del row["size"]
    covariance = atom_covariance(atom_values(budget.atoms, partial))
    assert np.linalg.eigvalsh(covariance).min() > -1e-12
