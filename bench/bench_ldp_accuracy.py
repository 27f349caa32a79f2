"""Test accuracy under the default ldp policy, by epsilon, trained as the hosting node trains (issue 11).

Four datasets (scikit-learn's bundled breast cancer, wine and digits, and a synthetic one with 10,000 source
rows), each split once into the owner's reference rows, the source rows and the test rows, the features
z-scored with the reference rows' statistics (a constant feature left as is). The owner's policy is
`choose_ldp_policy` on the reference rows (P, the clip), at each epsilon (delta 1e-5), with the labels in the
clear or through randomized response with the default label share. Each source row is released once
(`gaussian_release`, `randomized_response`); the hosting node's ProjectedContainer trains the owner's MLP
(inputs - 16 relu - classes softmax, Adam 0.02) on the releases in groups of --group-size rows in order, each
group as the node trains one: `prepare` (the noise-aware denoising), then --epochs passes of `train_step`
over batches (hosting.projected.train_rows). Every group is kept: the node keeps a group only if accuracy on
the owner's test set rises, and a benchmark scored on that same test set would then report the gate's choice
among lucky and unlucky draws rather than what the rows taught. Scored on the clean test rows: the final
model's accuracy, mean and worst of --seeds seeds (each seed draws the noise, the owner's initial weights and
the batch order). Beside it:
  non-private split   the same P, no clip and no noise (projection mode, the same training)
  default projection  today's default projection policy (policy.default_policy), no noise
  re-id               top-1 re-identification among 100 candidates holding the true row, nearest under the
                      clipped P (labels in the clear; the first 1,000 source rows at most, hidden among source
                      and reference rows), and its DP bound e^epsilon / 100 + delta

Run: python bench/bench_ldp_accuracy.py [--seeds 10] [--datasets cancer wine digits synthetic] [--epochs N]
"""
import argparse
import datetime
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "orchestrator"))

from container_builders import model_doc

from orchestrator.container import MLP, NormalisedRows, fit_table, parse_model, to_network
from orchestrator.hosting.projected import train_rows
from orchestrator.privacy.ldp import clip_rows, gaussian_release, randomized_response
from orchestrator.privacy.ldp_default import CLIP_QUANTILE, DEFAULT_LABEL_SHARE, choose_ldp_policy
from orchestrator.privacy.policy import PrivacyPolicy, default_policy
from orchestrator.privacy.projected import ProjectedContainer
from orchestrator.privacy.reidentify import reidentification_bound, reidentify

DELTA = 1e-5
POOL = 100
REID_ROWS = 1_000
HIDDEN = 16
OPTIMIZER = {"name": "adam", "learning_rate": 0.02}


@dataclass(frozen=True)
class Data:
    name: str
    classes: int
    reference: tuple[np.ndarray, np.ndarray]
    source: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    epochs: int  # passes over each group (a small set needs more to train the owner's MLP at all)


def split(name: str, x: np.ndarray, y: np.ndarray, reference: int, test: int, epochs: int) -> Data:
    rest_x, test_x, rest_y, test_y = train_test_split(x, y, test_size=test, random_state=0, stratify=y)
    ref_x, source_x, ref_y, source_y = train_test_split(rest_x, rest_y, train_size=reference, random_state=0,
                                                        stratify=rest_y)
    mean, std = ref_x.mean(axis=0), ref_x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    z = lambda rows: (rows - mean) / std  # noqa: E731
    labels = lambda v: np.asarray(v, np.float64)  # noqa: E731
    return Data(name, int(y.max()) + 1, (z(ref_x), labels(ref_y)), (z(source_x), labels(source_y)),
                (z(test_x), labels(test_y)), epochs)


def dataset(name: str) -> Data:
    if name == "cancer":
        data = load_breast_cancer()
        return split("breast cancer", data.data, data.target, 100, 171, epochs=20)
    if name == "wine":
        data = load_wine()
        return split("wine", data.data, data.target, 40, 54, epochs=20)
    if name == "digits":
        data = load_digits()
        return split("digits", data.data, data.target, 300, 450, epochs=10)
    if name == "synthetic":
        x, y = make_classification(n_samples=12_000, n_features=20, n_informative=6, n_redundant=4, n_classes=4,
                                   n_clusters_per_class=1, class_sep=1.0, random_state=0)
        return split("synthetic (make_classification, 4 classes)", x, y, 300, 1_700, epochs=2)
    raise ValueError(f"unknown dataset {name!r}")


class Owner:
    """The owner's model file, field table and test set for a dataset: containers for any policy."""

    def __init__(self, data: Data):
        n = data.reference[0].shape[1]
        self.inputs = [f"x{i:03d}" for i in range(n)]
        self.classes = [f"class_{c:02d}" for c in range(data.classes)]
        columns = {name: [0.0, 1.0] for name in self.inputs} | {"y": self.classes}
        self.table = fit_table(columns, [(name, "identity", name) for name in self.inputs], ("y", "label", "class"))
        self.task = {"kind": "classification", "output": "y", "classes": self.classes}
        self.test = NormalisedRows(*data.test)
        self.model = parse_model(self.doc(0))
        self._initial: dict[int, MLP] = {}

    def doc(self, seed: int) -> dict:
        return model_doc(self.inputs, [HIDDEN], self.task, ["relu", "softmax"], seed=seed, optimizer=OPTIMIZER)

    def container(self, policy: PrivacyPolicy) -> ProjectedContainer:
        return ProjectedContainer(1, self.model, self.table, self.test, policy)

    def initial(self, seed: int):
        """The owner's initial target model for a seed (Glorot-normal weights drawn from it)."""
        if seed not in self._initial:
            self._initial[seed] = to_network(parse_model(self.doc(seed)))
        return self._initial[seed]


def train_groups(box: ProjectedContainer, u: np.ndarray, labels: np.ndarray, *, group_size: int, epochs: int,
                 batch_size: int, seed: int) -> float:
    """The rows in groups, each prepared and trained as the hosting node trains one, every group kept (module
    docstring: the node's gate would choose with the test set); the final accuracy on the test rows, in %."""
    for g, start in enumerate(range(0, len(labels), group_size)):
        rows = slice(start, start + group_size)
        active = np.ones(len(labels[rows]), bool)
        prepared = box.prepare(u[rows], labels[rows], active, seed * 1_000 + g)
        train_rows(box, *prepared, epochs=epochs, batch_size=batch_size, seed=seed * 1_000 + g)
    return box.accuracy_ppm() / 1e4


def score(values: list[float]) -> str:
    return f"{np.mean(values):5.1f} % ({min(values):5.1f})"


def run(data: Data, args) -> None:
    started = time.perf_counter()
    owner = Owner(data)
    (ref_x, ref_y), (source_x, source_y) = data.reference, data.source
    epochs = args.epochs or data.epochs
    train = dict(group_size=args.group_size, epochs=epochs, batch_size=args.batch_size)

    def trained(box, u, labels, seed):
        box.restore(owner.initial(seed), None)
        return train_groups(box, u, labels, seed=seed, **train)

    policy = choose_ldp_policy(owner.inputs, ref_x, ref_y, 8.0, classes=data.classes, label_share=None,
                               clip_quantile=args.clip_quantile)
    p, clip = policy.committed_matrix, policy.ldp_settings.clip
    plain = PrivacyPolicy("projection", tuple(owner.inputs), projection=policy.projection)
    clean = owner.container(plain)
    split_scores = [trained(clean, source_x @ p.T, source_y, seed) for seed in range(args.seeds)]
    projection = default_policy(owner.inputs, ref_x, ref_y, 0)
    box = owner.container(projection)
    default_p = projection.committed_matrix
    default_scores = [trained(box, source_x @ default_p.T, source_y, seed) for seed in range(args.seeds)]
    print(f"\n{data.name}: {len(ref_y)} reference, {len(source_y)} source rows (released once each), "
          f"{len(data.test[1])} test rows; P {p.shape[0]} x {p.shape[1]}, clip {clip:.4g}; groups of "
          f"{args.group_size}, {epochs} epochs, batches of {args.batch_size}; delta {DELTA}, {args.seeds} seeds; "
          f"accuracy mean (worst seed)")
    print(f"non-private split (same P, no noise): {score(split_scores)}; default projection policy "
          f"({default_p.shape[0]} x {default_p.shape[1]}, no noise): {score(default_scores)}")
    print(f"{'epsilon':>7} {'noise':>6} {'labels clear':>17} {'eps_L':>6} {'noise':>6} {'labels DP':>17} "
          f"{'re-id':>6} {'worst':>6} {'bound':>6}")
    originals = np.vstack([source_x, ref_x])[:max(2 * REID_ROWS, POOL)]  # row i released is row i here
    for epsilon in args.epsilons:
        clear = choose_ldp_policy(owner.inputs, ref_x, ref_y, epsilon, classes=data.classes, label_share=None,
                                  clip_quantile=args.clip_quantile)
        private = choose_ldp_policy(owner.inputs, ref_x, ref_y, epsilon, classes=data.classes,
                                    label_share=args.label_share, clip_quantile=args.clip_quantile)
        boxes = owner.container(clear), owner.container(private)
        label_epsilon = private.ldp_settings.label_epsilon
        if label_epsilon is None:
            raise SystemExit(f"--label-share {args.label_share} left the labels in the clear")
        clear_scores, private_scores, rates = [], [], []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            released = gaussian_release(source_x @ p.T, clear.ldp_settings.release, rng)
            clear_scores.append(trained(boxes[0], released, source_y, seed))
            public = lambda rows: clip_rows(rows @ p.T, clip)  # noqa: E731
            rates.append(reidentify(released[:REID_ROWS], originals, public, pool=POOL, rng=rng).rate)
            noisy = gaussian_release(source_x @ p.T, private.ldp_settings.release, rng)
            answered = randomized_response(source_y, data.classes, label_epsilon, rng)
            private_scores.append(trained(boxes[1], noisy, answered.astype(np.float64), seed))
        print(f"{epsilon:>7g} {clear.ldp_settings.noise_multiplier:>6.3f} {score(clear_scores):>17} "
              f"{label_epsilon:>6.3g} {private.ldp_settings.noise_multiplier:>6.3f} {score(private_scores):>17} "
              f"{np.mean(rates):>6.3f} {max(rates):>6.3f} {reidentification_bound(epsilon, DELTA, POOL):>6.3f}",
              flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--datasets", nargs="+", default=["cancer", "wine", "digits", "synthetic"])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--epochs", type=int, default=None, help="passes over each group (default: per dataset)")
    parser.add_argument("--group-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--clip-quantile", type=float, default=CLIP_QUANTILE,
                        help="the clip: this quantile of |P x| on the reference rows (default: %(default)s)")
    parser.add_argument("--label-share", type=float, default=DEFAULT_LABEL_SHARE,
                        help="epsilon's share spent on the label, for the labels-DP column (default: %(default)s)")
    args = parser.parse_args()
    print(f"$ python {' '.join(sys.argv)}")
    print(f"{datetime.datetime.now().isoformat(timespec='seconds')}")
    for name in args.datasets:
        run(dataset(name), args)


if __name__ == "__main__":
    main()
