"""What the local DP release costs in accuracy, and which training copes with its noise (issue 11, first figures).

Breast cancer (scikit-learn's bundled set): the owner's 100 reference rows fix the task direction t (the
ridge direction of orchestrator/privacy/projection.task_direction) and the clip C (a quantile of |t . x| on
those rows); each of the 298 source rows is released once as t . x clipped to C, plus Gaussian noise at the
local sensitivity 2C with the noise that makes one release cost epsilon at delta 1e-5 (labels in the clear).
Two ways to train on the releases, each scored on the 171 clean test rows (mean and worst of --seeds seeds):
  logistic   scikit-learn's LogisticRegression on the noisy releases (noise-blind)
  means      the class means of the noisy releases (unbiased: the noise has mean zero), test rows classified
             by the nearest mean (noise-aware)

Run: python bench/bench_ldp_utility.py [--seeds 10]
"""
import argparse
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "privacy"))

from orchestrator.privacy.ldp import LocalRelease, clip_rows, gaussian_release  # noqa: E402
from orchestrator.privacy.projection import task_direction  # noqa: E402
from privacy_data import cancer  # noqa: E402

DELTA = 1e-5


def nearest_mean_accuracy(released, labels, test, test_labels) -> float:
    classes = np.unique(labels)
    means = np.stack([released[labels == c].mean(axis=0) for c in classes])
    predicted = classes[np.argmin(np.linalg.norm(test[:, None, :] - means[None], axis=2), axis=1)]
    return float((predicted == test_labels).mean())


def logistic_accuracy(released, labels, test, test_labels) -> float:
    return float(LogisticRegression(max_iter=1000).fit(released, labels).score(test, test_labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--clip-quantiles", type=float, nargs="+", default=[0.5, 0.9])
    args = parser.parse_args()
    data = cancer()
    (xr, yr), (x, y), (xt, yt) = data.reference, data.source, data.test
    t = task_direction(xr, yr)
    t = (t / np.linalg.norm(t))[None, :]
    print(f"breast cancer: {len(x)} source rows released once each along the task direction, {len(xt)} test rows, "
          f"delta {DELTA}, {args.seeds} seeds; accuracy mean (worst seed)")
    print(f"{'clip q':>6} {'clip':>6} {'epsilon':>8} {'logistic':>16} {'means':>16}")
    for quantile in args.clip_quantiles:
        clip = float(np.quantile(np.linalg.norm(xr @ t.T, axis=1), quantile))
        test = clip_rows(xt @ t.T, clip)
        for epsilon in [None, *args.epsilons]:
            scores = {"logistic": [], "means": []}
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                released = (clip_rows(x @ t.T, clip) if epsilon is None else
                            gaussian_release(x @ t.T, LocalRelease.for_epsilon(epsilon, clip, DELTA), rng))
                scores["logistic"].append(logistic_accuracy(released, y, test, yt))
                scores["means"].append(nearest_mean_accuracy(released, y, test, yt))
            shown = {k: f"{100 * np.mean(v):.1f} % ({100 * min(v):.1f})" for k, v in scores.items()}
            label = "none" if epsilon is None else f"{epsilon:g}"
            print(f"{quantile:>6g} {clip:>6.2f} {label:>8} {shown['logistic']:>16} {shown['means']:>16}")


if __name__ == "__main__":
    main()
