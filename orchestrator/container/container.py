"""The training container: everything the hosting node keeps for one model id, kept consistent.

It is the stateful edge around the pure pieces: it owns the current target model and optimiser state,
re-derives the sub-models after every update, evaluates the target test set, and runs backup points.
It never talks to a chain or a network; the hosting node moves z, dL/dz and gradients between it and the
sources with the functions in `training`.
"""
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from orchestrator.errors import ContainerError
from orchestrator.hashing.rows import UINT256_LIMIT

from .backup import BackupPoint, Outcome, resolve, take_backup
from .detection import DetectionModel
from .fields import ColumnMapping, FieldTable, Label, NormalisedRows, normalise_columns
from .history import HistorySet
from .modelfile import ModelFile, to_network, with_network
from .network import MLP, Dense, MainModel, logits, outputs
from .split import SubModel, SubModelBank, derive_bank, submodels
from .task import CLASSIFICATION, Task, hits, ppm_from_counts
from .training import HostStep, host_step, host_update, init_optimizer

if TYPE_CHECKING:  # the privacy package builds on the container's network, not the other way round
    from orchestrator.privacy.policy import PrivacyPolicy


class TrainingContainer:
    """Model id, target model, main model, sub-models, history set, detection model, field table, test set,
    the privacy policy row holders are quoted with (None for a container that is never quoted, e.g. a
    benchmark's), and (between `begin_group` and `end_group`) a backup point."""

    # Set by _set_target; the projected container derives _target and _bank from its state instead.
    _target: MLP
    _bank: SubModelBank
    _opt_state: Any
    _submodels: tuple[SubModel, ...] | None

    def __init__(self, model_id: int, model_file: ModelFile, field_table: FieldTable, test_set: NormalisedRows,
                 policy: "PrivacyPolicy | None" = None):
        _check_fits(model_id, model_file, field_table)
        if policy is not None and policy.inputs != model_file.inputs:
            raise ContainerError(f"the privacy policy covers inputs {list(policy.inputs)[:3]}..., not the model's")
        self.policy = policy
        if len(test_set) == 0:
            raise ContainerError("the target test set is empty; accuracy could never gate a payment")
        self.model_id = model_id
        self.model_file = model_file
        self.field_table = field_table
        self.task: Task = model_file.task
        self.optimizer = model_file.optimizer.build()
        self.detection = DetectionModel.from_table(field_table)
        self.history = HistorySet()
        self.test_set = test_set
        self._test_x = jnp.asarray(test_set.features, jnp.float32)
        self._test_y = jnp.asarray(test_set.labels, jnp.float32)
        self.backup: BackupPoint | None = None
        self._set_target(to_network(model_file), None)

    @property
    def target(self) -> MLP:
        return self._target

    @property
    def opt_state(self) -> Any:
        return self._opt_state

    @property
    def main(self) -> MainModel:
        return self._target.main

    @property
    def bank(self) -> SubModelBank:
        return self._bank

    @property
    def submodels(self) -> tuple[SubModel, ...]:
        """The current sub-models, one per layer-1 neuron, ready to be sent to a source."""
        if self._submodels is None:
            self._submodels = submodels(self._bank)
        return self._submodels

    def accuracy_ppm(self) -> int:
        """Accuracy of the current target model on the target test set, in parts per million."""
        count = _test_hits(self.task, self._target, self._test_x, self._test_y)
        return ppm_from_counts(int(count), len(self.test_set))

    def host_step(self, z: jax.Array, labels: jax.Array) -> HostStep:
        """The host's half of a step on a batch of sub-model outputs z (rows, neurons) and their labels."""
        z, labels = jnp.asarray(z, jnp.float32), jnp.asarray(labels, jnp.float32)
        neurons = self._bank.weight.shape[0]
        if z.ndim != 2 or z.shape[1] != neurons or labels.shape != (z.shape[0],):
            raise ContainerError(f"z {z.shape} and labels {labels.shape} are not (rows, {neurons}) and (rows,)")
        return host_step(self.task, self.main, z, labels)

    @property
    def quote_policy(self) -> "PrivacyPolicy":
        """The policy row holders are quoted with; a ContainerError for a container made without one."""
        if self.policy is None:
            raise ContainerError(f"model {self.model_id}'s container has no privacy policy: it cannot be quoted")
        return self.policy

    def apply_gradients(self, first: Dense, main_grads: MainModel) -> None:
        """One optimiser update from layer-1 gradients (from the source) and main-model gradients."""
        weight, bias = jnp.asarray(first.weight), jnp.asarray(first.bias)
        if weight.shape != self._bank.weight.shape or bias.shape != self._bank.bias.shape:
            raise ContainerError(f"layer-1 gradients {weight.shape}, {bias.shape} do not fit the sub-models")
        self._target, self._opt_state, self._bank = host_update(
            self.optimizer, self._target, self._opt_state, self._bank, Dense(weight, bias), main_grads
        )
        self._submodels = None

    def begin_group(self) -> BackupPoint:
        """Takes the backup point before a group of rows is trained."""
        if self.backup is not None:
            raise ContainerError("a group is already open; end it before starting another")
        self.backup = take_backup(self._target, self._opt_state, self.accuracy_ppm())
        return self.backup

    def end_group(self) -> Outcome:
        """Measures test accuracy; strictly higher than at the backup point keeps, else restores the backup."""
        if self.backup is None:
            raise ContainerError("no group is open: there is no backup point to compare against")
        outcome = resolve(self.backup, self._target, self._opt_state, self.accuracy_ppm())
        self._set_target(outcome.model, outcome.opt_state)
        self.backup = None
        return outcome

    def export_model(self) -> ModelFile:
        """The current target model as a model file."""
        return with_network(self.model_file, self._target)

    def restore(self, target: MLP, opt_state: Any) -> None:
        """Makes `target` and `opt_state` current (a hosting node restarting from its saved state)."""
        if self.backup is not None:
            raise ContainerError("cannot restore a saved model while a group is open")
        self._set_target(target, opt_state)

    def resume_group(self, backup: BackupPoint) -> None:
        """Re-opens a group from a saved backup point: the current model is the backup's."""
        if self.backup is not None:
            raise ContainerError("a group is already open; end it before starting another")
        self._set_target(backup.model, backup.opt_state)
        self.backup = backup

    def finish_group(self, target: MLP, opt_state: Any) -> None:
        """Closes the open group with the model the chain's outcome decided (the trained one after a settle,
        the backup's after a rollback); for a hosting node that closes groups across restarts."""
        if self.backup is None:
            raise ContainerError("no group is open")
        self.backup = None
        self._set_target(target, opt_state)

    def _set_target(self, target: MLP, opt_state: Any) -> None:
        self._target = target
        self._opt_state = init_optimizer(self.optimizer, target) if opt_state is None else opt_state
        self._bank = derive_bank(target, self.model_file.inputs)
        self._submodels = None


def create_container(
    model_id: int, model_file: ModelFile, field_table: FieldTable, test_columns: Mapping[str, Sequence[Any]],
    policy: "PrivacyPolicy | None" = None,
) -> TrainingContainer:
    """A container from the owner's model file, field table and test set (columns under standard names).

    For the plain and dp exchanges; a projection-mode model's container is projected.create_projected_container.
    """
    _check_fits(model_id, model_file, field_table)
    test_set = normalise_standard_columns(field_table, test_columns)
    return TrainingContainer(model_id, model_file, field_table, test_set, policy)


def normalise_standard_columns(field_table: FieldTable, columns: Mapping[str, Sequence[Any]]) -> NormalisedRows:
    """Labelled rows given as columns under standard names (a test set, an owner's reference rows), normalised."""
    return normalise_columns(field_table, ColumnMapping.identity(field_table), columns)


@partial(jax.jit, static_argnames="task")
def _test_hits(task: Task, mlp: MLP, x: jax.Array, labels: jax.Array) -> jax.Array:
    out = logits(mlp, x)
    return hits(task, out, outputs(mlp.main, out), labels)


def _check_fits(model_id: int, model: ModelFile, table: FieldTable) -> None:
    if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 <= model_id < UINT256_LIMIT:
        raise ContainerError(f"model id {model_id!r} is not a uint256")
    if model.inputs != table.model_inputs:
        first = next(
            (i for i, (a, b) in enumerate(zip(model.inputs, table.model_inputs)) if a != b),
            min(len(model.inputs), len(table.model_inputs)),
        )
        raise ContainerError(
            f"the model's inputs and the field table's model inputs differ from position {first}: "
            f"model {list(model.inputs[first:first + 3])} vs table {list(table.model_inputs[first:first + 3])}"
        )
    if model.task.output != table.output.name:
        raise ContainerError(f"the model predicts {model.task.output!r} but the table's output is "
                             f"{table.output.name!r}")
    operator = table.output.operator
    is_label = isinstance(operator, Label)
    if model.task.kind == CLASSIFICATION and (not isinstance(operator, Label)
                                              or operator.categories != model.task.classes):
        raise ContainerError(
            f"classes differ: model {list(model.task.classes)}, table output operator {table.output.operator}"
        )
    if model.task.kind != CLASSIFICATION and is_label:
        raise ContainerError("a regression model's output field needs a numeric operator, not label")
