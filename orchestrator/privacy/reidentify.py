"""Two attacks on released rows that the linear audit does not model, each with what DP says it can achieve.

- Re-identification: the attacker holds a pool of candidate rows (say, a leaked copy of a registry) that
  contains the row behind a release, maps every candidate through the public part of the release (u = P x,
  clipped) and names the candidate nearest to what was released: under isotropic Gaussian noise that is the
  most likely one. Under (epsilon, delta)-DP of the release, no attacker names the right one of `pool`
  equally likely candidates with probability above e^epsilon / pool + delta (sum the DP inequality over the
  candidates: the success probabilities of naming each candidate when it is the truth add up to at most
  e^epsilon + pool * delta).
- Nonlinear reconstruction: the attacker holds auxiliary rows from the same population, releases them the same
  way itself, and fits a k-nearest-neighbours regression from release (and label) back to every field. Scored
  per field as R^2 on the attacked rows (attack.field_r2), beside what the label alone predicts.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

from .attack import field_r2


@dataclass(frozen=True)
class Reidentification:
    hits: int
    trials: int
    pool: int

    @property
    def rate(self) -> float:
        return self.hits / self.trials

    def consistent_with(self, bound: float, z: float = 3.0) -> bool:
        """Whether the measured rate is within z standard errors of a true rate at most `bound` (one-sided test;
        a finite number of trials measures a rate, it cannot prove one)."""
        return self.rate <= bound + z * math.sqrt(bound * (1 - bound) / self.trials)


def reidentification_bound(epsilon: float, delta: float, pool: int) -> float:
    """The most any attacker achieves against (epsilon, delta)-DP releases among `pool` candidates."""
    return min(1.0, math.exp(epsilon) / pool + delta)


def reidentify(released: np.ndarray, originals: np.ndarray, public: Callable[[np.ndarray], np.ndarray], *,
               pool: int, rng: np.random.Generator) -> Reidentification:
    """Row i of `released` came from row i of `originals`; each trial hides it among pool - 1 other originals."""
    released, originals = np.asarray(released, np.float64), np.asarray(originals, np.float64)
    if len(originals) < pool:
        raise ValueError(f"a pool of {pool} candidates needs at least {pool} rows, got {len(originals)}")
    mapped = np.asarray(public(originals), np.float64)
    hits = 0
    for i in range(len(released)):
        others = rng.choice(np.delete(np.arange(len(originals)), i), pool - 1, replace=False)
        # In random order: a tie (candidates the clip maps to the same point) must not favour the true row.
        candidates = rng.permutation(np.concatenate([[i], others]))
        distances = np.linalg.norm(mapped[candidates] - released[i], axis=1)
        hits += int(candidates[np.argmin(distances)] == i)
    return Reidentification(hits, len(released), pool)


def knn_reconstruction(aux_released: np.ndarray, aux_originals: np.ndarray, released: np.ndarray, *,
                       neighbours: int = 5) -> np.ndarray:
    """Every field of the attacked rows, predicted from their releases by kNN fitted on the auxiliary rows."""
    model = KNeighborsRegressor(n_neighbors=min(neighbours, len(aux_released)), weights="distance")
    model.fit(aux_released, aux_originals)
    return model.predict(released)


def label_only_r2(aux_labels: np.ndarray, aux_originals: np.ndarray, labels: np.ndarray,
                  originals: np.ndarray) -> np.ndarray:
    """Per field, the R^2 of predicting it by its class mean on the auxiliary rows: what the label alone gives."""
    classes = np.unique(aux_labels)
    means = {c: aux_originals[aux_labels == c].mean(axis=0) for c in classes}
    overall = aux_originals.mean(axis=0)
    estimate = np.stack([means.get(label, overall) for label in labels])
    return field_r2(originals, estimate)

