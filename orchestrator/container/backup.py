"""Backup points: the target model and optimiser state before a group of rows, with the accuracy then.

After the group the rule is: accuracy (in ppm, the chain's integer) strictly higher than at the backup
point keeps the new model; equal or lower restores the backup. Comparing the integers the chain stores,
not floats, means the hosting node and the contract can never disagree about "higher".
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .network import MLP


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


def keeps(backup: BackupPoint, accuracy_ppm: int) -> bool:
    return accuracy_ppm > backup.accuracy_ppm


def resolve(backup: BackupPoint, model: MLP, opt_state: Any, accuracy_ppm: int) -> Outcome:
    """Applies the keep/rollback rule to the model trained since `backup`."""
    if keeps(backup, accuracy_ppm):
        return Outcome(model, opt_state, True, accuracy_ppm)
    return Outcome(backup.model, backup.opt_state, False, backup.accuracy_ppm)


def _frozen(tree: Any) -> Any:
    return jax.tree.map(lambda leaf: jnp.array(leaf) if isinstance(leaf, np.ndarray) else leaf, tree)
