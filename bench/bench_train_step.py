"""The hosting node's training step in projection mode vs the centralized step, per model size (issue 12).

For each model (inputs - hidden - classes, relu hidden layers, softmax head, Adam 1e-3) and batch size, on the
same synthetic rows (Gaussian features, labels from a random linear teacher):
  projection   what the hosting node runs on a group's collected u (k = default_k(inputs) columns, P drawn by
               make_projection): hosting.projected.train_rows over the group, one epoch in the order drawn
               from its seed, the container's state updated as the node's is; timed from the call to the
               model's last update on the device
  centralized  training.centralized_step of the owner's model over x (all inputs) on the same batches in the
               same order, each batch already on the device: one compiled call a step, the fastest ordinary
               training loop there is
Both are jit-compiled and warmed up (one full pass each) before timing; then --rounds passes of each,
alternating, so background load hits both alike. Printed: the median time per step of each, and the ratio.
Goal (issue 12): projection / centralized <= 1.5x at batch >= 256.

Run: python bench/bench_train_step.py [--quick] [--steps N] [--rounds N]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "orchestrator"))

from container_builders import model_doc

from orchestrator.container import (
    NormalisedRows,
    centralized_step,
    fit_table,
    init_optimizer,
    parse_model,
)
from orchestrator.container.modelfile import to_network
from orchestrator.hosting.projected import train_rows
from orchestrator.privacy.policy import default_k, projection_policy
from orchestrator.privacy.projected import ProjectedContainer
from orchestrator.privacy.projection import make_projection

MODELS = ((30, (16,), 2), (64, (128, 64), 10), (64, (512, 256), 10))
BATCHES = (256, 1024, 4096)
OPTIMIZER = {"name": "adam", "learning_rate": 1e-3}


class Problem:
    """One model size: the owner's model file, a projected container for it, and rows over x and over u."""

    def __init__(self, n: int, hidden: tuple[int, ...], classes: int, rows: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        inputs = [f"x{i:03d}" for i in range(n)]
        names = [f"class_{c:02d}" for c in range(classes)]
        table = fit_table({name: [0.0, 1.0] for name in inputs} | {"y": names},
                          [(name, "identity", name) for name in inputs], ("y", "label", "class"))
        task = {"kind": "classification", "output": "y", "classes": names}
        self.model = parse_model(model_doc(inputs, list(hidden), task, ["relu"] * len(hidden) + ["softmax"],
                                           seed=seed, optimizer=OPTIMIZER))
        self.x = rng.normal(size=(rows, n)).astype(np.float32)
        self.labels = np.argmax(self.x @ rng.normal(size=(n, classes)), axis=1).astype(np.float32)
        policy = projection_policy(inputs, make_projection(n, default_k(n), seed))
        self.box = ProjectedContainer(1, self.model, table, NormalisedRows(self.x[:256].astype(np.float64),
                                                                           self.labels[:256].astype(np.float64)),
                                      policy)
        self.u = self.x @ policy.committed_matrix.astype(np.float32).T
        self.shape = "-".join(str(s) for s in (n, *hidden, classes))


def batch_order(rows: int, batch: int, seed: int) -> list[np.ndarray]:
    """The batches train_rows draws for one epoch of `rows` rows from `seed` (every row active)."""
    order = np.random.default_rng(seed).permutation(rows)
    return [order[start:start + batch] for start in range(0, rows, batch)]


def block(tree) -> None:
    jax.tree.map(lambda leaf: leaf.block_until_ready() if isinstance(leaf, jax.Array) else leaf, tree)


def time_sizes(problem: Problem, batch: int, steps: int, rounds: int) -> dict[str, float]:
    rows = batch * steps
    u, x, labels = problem.u[:rows], problem.x[:rows], problem.labels[:rows]
    active = np.ones(rows, bool)
    task, optimizer = problem.model.task, problem.box.optimizer
    batches = [(jnp.asarray(x[b]), jnp.asarray(labels[b])) for b in batch_order(rows, batch, seed=0)]
    mlp = to_network(problem.model)

    def projection():
        train_rows(problem.box, u, labels, active, epochs=1, batch_size=batch, seed=0)
        block(problem.box.opt_state)

    def centralized():
        m, s = mlp, init_optimizer(optimizer, mlp)
        for xb, yb in batches:
            m, s, _ = centralized_step(optimizer, task, m, s, xb, yb)
        block(m)

    runs = {"projection": projection, "centralized": centralized}
    for run in runs.values():  # compile and warm up
        run()
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) / steps * 1e3 for key, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds, for a smoke run")
    parser.add_argument("--steps", type=int, help="steps per timed pass (default 40, quick 8)")
    parser.add_argument("--rounds", type=int, help="timed passes of each path (default 5, quick 3)")
    args = parser.parse_args()
    steps = args.steps or (8 if args.quick else 40)
    rounds = args.rounds or (3 if args.quick else 5)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"on {jax.devices()[0].platform}")
    print(f"training step, median of {rounds} passes x {steps} steps each (warm)")
    print(f"{'model (k)':22} {'batch':>6} {'projection ms':>14} {'centralized ms':>15} {'ratio':>6}")
    for n, hidden, classes in MODELS:
        problem = Problem(n, hidden, classes, rows=max(BATCHES) * steps)
        for batch in BATCHES:
            ms = time_sizes(problem, batch, steps, rounds)
            print(f"{problem.shape + f' (k={problem.box.k})':22} {batch:6d} {ms['projection']:14.3f} "
                  f"{ms['centralized']:15.3f} {ms['projection'] / ms['centralized']:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
