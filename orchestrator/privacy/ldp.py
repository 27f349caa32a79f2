"""Local differential privacy for what a holder releases about a row: a vector through the Gaussian mechanism
after clipping, a label through randomized response. Pure functions of (values, parameters, generator).

Local, not central: the neighbouring inputs are any two rows, so the L2 sensitivity of a release clipped to
norm `clip` is 2 * clip (two rows at opposite ends of the ball), and the noise standard deviation is
`noise_multiplier * 2 * clip`. Then one release is (alpha / (2 noise_multiplier^2))-RDP at every order alpha,
i.e. rho-zCDP with rho = 1 / (2 noise_multiplier^2), exactly the Gaussian step of accountant.gaussian_rho.

Randomized response over k classes keeps the true label with probability e^eps / (e^eps + k - 1) and otherwise
answers one of the other k - 1 uniformly: eps-DP (pure). A row's releases therefore spend two numbers, kept per
row by its holder: rho, the sum of the Gaussian releases' zCDP, and E, the sum of the labels' pure epsilons
(pure DP composes by addition). At Renyi order alpha the Gaussians give alpha * rho, and pure E-DP gives at
most min(E, alpha E^2 / 2) (Bun and Steinke 2016, Proposition 3.3, and the max-divergence bound): their sum is a
valid RDP curve of everything released, converted to (epsilon, delta) like every other curve here
(accountant.epsilon_from_rdp). Capping the label's share at E matters: the orders a small delta needs are
large, where E^2 alpha / 2 would overstate the label's cost many times over.

A holder's releases are keyed, not drawn (`keyed_release`): a row's noise and randomized response for a model
come from a PRF of a secret key, the model id and the row's identity, so asking again returns the same
release (nothing to average) and two holders with the same key and row answer alike (the hosting node's
redundancy check compares them). The PRF is keccak-256, which has no length extension: a seed is
keccak256(RELEASE_DOMAIN || key || model id || identity), its draws keccak256(seed || block index), 53 bits
per uniform, normals by Box-Muller.
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sha3 import keccak_256

from orchestrator.hashing.keccak import digest_after, keccak256

from .accountant import DEFAULT_ORDERS, epsilon_from_rdp, gaussian_rho

RELEASE_DOMAIN = b"splitledger/ldp-release/v1"
SECRET_BYTES = 32  # a release key, like a source's row-hash key
UNIFORM_BITS = 53  # a float64's mantissa: every uniform is a multiple of 2^-53 in [0, 1)
WORDS_PER_BLOCK = 4  # 64-bit words in one keccak-256 output


@dataclass(frozen=True)
class LocalRelease:
    """How a holder releases one row: clip, noise and the label's randomized response."""

    clip: float  # L2 bound on the released vector
    noise_multiplier: float  # noise std / (2 * clip), the sensitivity between any two rows
    label_epsilon: float | None  # randomized response on the label; None: the label goes in the clear

    def __post_init__(self):
        if not (self.clip > 0 and math.isfinite(self.clip)):
            raise ValueError(f"a clip bound is a finite number > 0, got {self.clip}")
        if not (self.noise_multiplier > 0 and math.isfinite(self.noise_multiplier)):
            raise ValueError(f"a noise multiplier is a finite number > 0, got {self.noise_multiplier}")
        if self.label_epsilon is not None and not (self.label_epsilon > 0 and math.isfinite(self.label_epsilon)):
            raise ValueError(f"a label epsilon is a finite number > 0 (or None), got {self.label_epsilon}")

    @classmethod
    def for_epsilon(cls, epsilon: float, clip: float, delta: float, *, releases: int = 1,
                    label_epsilon: float | None = None) -> "LocalRelease":
        """The release with the least noise whose `releases` releases of a row cost at most `epsilon` at `delta`
        (epsilon falls as the noise grows, so bisection on its logarithm finds it)."""
        low, high = 1e-3, 1e4
        if cls(clip, high, label_epsilon).epsilon(releases, delta) > epsilon:
            raise ValueError(f"no noise gives epsilon {epsilon} for {releases} releases at delta {delta} with this "
                             f"label share")
        for _ in range(80):
            middle = math.sqrt(low * high)
            if cls(clip, middle, label_epsilon).epsilon(releases, delta) > epsilon:
                low = middle
            else:
                high = middle
        return cls(clip, high, label_epsilon)

    @property
    def noise_std(self) -> float:
        return self.noise_multiplier * 2.0 * self.clip

    @property
    def rho(self) -> float:
        """zCDP of one release of a row's vector."""
        return gaussian_rho(self.noise_multiplier)

    @property
    def label_cost(self) -> float:
        """Pure epsilon of one release of a row's label (0 when the label goes in the clear: not covered)."""
        return 0.0 if self.label_epsilon is None else self.label_epsilon

    def epsilon(self, releases: int, delta: float) -> float:
        """(epsilon, delta)-DP of `releases` releases of the same row; the label, if in the clear, is not
        covered (it is released as is)."""
        if releases < 0:
            raise ValueError(f"a count of releases is >= 0, got {releases}")
        return float(spent_epsilons(np.asarray([releases * self.rho]), np.asarray([releases * self.label_cost]),
                                    delta)[0])


def spent_epsilons(rho: np.ndarray, label_epsilon: np.ndarray, delta: float) -> np.ndarray:
    """Epsilon at `delta` of what rows spent: per row, Gaussian zCDP `rho` and labels' pure `label_epsilon`
    (module docstring). Rows share few totals, so each distinct pair is converted once."""
    pairs = np.stack(np.broadcast_arrays(np.asarray(rho, np.float64), np.asarray(label_epsilon, np.float64)), -1)
    flat = pairs.reshape(-1, 2)
    if flat.size and (flat < 0).any():
        raise ValueError("spent privacy is >= 0")
    orders = np.asarray(DEFAULT_ORDERS, np.float64)
    values, inverse = np.unique(flat, axis=0, return_inverse=True)
    eps = np.asarray([epsilon_from_rdp(r * orders + np.minimum(e, orders * e * e / 2.0), delta)[0]
                      for r, e in values])
    return eps[inverse.reshape(-1)].reshape(pairs.shape[:-1])


def clip_rows(values: np.ndarray, clip: float) -> np.ndarray:
    """Each row scaled down to L2 norm `clip` if it is longer; shorter rows are unchanged."""
    values = np.asarray(values, np.float64)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values * np.minimum(1.0, clip / np.maximum(norms, np.finfo(np.float64).tiny))


def gaussian_release(values: np.ndarray, release: LocalRelease, rng: np.random.Generator) -> np.ndarray:
    """The rows clipped and noised: what a holder may send for them under `release`."""
    clipped = clip_rows(values, release.clip)
    return clipped + rng.normal(0.0, release.noise_std, clipped.shape)


def keep_probability(classes: int, epsilon: float) -> float:
    """Randomized response's probability of answering the true label."""
    if classes < 2:
        raise ValueError(f"randomized response needs two or more classes, got {classes}")
    return math.exp(epsilon) / (math.exp(epsilon) + classes - 1)


def randomized_response(labels: np.ndarray, classes: int, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Each label (an integer in [0, classes)) kept with keep_probability, else one of the others uniformly."""
    labels = _class_indices(labels, classes)
    return _respond(labels, classes, epsilon, rng.random(labels.shape), rng.random(labels.shape))


def _class_indices(labels: np.ndarray, classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= classes or not np.all(labels == np.round(labels))):
        raise ValueError(f"labels must be class indices in [0, {classes})")
    return labels.astype(np.int64)


def _respond(labels: np.ndarray, classes: int, epsilon: float, keep_draws: np.ndarray,
             other_draws: np.ndarray) -> np.ndarray:
    """Randomized response from two uniforms in [0, 1) per label: the first decides whether the label is kept,
    the second picks one of the other classes, as a shift by 1..classes-1 modulo classes."""
    keep = keep_draws < keep_probability(classes, epsilon)
    other = (labels + 1 + np.floor(other_draws * (classes - 1)).astype(np.int64)) % classes
    return np.where(keep, labels, other)


def response_matrix(classes: int, epsilon: float) -> np.ndarray:
    """T[i, j] = P(answer j | true label i): what a loss that knows the noise corrects for."""
    keep = keep_probability(classes, epsilon)
    matrix = np.full((classes, classes), (1.0 - keep) / (classes - 1))
    np.fill_diagonal(matrix, keep)
    return matrix


def release_seeds(keys: Sequence[bytes], model_id: int, identities: Sequence[bytes]) -> np.ndarray:
    """(rows, 32) uint8: each row's seed, keccak256(RELEASE_DOMAIN || key || model id as uint256 || identity).

    `keys[i]` is the secret row i is released under (32 bytes: its source's row-hash key, or its holder's own
    secret), `identities[i]` what names the row alike wherever it is held (its row hash)."""
    if len(keys) != len(identities):
        raise ValueError(f"{len(keys)} keys for {len(identities)} rows")
    if any(len(key) != SECRET_BYTES for key in keys):
        raise ValueError(f"a release key is {SECRET_BYTES} bytes")
    model = int(model_id).to_bytes(32, "big")
    # Rows share few keys (one per source): each key's prefix is absorbed once and the hasher copied per row.
    starts = {key: keccak_256(RELEASE_DOMAIN + key + model) for key in set(keys)}
    seeds = b"".join(digest_after(starts[key], identity) for key, identity in zip(keys, identities))
    return np.frombuffer(seeds, np.uint8).reshape(len(keys), 32)


def keyed_uniforms(seeds: np.ndarray, count: int) -> np.ndarray:
    """(rows, count) float64 uniforms in [0, 1): the top 53 bits of each big-endian 64-bit word of
    keccak256(seed || block index as 8 bytes), blocks 0, 1, ... as many as `count` words need."""
    seeds = np.asarray(seeds, np.uint8)
    blocks = -(-count // WORDS_PER_BLOCK)
    counters = [j.to_bytes(8, "big") for j in range(blocks)]
    stream = b"".join(keccak256(seed + counter) for seed in map(bytes, seeds) for counter in counters)
    words = np.frombuffer(stream, ">u8").reshape(len(seeds), blocks * WORDS_PER_BLOCK)[:, :count]
    return (words >> np.uint64(64 - UNIFORM_BITS)).astype(np.float64) * 2.0**-UNIFORM_BITS


def box_muller(uniforms: np.ndarray) -> np.ndarray:
    """(rows, 2m) standard normals from (rows, 2m) uniforms in [0, 1), two normals per pair (u1, u2)."""
    first, second = uniforms[:, 0::2], uniforms[:, 1::2]
    radius = np.sqrt(-2.0 * np.log1p(-first))  # 1 - u1 lies in (0, 1]: no log(0)
    angle = 2.0 * np.pi * second
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1).reshape(uniforms.shape)


def keyed_release(values: np.ndarray, labels: np.ndarray, classes: int | None, release: LocalRelease,
                  seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a holder sends for these rows (values (rows, k), labels (rows,)): the values clipped and noised,
    the labels through randomized response over `classes` (as class indices, float64), or as they are when
    `release.label_epsilon` is None (then `classes` may be None). Every draw is row i's, from `seeds[i]`
    (release_seeds): k normals, then two uniforms for its label."""
    clipped = clip_rows(values, release.clip)
    rows, k = clipped.shape
    pairs = -(-k // 2)
    draws = keyed_uniforms(seeds, 2 * pairs + 2) if rows else np.zeros((0, 2 * pairs + 2))
    if len(draws) != rows or np.shape(labels) != (rows,):
        raise ValueError(f"{rows} rows, {np.shape(labels)} labels and {len(draws)} seeds do not match")
    released = clipped + release.noise_std * box_muller(draws[:, : 2 * pairs])[:, :k]
    if release.label_epsilon is None:
        return released, np.asarray(labels, np.float64)
    if classes is None:
        raise ValueError("randomized response over the labels needs the number of classes; none was given")
    indices = _class_indices(labels, classes)
    answered = _respond(indices, classes, release.label_epsilon, draws[:, -2], draws[:, -1])
    return released, answered.astype(np.float64)
