"""Subspaces of the model inputs and how well they predict each input: the linear algebra of leakage.

Everything the hosting node learns about a row from sub-model outputs is a set of linear measurements
`w . x` (the bias is public, so it adds nothing). What those measurements pin down is their row space,
kept here as an orthonormal basis (n_inputs x rank, columns orthonormal). Two questions are asked of it:

- is some input's unit vector inside it?  Then that input is a linear function of what was revealed and
  is recovered exactly (`unit_distances` near 0);
- how much of each input's variance does the best linear predictor built from it explain, on a given
  data distribution (`explained_variance`, the R^2 of the best linear reconstruction)?

Both the attacker (attack.py) and the defender's audit (audit.py) use these, so they measure the same thing.
"""
import numpy as np

# A direction whose singular value is below this fraction of the largest is numerical noise, not a
# measurement. Weights arrive as float32, which are exact in float64, so genuine directions sit far above.
RANK_RTOL = 1e-9


def empty_basis(n_inputs: int) -> np.ndarray:
    """The span of nothing revealed yet."""
    return np.zeros((n_inputs, 0))


def row_basis(weights: np.ndarray, rtol: float = RANK_RTOL) -> np.ndarray:
    """An orthonormal basis (n_inputs, rank) of the row space of `weights` (m, n_inputs)."""
    weights = np.asarray(weights, dtype=np.float64)
    return extend_basis(empty_basis(weights.shape[1]), weights, rtol)


def extend_basis(basis: np.ndarray, weights: np.ndarray, rtol: float = RANK_RTOL) -> np.ndarray:
    """The orthonormal basis of span(basis) + rowspace(weights).

    Only the part of each new weight vector outside the current span adds anything, so that residual is
    orthonormalised by an SVD and appended; `basis` itself is kept as is (it stays orthonormal).
    A new direction counts even when it is tiny relative to the old ones: two consecutive rounds' weights
    that differ by one small optimiser step still pin down the difference direction once their outputs
    are subtracted, which is exactly the multi-round leak this module exists to see.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.size == 0:
        return basis
    scale = np.linalg.norm(weights, axis=1).max()
    if scale == 0.0:
        return basis
    residual = weights.T - basis @ (basis.T @ weights.T)
    # A second pass removes what float rounding left of the old span (classical Gram-Schmidt's weakness).
    residual -= basis @ (basis.T @ residual)
    u, s, _ = np.linalg.svd(residual, full_matrices=False)
    keep = s > rtol * scale
    return np.concatenate([basis, u[:, keep]], axis=1)


def unit_distances(basis: np.ndarray) -> np.ndarray:
    """Distance of every input's unit vector e_i from the span: 0 means input i is revealed exactly.

    O(n * rank^2) time and O(n * rank) memory, never the n x n projector: the plain gradient's check asks it of
    a request's rows (n of them, audit.isolated_rows), where n x n floats would be gigabytes.
    """
    inside = np.einsum("ij,ij->i", basis, basis)  # |Q_i|^2: the squared norm of e_i's projection on the span
    distances = np.sqrt(np.clip(1.0 - inside, 0.0, 1.0))
    # Near the span 1 - |Q_i|^2 cancels (an input exactly inside comes out ~1e-8, not ~1e-16), so there the
    # residual e_i - Q Q_i^T itself is measured, which stays accurate to ~1e-16. The |Q_i|^2 sum to the rank,
    # so fewer than 2 * rank inputs lie that near: the residuals are an (n, < 2 rank) matrix.
    near = np.flatnonzero(inside > 0.5)
    residual = -(basis @ basis[near].T)
    residual[near, np.arange(near.size)] += 1.0
    distances[near] = np.linalg.norm(residual, axis=0)
    return distances


def moments(features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """The population covariance of the rows (inputs, then the label as a last variable when given).

    This is all the R^2 estimate needs of a data set: a regression with an intercept explains exactly
    the variance its covariance says, so a holder of 10k rows keeps an (n+1) x (n+1) matrix, not the rows.
    """
    data = np.asarray(features, dtype=np.float64)
    if labels is not None:
        data = np.concatenate([data, np.asarray(labels, dtype=np.float64)[:, None]], axis=1)
    return np.cov(data, rowvar=False, bias=True).reshape(data.shape[1], data.shape[1])


def explained_variance(covariance: np.ndarray, basis: np.ndarray, *, with_label: bool) -> np.ndarray:
    """Per input, the R^2 of the best linear predictor (with intercept) from the revealed quantities.

    The revealed quantities are the coordinates `basis^T x` and, when `with_label`, the row's label (the
    hosting node receives labels by design). `covariance` is that of (x, label) when `with_label`, of x
    otherwise. R^2_i = Var(E_lin[x_i | revealed]) / Var(x_i); an input that does not vary gets 0 (knowing
    it reveals nothing about one row that is not known about every row).
    """
    covariance = np.asarray(covariance, dtype=np.float64)
    n = basis.shape[0]
    reveal = basis.T
    if with_label:
        if covariance.shape != (n + 1, n + 1):
            raise ValueError(f"covariance {covariance.shape} does not cover {n} inputs and a label")
        label_row = np.zeros((1, n + 1))
        label_row[0, n] = 1.0
        reveal = np.concatenate([np.pad(reveal, ((0, 0), (0, 1))), label_row], axis=0)
    elif covariance.shape != (n, n):
        raise ValueError(f"covariance {covariance.shape} does not cover {n} inputs")
    if reveal.shape[0] == 0:
        return np.zeros(n)
    cross = reveal @ covariance[:, :n]  # Cov(revealed, x)
    gram = reveal @ covariance @ reveal.T  # Cov(revealed)
    explained = np.einsum("ri,ri->i", cross, pinv_psd(gram) @ cross)
    variance = np.diag(covariance)[:n]
    varies = variance > 1e-12 * max(variance.max(), 1e-300)
    return np.where(varies, np.clip(explained / np.where(varies, variance, 1.0), 0.0, 1.0), 0.0)


def pinv_psd(matrix: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Pseudo-inverse of a symmetric positive semi-definite matrix (revealed quantities may be collinear)."""
    values, vectors = np.linalg.eigh(matrix)
    cutoff = rtol * max(values.max(initial=0.0), 1e-300)
    inverse = np.where(values > cutoff, 1.0 / np.where(values > cutoff, values, 1.0), 0.0)
    return (vectors * inverse) @ vectors.T
