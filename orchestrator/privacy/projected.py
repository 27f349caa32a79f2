"""The training container of a projection-mode model: layer 1 is W1 = A P, P fixed by the privacy policy.

What the hosting node trains is the model over u = P x (`model_u`: A in W1's place, k inputs), from the u
each row holder sent once; no source is in the loop. What everyone else sees is the real target model over
x, `export_model(model_u, P)`: test accuracy (which gates payment), the backup point, the weights hash on
chain and the exported model file are all of it.

The optimiser state of this container is `ProjectedState(model_u, optax state, moments)`: everything training
needs, kept whole. The hosting node persists the target and the optimiser state as bytes; A cannot be read back
exactly from the float32 W1 = A P, so the container rebuilds its target from the state's `model_u` and never
the other way round, and a backup point restores the very A it was taken with.

In ldp mode the u and labels a group collected are noisy releases (privacy/ldp.py), and `prepare` turns them
into what is trained on (privacy/denoise.py): the group's release moments are added to those of every row
kept so far, the clean rows' label-conditional model deconvolved from the sum, and the group trained on a
sample of that model (denoise.model_sample), so that the network follows the model of every kept release and
the payment gate measures what the group's releases add to it. The moments live in the state, so a
rolled-back group's rows leave them with its model, a backup point and a restart keep them, and the model's
training never uses rows it has not kept. In projection mode `prepare` returns u as it is and
the state's moments are None (no leaf: its bytes are those of before ldp).

Training is the state's alone: a step (`train_step`) or a run of steps (`train_batches`, one compiled call for
all of them) updates `model_u` and the optimiser state and nothing else. The target over x and its sub-model
bank are derived from the state when someone reads them (`target`, `bank`: the backup point, the accuracy on
the test set, the model file, the weights hash), once per state, never per step: W1 = A P is a float64
product on the host, a device-to-host copy that used to cost more than the step itself.
"""
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from orchestrator.container.container import TrainingContainer, _check_fits, normalise_standard_columns
from orchestrator.container.fields import FieldTable, NormalisedRows
from orchestrator.container.modelfile import ModelFile
from orchestrator.container.network import MLP, Dense, MainModel
from orchestrator.container.split import SubModel, SubModelBank, derive_bank
from orchestrator.container.task import CLASSIFICATION
from orchestrator.container.training import HostStep, centralized_step, centralized_steps, init_optimizer
from orchestrator.errors import ContainerError

from .denoise import (
    ReleaseMoments,
    add_moments,
    empty_moments,
    model_sample,
    release_moments,
    trained_rows,
)
from .ldp import response_matrix
from .policy import PrivacyPolicy
from .projection import export_model, host_model

# ldp mode trains each group on a sample of the model of every release kept (prepare): as many rows as were kept,
# up to this many, so that a group's training costs at most this many rows an epoch however many were bought.
MAX_MODEL_SAMPLE = 1024


class TrainingRows(NamedTuple):
    """What a group is trained on: rows over u, their targets, and which of them to train on."""
    u: np.ndarray
    labels: np.ndarray
    active: np.ndarray


class ProjectedState(eqx.Module):
    model_u: MLP  # the model over u = P x
    optimizer: Any  # its optax state
    moments: ReleaseMoments | None = None  # ldp mode: the releases trained on so far (float32 sums)


class ProjectedContainer(TrainingContainer):
    """A TrainingContainer whose target is export_model(model_u, P); trained with `train_step` on u."""

    def __init__(self, model_id: int, model_file: ModelFile, field_table: FieldTable, test_set: NormalisedRows,
                 policy: PrivacyPolicy):
        if policy.mode not in ("projection", "ldp"):
            raise ContainerError(f"a projected container needs a projection-mode policy (projection or ldp), not "
                                 f"{policy.mode!r}")
        self.projection = policy.committed_matrix  # (k, n) float64 holding float32 values
        self.release = policy.release  # ldp mode: how rows were released; None in projection mode
        self._requests = tuple(SubModel(j, tuple(model_file.inputs), tuple(float(w) for w in row), 0.0)
                               for j, row in enumerate(self.projection))
        super().__init__(model_id, model_file, field_table, test_set, policy)

    @property
    def k(self) -> int:
        return self.projection.shape[0]

    @property
    def submodels(self) -> tuple[SubModel, ...]:
        """What a row holder is asked to evaluate: P's rows over every input, with zero biases (u = P x)."""
        return self._requests

    @property
    def classes(self) -> int | None:
        return len(self.task.classes) if self.task.kind == CLASSIFICATION else None

    def prepare(self, u: np.ndarray, labels: np.ndarray, active: np.ndarray, seed: int) -> "TrainingRows":
        """What a group's collected u (rows, k) and labels are trained as; `active` marks the rows kept.
        Projection mode: the rows themselves. ldp mode: the active rows' moments join the state's, and the group
        is trained on a sample of the model deconvolved from them all (module docstring), as many rows as were
        kept so far up to MAX_MODEL_SAMPLE, and never fewer than the group kept."""
        u, labels, active = np.asarray(u), np.asarray(labels), np.asarray(active, bool)
        if u.ndim != 2 or u.shape[1] != self.k or labels.shape != (u.shape[0],) or active.shape != labels.shape:
            raise ContainerError(f"u {u.shape}, labels {labels.shape} and active {active.shape} are not (rows, "
                                 f"{self.k}), (rows,) and (rows,)")
        if self.release is None:
            return TrainingRows(u, labels, active)
        return self.prepare_moments(release_moments(u[active], labels[active], self.classes), int(active.sum()), seed)

    @property
    def trains_on_rows(self) -> bool:
        """Whether a group is trained on its rows' u themselves (projection mode), or only on the moments of its
        releases (ldp mode: prepare_moments), which a host can sum page by page without keeping the rows."""
        return self.release is None

    def prepare_moments(self, group: ReleaseMoments, count: int, seed: int) -> "TrainingRows":
        """ldp mode: `prepare` from the moments of the group's `count` kept releases (release_moments, summed over
        the group with add_moments in any split): they join the state's, and the group is trained on a sample of
        the model deconvolved from them all."""
        if self.release is None:
            raise ContainerError("projection mode trains on the rows themselves: prepare, not prepare_moments")
        classes, state = self.classes, self._opt_state
        self._set_target(None, ProjectedState(state.model_u, state.optimizer,
                                              _stored(add_moments(state.moments, group))))
        kept = trained_rows(self._opt_state.moments, classes)
        size = max(count, min(kept, MAX_MODEL_SAMPLE)) if count else 0
        rows, targets = model_sample(self._opt_state.moments, self.release, size, classes=classes,
                                     response=self.response, rng=np.random.default_rng([seed, 1]))
        return TrainingRows(rows, targets, np.ones(size, bool))

    @property
    def response(self) -> np.ndarray | None:
        """ldp mode, a classification task's labels under randomized response: T[i, j] = P(answer j | label i)."""
        if self.release is None or self.release.label_epsilon is None or self.classes is None:
            return None
        return response_matrix(self.classes, self.release.label_epsilon)

    def train_step(self, u: jax.Array, labels: jax.Array) -> float:
        """One optimiser step of the model over u on a batch of u (rows, k) and labels; returns the loss."""
        u, labels = jnp.asarray(u, jnp.float32), jnp.asarray(labels, jnp.float32)
        if u.ndim != 2 or u.shape[1] != self.k or labels.shape != (u.shape[0],):
            raise ContainerError(f"u {u.shape} and labels {labels.shape} are not (rows, {self.k}) and (rows,)")
        state = self._opt_state
        model_u, optimizer, loss = centralized_step(self.optimizer, self.task, state.model_u, state.optimizer,
                                                    u, labels)
        self._set_target(None, ProjectedState(model_u, optimizer, state.moments))
        return float(loss)

    def train_batches(self, u: ArrayLike, labels: ArrayLike, keep: ArrayLike) -> jax.Array:
        """One optimiser step per batch, all in one compiled call (training.centralized_steps): u (steps, batch,
        k), labels and keep (steps, batch), each step on the rows keep marks (a step keeping none is skipped).
        Returns the losses (steps,) as a device array, not waited for: the caller may prepare the next batches
        while these train."""
        u, labels, keep = jnp.asarray(u, jnp.float32), jnp.asarray(labels, jnp.float32), jnp.asarray(keep, bool)
        if u.ndim != 3 or u.shape[2] != self.k or labels.shape != u.shape[:2] or keep.shape != u.shape[:2]:
            raise ContainerError(f"u {u.shape}, labels {labels.shape} and keep {keep.shape} are not (steps, batch, "
                                 f"{self.k}), (steps, batch) and (steps, batch)")
        state = self._opt_state
        model_u, optimizer, losses = centralized_steps(self.optimizer, self.task, state.model_u, state.optimizer,
                                                       u, labels, keep)
        self._set_target(None, ProjectedState(model_u, optimizer, state.moments))
        return losses

    def host_step(self, z: jax.Array, labels: jax.Array) -> HostStep:
        raise ContainerError("projection mode: the host trains on u itself (train_step); it has no dL/dz to send")

    def apply_gradients(self, first: Dense, main_grads: MainModel) -> None:
        raise ContainerError("projection mode: no layer-1 gradient is ever asked of a source")

    def _set_target(self, target: MLP | None, opt_state: Any) -> None:
        # `target` only seeds a fresh state (the owner's model brought into W1 = A P); with a state given, the
        # target is rebuilt from it, which is the same model the stored target was exported from.
        if opt_state is None:
            if target is None:
                raise ContainerError("a fresh projected state is seeded from the owner's model; none was given")
            model_u = host_model(target, self.projection)
            moments = None if self.release is None else _stored(empty_moments(self.k, self.classes))
            opt_state = ProjectedState(model_u, init_optimizer(self.optimizer, model_u), moments)
        self._opt_state = opt_state
        self._exported: tuple[MLP, SubModelBank] | None = None  # (target, bank) of this state, once someone reads them

    # The base class reads `self._target` and `self._bank` (accuracy, backup points, the model file); here they
    # are views of the state, derived on first read after an update.
    @property
    def _target(self) -> MLP:  # type: ignore[override]  # read-only here: this class overrides every writer
        return self._derived()[0]

    @property
    def _bank(self) -> SubModelBank:  # type: ignore[override]  # read-only here, as _target
        return self._derived()[1]

    def _derived(self) -> tuple[MLP, SubModelBank]:
        if self._exported is None:
            target = export_model(self._opt_state.model_u, self.projection)
            self._exported = (target, derive_bank(target, self.model_file.inputs))
        return self._exported


def _stored(moments: ReleaseMoments) -> ReleaseMoments:
    """Moments as the state keeps them: float32 device arrays, like every other leaf (backups, bytes)."""
    # device arrays where the fields say ndarray: both are arrays to every reader (np.asarray, the math)
    return ReleaseMoments(*(jnp.asarray(x, jnp.float32) for x in moments))  # type: ignore[arg-type]


def create_projected_container(model_id: int, model_file: ModelFile, field_table: FieldTable,
                               test_columns: Mapping[str, Sequence[Any]], policy: PrivacyPolicy) -> ProjectedContainer:
    """The projection-mode counterpart of container.create_container."""
    _check_fits(model_id, model_file, field_table)
    return ProjectedContainer(model_id, model_file, field_table, normalise_standard_columns(field_table, test_columns),
                              policy)

