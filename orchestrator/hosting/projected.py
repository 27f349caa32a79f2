"""A group's training in projection mode (docs/privacy.md): each row's u = P x is asked for once, then the
hosting node trains alone.

  collect     P's rows go, as sub-models with zero biases, to every holder of the group's rows, all holders
              at once, one request each; each answers u (rows x k) and the labels of the rows it holds
  redundancy  as in the plain rounds: a row's first answering holder, in holder order, is its primary; a row on
              which another holder's u or label differs is dropped (and the mismatch recorded against both)
  prepare     what the rows are trained as (container.prepare): u itself in projection mode; in ldp mode the
              noisy releases denoised with the moments of every release the model has kept (privacy/denoise.py)
  train       `epochs` passes in an order drawn from `seed`, batches of `batch_size` rows, each one optimiser
              step of the model over u (container.train_step); no holder is asked anything more
A holder that refuses (a privacy refusal: 'privacy_check_failed') or fails is recorded as such for its rows
that no other holder answered for; those rows are dropped before any training, so they are neither trained
on nor billed. No gradient is ever asked of a holder in this mode.
"""
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from orchestrator.container.container import TrainingContainer
from orchestrator.container.projected import ProjectedContainer
from orchestrator.errors import ProxyError

from .redundancy import disagreeing_rows
from .rounds import EvidenceLog, PhaseTimes, Plan, Trained, ask_all, train_group

PRIVACY_REFUSAL = "privacy_check_failed"  # the protocol's code for a holder's privacy refusal


def group_trainer(container: TrainingContainer) -> Callable[..., Trained]:
    """How a group of this container's model is trained: on u in projection mode, in rounds otherwise."""
    return train_projected_group if isinstance(container, ProjectedContainer) else train_group


def train_projected_group(container: ProjectedContainer, holders: Mapping[str, Any], model_id: int, plan: Plan, *,
                          epochs: int, batch_size: int, seed: int, max_rounds: int | None = None,
                          log: Callable[[str], None] = print, times: PhaseTimes | None = None,
                          checkpoint_id: int | None = None) -> Trained:
    """The group's rows trained on their u; the same end condition, batch order and result as train_group."""
    times = times or PhaseTimes()
    with times.phase("evaluate"):
        collected = collect_projections(container, holders, model_id, plan, log, checkpoint_id)
    active = collected.primary >= 0
    active[collected.disagree] = False
    drops = {int(i): "mismatch" for i in np.flatnonzero(collected.disagree)}
    for i in np.flatnonzero(collected.primary < 0):
        drops[int(i)] = collected.unanswered[int(i)]
    with times.phase("update"):
        prepared = container.prepare(collected.u, collected.labels, active, seed)
        rounds = train_rows(container, *prepared, epochs=epochs, batch_size=batch_size, seed=seed,
                            max_rounds=max_rounds, times=times)
    return Trained(active, drops, collected.mismatches, rounds, collected.evidence.all())


def train_rows(container: ProjectedContainer, u: np.ndarray, labels: np.ndarray, active: np.ndarray, *, epochs: int,
               batch_size: int, seed: int, max_rounds: int | None = None, times: PhaseTimes | None = None) -> int:
    """`epochs` passes over the rows in an order drawn from `seed`, in batches of `batch_size` positions of which
    the active rows make one optimiser step (container.train_step), until `max_rounds` steps; returns the steps."""
    times = times or PhaseTimes()
    rng = np.random.default_rng(seed)
    rounds = 0
    for _epoch in range(epochs):
        order = rng.permutation(len(labels))
        for start in range(0, len(order), batch_size):
            if max_rounds is not None and rounds >= max_rounds:
                return rounds
            batch = order[start:start + batch_size]
            batch = batch[active[batch]]
            if batch.size:
                container.train_step(u[batch], labels[batch])
                times.rows += int(batch.size)
                times.rounds += 1
                rounds += 1
    return rounds


class Collected:
    """Every row's u and label from its primary holder, and what redundancy and refusals made of the rest."""

    def __init__(self, rows: int, k: int):
        self.u = np.zeros((rows, k), dtype=np.float32)
        self.labels = np.zeros(rows, dtype=np.float32)
        self.primary = np.full(rows, -1, dtype=np.int64)  # the holder a row's u is taken from; -1: none answered
        self.disagree = np.zeros(rows, dtype=bool)
        self.mismatches: list[tuple[bytes, str, int]] = []
        self.evidence = EvidenceLog()
        self.unanswered: dict[int, str] = {}  # row -> why no holder answered for it


def collect_projections(container: ProjectedContainer, holders: Mapping[str, Any], model_id: int, plan: Plan,
                        log: Callable[[str], None], checkpoint_id: int | None = None) -> Collected:
    """One evaluate of P per holder over all the group's rows it holds (naming the checkpoint they are bought
    for), answers used in holder order."""
    out = Collected(len(plan), container.k)
    asked = []
    for h, name in enumerate(plan.holders):
        ids = plan.row_ids[h]
        held = np.flatnonzero(ids >= 0)
        if held.size:
            asked.append((h, held, partial(holders[name].evaluate, model_id, ids[held], container.submodels,
                                                checkpoint_id=checkpoint_id)))
    answers = _ask_all([call for _h, _held, call in asked])
    answered = {h: answer for (h, _held, _call), answer in zip(asked, answers)}
    for (h, held, _call), answer in zip(asked, answers):
        name = plan.holders[h]
        if isinstance(answer, ProxyError):
            why = "privacy_refused" if answer.code == PRIVACY_REFUSAL else "no_holder_answered"
            log(f"  {name} {'refused' if why == 'privacy_refused' else 'failed'} to send u ({answer}); "
                f"its rows go to other holders")
            for i in held[out.primary[held] < 0].tolist():
                out.unanswered.setdefault(i, why)
            continue
        u_h, labels_h = answer.z, answer.labels
        new = out.primary[held] < 0
        fresh = held[new]
        out.u[fresh], out.labels[fresh], out.primary[fresh] = u_h[new], labels_h[new], h
        for i in fresh.tolist():
            out.unanswered.pop(i, None)
        again = held[~new]
        if again.size:
            bad = disagreeing_rows({"primary": out.u[again], name: u_h[~new]}) | (out.labels[again] != labels_h[~new])
            out.disagree[again[bad]] = True
            for i in again[bad].tolist():
                row_hash = plan.row_hash(i)
                first = out.primary[i]
                out.mismatches += [(row_hash, name, 0), (row_hash, plan.holders[first], 0)]
                out.evidence.keep(0, name, answer)
                out.evidence.keep(0, plan.holders[first], answered[first])
    return out


def _ask_all(calls: list[Callable[[], Any]]) -> list[Any]:
    """All holders at once (holders are other processes: the wait is theirs)."""
    with ThreadPoolExecutor(max_workers=max(1, len(calls)), thread_name_prefix="holder") as pool:
        return ask_all(calls, pool)
