"""Training that knows the noise of local DP releases (ldp.py): pure functions, arrays in, arrays out.

A hosting node in ldp mode holds, per row, u_noisy = clip(P x, C) + N(0, s^2 I) with s the policy's noise std,
and a label, clean or through k-ary randomized response with the known matrix T (ldp.response_matrix). A
network fitted to u_noisy as if it were clean learns the noise: at the noise epsilon <= 4 takes it answers the
majority class (bench/bench_ldp_accuracy.py measured it, docs/privacy.md). Here the releases are read through a
model of the clean rows instead:

  moments      sufficient statistics of the releases against their labels (counts, sums, the sum of
               squares); they add up over groups, so a host keeps them with the model (ReleaseMoments)
  deconvolve   the clean rows' label-conditional Gaussian model from them (ConditionalModel): a class's mean
               is the mean of its releases (the noise has mean zero; under randomized response the true
               classes' counts and sums are T^-T times the answered ones'), and the clean rows' spread about
               it is the releases' less the noise's, one variance w for every coordinate, at most what the
               clip leaves (the clean rows lie in the ball of radius C). A full covariance matrix, pooled over
               the classes, measured worse: the noise leaves too little of it to estimate
  sample       a sample of that model itself, as many rows as it was fitted on (model_sample): what the hosting
               node trains a group on, so that the network follows the model of every release kept so far
               and the payment gate measures what a group's releases add to it (docs/privacy.md)
"""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .ldp import LocalRelease


class ReleaseMoments(NamedTuple):
    """Sums over releases u (rows, k) and their labels' features phi (rows, m): one-hot of the answered class
    for classification, (1, y) for regression."""

    gram: np.ndarray  # (m, m) sum of phi phi^T
    cross: np.ndarray  # (m, k) sum of phi u^T
    squares: np.ndarray  # (k, k) sum of u u^T


def label_features(labels: np.ndarray, classes: int | None) -> np.ndarray:
    """phi per row: one-hot over `classes`, or (1, y) for a regression target (classes None)."""
    labels = np.asarray(labels, np.float64)
    if classes is None:
        return np.stack([np.ones_like(labels), labels], axis=1)
    return (labels[:, None] == np.arange(classes)[None, :]).astype(np.float64)


def empty_moments(k: int, classes: int | None) -> ReleaseMoments:
    m = 2 if classes is None else classes
    return ReleaseMoments(np.zeros((m, m)), np.zeros((m, k)), np.zeros((k, k)))


def release_moments(u: np.ndarray, labels: np.ndarray, classes: int | None) -> ReleaseMoments:
    u = np.asarray(u, np.float64)
    phi = label_features(labels, classes)
    return ReleaseMoments(phi.T @ phi, phi.T @ u, u.T @ u)


def add_moments(a: ReleaseMoments, b: ReleaseMoments) -> ReleaseMoments:
    return ReleaseMoments(*(np.asarray(x, np.float64) + np.asarray(y, np.float64) for x, y in zip(a, b)))


@dataclass(frozen=True)
class ConditionalModel:
    """Clean u given the label: N(means[c], spread I) for class c, or N(means[0] + y means[1], spread I)."""

    means: np.ndarray  # (classes, k), or (2, k): intercept and slope for regression
    spread: float  # the clean rows' variance about their conditional mean, per coordinate
    priors: np.ndarray | None  # (classes,) the true classes' shares; None for regression
    noise_std: float


def deconvolve(moments: ReleaseMoments, noise_std: float, clip: float, *, classes: int | None,
               response: np.ndarray | None = None) -> ConditionalModel:
    """The clean rows' label-conditional model from the releases' moments (module docstring)."""
    gram, cross, squares = (np.asarray(x, np.float64) for x in moments)
    k = squares.shape[0]
    if classes is None:
        rows = max(gram[0, 0], 1.0)
        means = np.linalg.lstsq(gram, cross, rcond=None)[0]
        residual = np.trace(squares - cross.T @ means) / max(rows - 2, 1.0)
        # The fitted means' squared norms, less what the fit's own error adds to them (2 parameters a coordinate).
        spent = max(np.trace(means.T @ gram @ means) / rows - 2 * residual / rows, 0.0)
        return ConditionalModel(means, _spread(residual, noise_std, k, clip ** 2 - spent), None, float(noise_std))
    answered, sums = np.diag(gram).copy(), cross.copy()
    rows = max(answered.sum(), 1.0)
    mix = np.eye(classes) if response is None else np.linalg.inv(response.T)  # E[answered] = T^T true
    counts, sums = mix @ answered, mix @ sums
    counts = np.maximum(counts, 1e-3 * rows)
    means = sums / counts[:, None]
    residual = np.trace(squares - (sums.T / counts) @ sums) / max(rows - classes, 1.0)
    # Clean rows lie in the ball of radius `clip`: their spread about the class means is at most what the
    # means leave of C^2. The means' squared norms are debiased first: each carries the variance of its sum,
    # about sum_j mix[c, j]^2 answered_j times one release's.
    total = np.trace(squares) / rows - np.sum(cross.sum(axis=0) ** 2) / rows ** 2
    excess = (mix ** 2 @ answered) / counts ** 2 * total
    priors = counts / counts.sum()
    spent = float(priors @ np.maximum((means ** 2).sum(axis=1) - excess, 0.0))
    return ConditionalModel(means, _spread(residual, noise_std, k, clip ** 2 - spent), priors, float(noise_std))


def _spread(residual: float, noise_std: float, k: int, room: float) -> float:
    """Per coordinate, the releases' residual variance less the noise's, within [0, room / k]."""
    return float(np.clip(residual / k - noise_std ** 2, 0.0, max(room, 0.0) / k))


def trained_rows(moments: ReleaseMoments, classes: int | None) -> int:
    """How many releases the moments sum over: the one-hot counts' sum, or the regression intercept's."""
    gram = np.asarray(moments.gram, np.float64)
    return round(float(gram[0, 0] if classes is None else np.trace(gram)))


def model_sample(moments: ReleaseMoments, release: LocalRelease, size: int, *, classes: int | None,
                 response: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`size` rows and targets drawn from the clean rows' model deconvolved from `moments`: a class from its
    deconvolved share, then N(its mean, w I); for regression a target from the normal fitted to the released
    targets (their mean and spread are in the moments), then N(intercept + target x slope, w I).

    Trained on in place of the releases themselves, it makes the network after a group the network of every
    release kept so far, not of the group's alone: a group whose labels contradict the rest (a mislabelled
    source) pulls the class means together and costs accuracy, so it is rolled back, where posterior draws of
    its own rows would have looked self-consistent (each drawn near the mean of the class it claims)."""
    model = deconvolve(moments, release.noise_std, release.clip, classes=classes, response=response)
    k = model.means.shape[1]
    targets: np.ndarray  # regression: drawn values; classification: class indices
    if classes is None:
        gram = np.asarray(moments.gram, np.float64)
        count = max(gram[0, 0], 1.0)
        mean = gram[0, 1] / count
        std = np.sqrt(max(gram[1, 1] / count - mean ** 2, 0.0))
        targets = rng.normal(mean, std, size)
        centres = np.stack([np.ones(size), targets], axis=1) @ model.means
    else:
        targets = rng.choice(classes, size=size, p=model.priors)
        centres = model.means[targets]
    rows = centres + rng.normal(0.0, np.sqrt(model.spread), (size, k))
    return rows.astype(np.float32), np.asarray(targets, np.float32)
