"""What the local DP release leaves to an attacker, side by side with no protection (issue 11, first figures).

Breast cancer (scikit-learn's bundled set) under the default projection policy's P, chosen on the owner's 100
reference rows; 298 source rows are attacked. Each source row is released once: u = P x as is ("none"), or
clipped to the 90th percentile of the reference rows' norms and noised by the Gaussian mechanism at the local
sensitivity 2 x clip, with the noise that makes one release cost epsilon at delta 1e-5 (labels in the clear
in both). Printed per setting, over --seeds seeds (mean, and the worst seed):
  re-id      top-1 re-identification among 100 candidates that contain the true row (nearest under P)
  bound      what (epsilon, delta)-DP allows any attacker: e^epsilon / 100 + delta
  kNN excess the largest, over the 30 fields, of kNN reconstruction R^2 (fitted on the reference rows, released
             the same way) minus the R^2 of the field's class mean (what the label alone gives)

Run: python bench/bench_ldp_attacks.py [--seeds 10]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "privacy"))

from privacy_data import cancer

from orchestrator.privacy.attack import field_r2
from orchestrator.privacy.ldp import LocalRelease, clip_rows, gaussian_release
from orchestrator.privacy.policy import default_policy
from orchestrator.privacy.reidentify import knn_reconstruction, label_only_r2, reidentification_bound, reidentify

DELTA = 1e-5
POOL = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    args = parser.parse_args()
    data = cancer()
    (xr, yr), (x, y) = data.reference, data.source
    p = np.asarray(default_policy(data.inputs, xr, yr, 0).projection)
    clip = float(np.quantile(np.linalg.norm(xr @ p.T, axis=1), 0.9))
    base = label_only_r2(yr, xr, y, x)
    print(f"breast cancer: P {p.shape[0]} x {p.shape[1]}, {len(x)} attacked rows, clip {clip:.3f}, delta {DELTA}, "
          f"{args.seeds} seeds")
    print(f"{'epsilon':>8} {'noise mult':>10} {'re-id mean':>10} {'worst':>7} {'bound':>7} {'kNN excess':>10} "
          f"{'worst':>7}")
    for epsilon in [None, *args.epsilons]:
        release = None if epsilon is None else LocalRelease.for_epsilon(epsilon, clip, DELTA)
        rates, excesses = [], []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            if release is None:
                released, aux = x @ p.T, xr @ p.T
                public = lambda rows: rows @ p.T  # noqa: E731
            else:
                released, aux = gaussian_release(x @ p.T, release, rng), gaussian_release(xr @ p.T, release, rng)
                public = lambda rows: clip_rows(rows @ p.T, clip)  # noqa: E731
            rates.append(reidentify(released, x, public, pool=POOL, rng=rng).rate)
            estimate = knn_reconstruction(np.c_[aux, yr], xr, np.c_[released, y])
            excesses.append(float((field_r2(x, estimate) - base).max()))
        label = "none" if epsilon is None else f"{epsilon:g}"
        noise = "-" if release is None else f"{release.noise_multiplier:.3f}"
        bound = "-" if epsilon is None else f"{reidentification_bound(epsilon, DELTA, POOL):.3f}"
        print(f"{label:>8} {noise:>10} {np.mean(rates):>10.3f} {max(rates):>7.3f} {bound:>7} "
              f"{np.mean(excesses):>10.3f} {max(excesses):>7.3f}")


if __name__ == "__main__":
    main()
