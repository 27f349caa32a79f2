"""Backup points: the target model and optimiser state before a group of rows, with the accuracy then.

After the group the rule is: accuracy (in ppm, the chain's integer) strictly higher than at the backup
point keeps the new model; equal or lower restores the backup. At the cap the rule is "not lower": once the
backup point is at 100 % nothing can be higher, so a group that keeps 100 % is kept (otherwise no group
could ever be kept again). This is settleCheckpoint's rule exactly (docs/market.md, "When a checkpoint
settles"). Comparing the integers the chain stores, not floats, means the hosting node and the contract can
never disagree about it.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .network import MLP
from .task import PPM


@dataclass(frozen=True)
class BackupPoint:
    model: MLP
    opt_state: Any
    accuracy_ppm: int


class Outcome(NamedTuple):
    model: MLP
    opt_state: Any
    kept: bool
    accuracy_ppm: int  # the accuracy of the model that is now current


def take_backup(model: MLP, opt_state: Any, accuracy_ppm: int) -> BackupPoint:
    """A snapshot: JAX arrays are immutable, so only NumPy leaves need copying to be safe from later writes."""
    return BackupPoint(_frozen(model), _frozen(opt_state), accuracy_ppm)


def accuracy_keeps(before_ppm: int, after_ppm: int) -> bool:
    """Whether a group that took test accuracy from `before_ppm` to `after_ppm` is kept (and may settle)."""
    return after_ppm > before_ppm or after_ppm == before_ppm == PPM


def keeps(backup: BackupPoint, accuracy_ppm: int) -> bool:
    return accuracy_keeps(backup.accuracy_ppm, accuracy_ppm)


def resolve(backup: BackupPoint, model: MLP, opt_state: Any, accuracy_ppm: int) -> Outcome:
    """Applies the keep/rollback rule to the model trained since `backup`."""
    if keeps(backup, accuracy_ppm):
        return Outcome(model, opt_state, True, accuracy_ppm)
    return Outcome(backup.model, backup.opt_state, False, backup.accuracy_ppm)


def _frozen(tree: Any) -> Any:
    return jax.tree.map(lambda leaf: jnp.array(leaf) if isinstance(leaf, np.ndarray) else leaf, tree)
