"""Accuracy as the chain stores it (ppm) and the regression metric."""
import jax.numpy as jnp
import pytest

from orchestrator.container import Task, ppm_from_counts, ppm_from_fraction
from orchestrator.container.task import hits
from orchestrator.errors import ModelFileError

REGRESSION = Task("regression", "price", tolerance=0.5)


def test_ppm_from_counts_is_floored_exact_integer_arithmetic():
    assert ppm_from_counts(2, 3) == 666_666
    assert ppm_from_counts(7, 7) == 1_000_000
    assert ppm_from_counts(0, 9) == 0


def test_ppm_from_fraction_rounds_to_the_nearest_ppm():
    assert ppm_from_fraction(0.57) == 570_000
    assert ppm_from_fraction(1.0) == 1_000_000


def test_a_fraction_outside_zero_to_one_is_not_an_accuracy():
    with pytest.raises(ValueError):
        ppm_from_fraction(1.01)


def test_more_hits_than_rows_is_not_an_accuracy():
    with pytest.raises(ValueError):
        ppm_from_counts(4, 3)


def test_regression_hit_is_a_prediction_within_the_tolerance_inclusive():
    predictions = jnp.array([[1.0], [1.5], [0.4], [2.0]])
    targets = jnp.array([1.2, 1.0, 1.0, 1.0])
    assert int(hits(REGRESSION, predictions, predictions, targets)) == 2


def test_classification_hit_is_the_arg_max_class():
    logits = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    task = Task("classification", "kind", classes=("a", "b", "c"))
    assert int(hits(task, logits, logits, jnp.array([1.0, 1.0, 2.0]))) == 2


def test_single_logit_classification_hit_is_the_sign_of_the_logit():
    logits = jnp.array([[0.3], [-0.2], [0.1]])
    task = Task("classification", "kind", classes=("no", "yes"))
    assert int(hits(task, logits, logits, jnp.array([1.0, 0.0, 0.0]))) == 2


def test_regression_task_without_tolerance_is_refused():
    with pytest.raises(ModelFileError, match="tolerance"):
        Task("regression", "price")
