"""A group's training in projection mode (docs/privacy.md): each row's u = P x is asked for once, then the
hosting node trains alone.

  collect     P's rows go, as sub-models with zero biases, to every holder of the group's rows, all holders
              at once, page by page (collection.py: PAGE_ROWS rows a request at most, the next page asked while
              the last is merged); each answers u (rows x k) and the labels of the rows it holds
  redundancy  as in the plain rounds: a row's first answering holder, in holder order, is its primary; a row on
              which another holder's u or label differs is dropped (and the mismatch recorded against both)
  prepare     what the rows are trained as (container.prepare): u itself in projection mode, kept in a RowStore
              (a file in the node's artifacts directory when it gives one); in ldp mode the noisy releases'
              moments, summed page by page, join those of every release the model has kept and the group is
              trained on a sample of the model deconvolved from them (privacy/denoise.py)
  train       `epochs` passes in an order drawn from `seed`, batches of `batch_size` rows, each one optimiser
              step of the model over u; the steps run TRAIN_WINDOW_ROWS rows' worth at a time, one compiled call
              each (container.train_batches); no holder is asked anything more. Each epoch's mean training loss
              is logged as the epoch ends (read from a window already trained, so the next is never waited
              for); test accuracy is measured once, at the group's close (node.py), not per epoch: a window
              spans epochs, and stopping at each epoch's end to evaluate would cut the pipeline
Training starts once the last page is merged: the order is a permutation of the whole group, so its first batch
already holds rows of (almost surely) every page, and in ldp mode the sample needs the moments of every kept row.
A holder that refuses (a privacy refusal: 'privacy_check_failed') or fails is recorded as such for its rows
that no other holder answered for; those rows are dropped before any training, so they are neither trained
on nor billed. No gradient is ever asked of a holder in this mode.
"""
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.container.container import TrainingContainer
from orchestrator.privacy.projected import ProjectedContainer
from orchestrator.progress import Progress

from .collection import PAGE_ROWS, collect_projections, kept_for
from .plan import Plan
from .rounds import PhaseTimes, Trained, train_group

# Rows (steps x batch) of u gathered for one compiled call of training: 64 steps at batch 1024, 4 MB at k = 16.
# Enough steps a call that the call's dispatch vanishes beside them, few enough that the gathered batches stay
# a bounded window however large the group.
TRAIN_WINDOW_ROWS = 65_536


@dataclass(frozen=True)
class EpochLoss:
    """One epoch of train_rows: its number (1-based) of `epochs`, the optimiser steps it made and their mean
    loss (NaN when it made none)."""

    epoch: int
    epochs: int
    steps: int
    loss: float


def group_trainer(container: TrainingContainer, scratch_dir: str | Path | None = None,
                  progress: Progress | None = None) -> Callable[..., Trained]:
    """How a group of this container's model is trained: on u in projection mode (kept under `scratch_dir`
    while it trains, when given; `progress` told each page of u collected and each epoch), in rounds
    otherwise."""
    if isinstance(container, ProjectedContainer):
        return partial(train_projected_group, scratch_dir=scratch_dir, progress=progress)
    return train_group


def train_projected_group(container: ProjectedContainer, holders: Mapping[str, Any], model_id: int, plan: Plan, *,
                          epochs: int, batch_size: int, seed: int, max_rounds: int | None = None,
                          log: Callable[[str], None] = print, times: PhaseTimes | None = None,
                          checkpoint_id: int | None = None, page_rows: int = PAGE_ROWS,
                          scratch_dir: str | Path | None = None, progress: Progress | None = None) -> Trained:
    """The group's rows trained on their u; the same end condition, batch order and result as train_group.
    Each epoch's loss is logged; `progress` is told each page of u merged and each epoch trained."""
    times = times or PhaseTimes()
    group = "group" if checkpoint_id is None else f"checkpoint {checkpoint_id}"
    pages = None if progress is None else partial(progress, f"{group}: pages of u")
    with times.phase("evaluate"):
        collected = collect_projections(container, holders, model_id, plan, log, checkpoint_id, page_rows=page_rows,
                                        kept=kept_for(container, len(plan), scratch_dir), progress=pages)
    active = collected.active

    def on_epoch(done: EpochLoss) -> None:
        log(f"  {group}: epoch {done.epoch}/{done.epochs}, loss {done.loss:.4f} over {done.steps} steps")
        if progress is not None:
            progress(f"{group}: epochs", done.epoch, done.epochs)

    with times.phase("update"):
        prepared = collected.kept.prepared(container, active, seed)
        rounds = train_rows(container, *prepared, epochs=epochs, batch_size=batch_size, seed=seed,
                            max_rounds=max_rounds, times=times, on_epoch=on_epoch)
    return Trained(active, collected.drops(), collected.mismatches, rounds, collected.evidence.all())


def train_rows(container: ProjectedContainer, u: np.ndarray, labels: np.ndarray, active: np.ndarray, *, epochs: int,
               batch_size: int, seed: int, max_rounds: int | None = None, times: PhaseTimes | None = None,
               on_epoch: Callable[[EpochLoss], None] | None = None) -> int:
    """`epochs` passes over the rows in an order drawn from `seed`, in batches of `batch_size` positions of which
    the active rows make one optimiser step, until `max_rounds` steps; returns the steps. The steps go to the
    container TRAIN_WINDOW_ROWS rows at a time (container.train_batches, one compiled call each), the next
    window gathered from u while the last trains. `on_epoch` is told each epoch's steps and mean loss once the
    window holding its last step has trained."""
    if batch_size < 1:
        raise ValueError(f"a batch holds at least one row, not {batch_size}")
    times = times or PhaseTimes()
    rows = len(labels)
    bound = epochs * -(-rows // batch_size) if max_rounds is None else min(max_rounds, epochs * -(-rows // batch_size))
    per_call = min(max(1, TRAIN_WINDOW_ROWS // batch_size), 1 << max(bound - 1, 0).bit_length())
    losses = _EpochLosses(epochs, on_epoch)
    steps, training = 0, None
    for positions, keep in _windows(losses.counted(_steps(np.asarray(active, bool), epochs, batch_size, seed,
                                                          max_rounds)), per_call):
        # np.take: a 2-d gather of whole rows, several times faster than u[positions]
        queued = container.train_batches(np.take(u, positions, axis=0), np.take(labels, positions), keep)
        if training is not None:
            training.block_until_ready()  # at most two windows on the device: one training, one queued
            losses.trained(training)
        training = queued
        kept = keep.any(axis=1)
        steps += int(kept.sum())
        times.rows += int(keep.sum())
    if training is not None:
        training.block_until_ready()
        losses.trained(training)
    losses.finished()
    times.rounds += steps
    return steps


class _EpochLosses:
    """Which steps of train_rows belong to which epoch, and their losses as windows finish training: an epoch
    is told to `on_epoch` once the losses of all its steps are in. Without `on_epoch` nothing is read back."""

    def __init__(self, epochs: int, on_epoch: Callable[[EpochLoss], None] | None):
        self.epochs, self.on_epoch = epochs, on_epoch
        self.ends: list[int] = []  # steps up to the end of each epoch so far
        self.losses: list[np.ndarray] = []
        self.known = 0  # steps whose losses are in
        self.told = 0  # epochs told

    def counted(self, steps: Iterator[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        total = 0
        for order, keep in steps:
            total += len(order)
            self.ends.append(total)
            yield order, keep

    def trained(self, window_losses: Any) -> None:
        if self.on_epoch is None:
            return
        # a window's padding steps (past the last real step) trained nothing: their losses are cut off below
        self.losses.append(np.asarray(window_losses, np.float64))
        self.known += len(self.losses[-1])
        self._tell(self.known)

    def finished(self) -> None:
        if self.on_epoch is not None:
            self._tell(self.ends[-1] if self.ends else 0)

    def _tell(self, known: int) -> None:
        if self.on_epoch is None:
            return
        flat = np.concatenate(self.losses) if self.losses else np.zeros(0)
        while self.told < len(self.ends) and self.ends[self.told] <= known:
            start = self.ends[self.told - 1] if self.told else 0
            epoch = flat[start:self.ends[self.told]]
            self.told += 1
            self.on_epoch(EpochLoss(self.told, self.epochs, len(epoch), float(epoch.mean()) if len(epoch) else
                                    float("nan")))


def _steps(active: np.ndarray, epochs: int, batch_size: int, seed: int,
           max_rounds: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The optimiser steps of train_rows, an epoch at a time: positions (steps, batch_size) and which of them are
    trained (active; the last batch of an epoch is padded), each step training at least one row."""
    rng = np.random.default_rng(seed)
    rows = len(active)
    per_epoch = -(-rows // batch_size)
    left = max_rounds
    for _epoch in range(epochs):
        if left is not None and left <= 0:
            return
        order = np.zeros(per_epoch * batch_size, np.int64)
        order[:rows] = rng.permutation(rows)
        keep = np.zeros(per_epoch * batch_size, bool)
        keep[:rows] = active[order[:rows]]
        by_step, keep_by_step = order.reshape(per_epoch, batch_size), keep.reshape(per_epoch, batch_size)
        some = keep_by_step.any(axis=1)  # a batch of dropped rows only is no step
        by_step, keep_by_step = by_step[some][:left], keep_by_step[some][:left]
        if left is not None:
            left -= len(by_step)
        yield by_step, keep_by_step


def _windows(steps: Iterator[tuple[np.ndarray, np.ndarray]],
             per_call: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The steps regrouped `per_call` at a time, the last window padded with steps that train nothing (which
    the compiled call skips), so that every call of a group has the same shape and compiles once."""
    order: np.ndarray | None = None
    keep: np.ndarray | None = None
    for more_order, more_keep in steps:
        if order is not None and keep is not None:
            more_order, more_keep = np.concatenate([order, more_order]), np.concatenate([keep, more_keep])
        full = len(more_order) // per_call * per_call
        for start in range(0, full, per_call):
            yield more_order[start:start + per_call], more_keep[start:start + per_call]
        order, keep = more_order[full:], more_keep[full:]
    if order is not None and keep is not None and len(order):
        pad = per_call - len(order)
        yield (np.concatenate([order, np.zeros((pad, order.shape[1]), np.int64)]),
               np.concatenate([keep, np.zeros((pad, keep.shape[1]), np.bool_)]))
