"""A group's training rounds, without the chain: the hosting node's hot path (claim 7, step 6).

One round over a batch of the group's rows:
  evaluate    the current sub-models go to every holder of a batch row, all holders at once; each answers z
              (rows x neurons) and the labels of the rows it holds
  redundancy  a row's first answering holder, in holder order, is its primary; every other holder's answer is
              compared with the primary's, and a row on which any differ is dropped for the rest of the group
              (and the mismatch recorded against both holders)
  host step   the main model on z and labels: loss, main-model gradients and dL/dz
  gradient    each row's dL/dz goes to its primary holder, all holders at once; each answers dL/dW1, dL/db1
              summed over its rows; the answers are summed in holder order. A plain-mode holder withholds the
              rows dz would give away whole (privacy.audit.withheld_rows) and names them: those rows trained
              every layer above layer 1 in this step and stay in the group (trained, billed); they are counted
              (`Trained.withheld`, `PhaseTimes.withheld`, a line in the log), not dropped
  update      one optimiser step of the target model, and the sub-models re-derived for the next round
Holders are asked in parallel (they are other processes; the wait is I/O), but their answers are always used
in holder order, so a run gives the same numbers whatever order the answers arrive in. A holder that fails or
refuses is not asked again during the group: rows it alone held are dropped ('no_holder_answered' when the
evaluate failed, 'holder_failed' when its gradient did, the step then being re-formed without them).
"""
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax.numpy as jnp
import numpy as np

from orchestrator.container.container import TrainingContainer
from orchestrator.container.network import Dense
from orchestrator.errors import ProxyError
from orchestrator.proxy.holder import SignedAnswer

from .plan import Plan
from .redundancy import disagreeing_rows

PHASES = ("evaluate", "host_step", "gradient", "update")


@dataclass
class PhaseTimes:
    """Wall-clock seconds spent in each phase of the rounds, and the rows trained (for a benchmark's breakdown)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    rows: int = 0
    rounds: int = 0
    withheld: int = 0  # of `rows`, those whose layer-1 gradient their holder withheld (counted once per round)

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


@dataclass(frozen=True)
class MismatchEvidence:
    """A holder's signed answer in a round where some row of it disagreed with another holder's: what anyone
    can check the recorded mismatch against (orchestrator/hosting/evidence.py)."""

    round: int
    holder: str  # the holder's name in the plan
    answer: SignedAnswer


class EvidenceLog:
    """The signed answers behind a group's mismatches, one per (round, holder), in the order first needed."""

    def __init__(self):
        self._kept: dict[tuple[int, str], MismatchEvidence] = {}

    def keep(self, round_: int, holder: str, answer: Any) -> None:
        signed = getattr(answer, "evidence", None)
        if signed is not None:  # a direct source in this process signs nothing: there is no one to convince
            self._kept.setdefault((round_, holder), MismatchEvidence(round_, holder, signed))

    def all(self) -> list[MismatchEvidence]:
        return list(self._kept.values())


@dataclass(frozen=True)
class Withheld:
    """The rows whose layer-1 gradient a holder withheld in one round (plain mode: dz isolated them)."""

    round: int
    holder: str  # the holder's name in the plan
    rows: tuple[int, ...]  # positions in the plan


@dataclass
class Trained:
    """What a group's rounds left: which rows are still in (trained, billable), why the others were dropped,
    the redundancy mismatches as (row hash, holder, round) with the signed answers behind them, and how many
    rounds ran."""

    active: np.ndarray
    drops: dict[int, str]
    mismatches: list[tuple[bytes, str, int]]
    rounds: int
    evidence: list[MismatchEvidence] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)  # per round and holder; those rows stay active


def train_group(container: TrainingContainer, holders: Mapping[str, Any], model_id: int, plan: Plan, *,
                epochs: int, batch_size: int, seed: int, max_rounds: int | None = None,
                log: Callable[[str], None] = print, times: PhaseTimes | None = None,
                checkpoint_id: int | None = None) -> Trained:
    """Rounds over the group's rows until its end condition: `epochs` passes in an order drawn from `seed`
    (the same seed gives the same rounds, which is how a restarted node repeats a group exactly), or
    `max_rounds`. Every evaluate names `checkpoint_id`, which holders record for their sources' audits."""
    rounds = _Rounds(container, holders, model_id, plan, log, times or PhaseTimes())
    rounds.checkpoint_id = checkpoint_id
    rng = np.random.default_rng(seed)
    with ThreadPoolExecutor(max_workers=max(1, len(plan.holders)), thread_name_prefix="holder") as pool:
        rounds.pool = pool
        for _epoch in range(epochs):
            order = rng.permutation(len(plan))
            for start in range(0, len(order), batch_size):
                if max_rounds is not None and rounds.done >= max_rounds:
                    return rounds.result()
                batch = order[start:start + batch_size]
                batch = batch[rounds.active[batch]]
                if batch.size:
                    rounds.run(batch)
    return rounds.result()


class _Rounds:
    """The state of one group's training between rounds."""

    def __init__(self, container, holders, model_id, plan: Plan, log, times: PhaseTimes):
        self.container = container
        self.holders = holders
        self.model_id = model_id
        self.plan = plan
        self.log = log
        self.times = times
        self.pool: ThreadPoolExecutor | None = None
        self.active = np.ones(len(plan), dtype=bool)
        self.drops: dict[int, str] = {}
        self.mismatches: list[tuple[bytes, str, int]] = []
        self.evidence = EvidenceLog()
        self.withheld: list[Withheld] = []
        self.failed: set[int] = set()
        self.done = 0
        self.checkpoint_id: int | None = None

    def result(self) -> Trained:
        if self.withheld:
            steps = sum(len(w.rows) for w in self.withheld)
            rows = len({r for w in self.withheld for r in w.rows})
            self.log(f"  holders withheld the layer-1 gradient of {steps} row-steps ({rows} rows) over {self.done} "
                     f"rounds: dz isolated them; they trained the layers above and stay trained and billed")
        return Trained(self.active, self.drops, self.mismatches, self.done, self.evidence.all(), self.withheld)

    def run(self, batch: np.ndarray) -> None:
        with self.times.phase("evaluate"):
            z, labels, primary, disagree = self._evaluate(batch)
        self._drop(batch[disagree], "mismatch")
        self._drop(batch[primary < 0], "no_holder_answered", replace=False)
        keep = ~disagree & (primary >= 0)
        while keep.any():
            with self.times.phase("host_step"):
                step = self.container.host_step(z[keep], labels[keep])
                dz = np.asarray(step.dz)
            kept = np.flatnonzero(keep)
            with self.times.phase("gradient"):
                first, lost = self._gradients(batch, kept, primary[kept], dz)
            if lost is None:
                with self.times.phase("update"):
                    self.container.apply_gradients(first, step.main_grads)
                    _ = self.container.submodels  # re-derived now, so the update's cost is counted here
                self.times.rows += int(kept.size)
                self.times.rounds += 1
                break
            # Rows whose layer-1 gradient cannot be had are dropped and the step is formed without them.
            keep[kept[lost]] = False
            self._drop(batch[kept[lost]], "holder_failed")
        self.done += 1

    def _evaluate(self, batch: np.ndarray):
        plan, submodels = self.plan, self.container.submodels
        z = np.zeros((batch.size, len(submodels)), dtype=np.float32)
        labels = np.zeros(batch.size, dtype=np.float32)
        primary = np.full(batch.size, -1, dtype=np.int64)  # the holder whose answer a row is trained from
        disagree = np.zeros(batch.size, dtype=bool)
        asked, answered = [], {}
        for h in range(len(plan.holders)):
            ids = plan.row_ids[h, batch]
            held = np.flatnonzero(ids >= 0)
            if h not in self.failed and held.size:
                asked.append((h, held, partial(self._holder(h).evaluate, self.model_id, ids[held], submodels,
                                                checkpoint_id=self.checkpoint_id)))
        for (h, held, _call), answer in zip(asked, self._ask_all([call for _h, _held, call in asked])):
            name = plan.holders[h]
            if isinstance(answer, ProxyError):
                self.log(f"  round {self.done}: {name} refused or failed ({answer}); its rows go to other holders")
                self.failed.add(h)
                continue
            answered[h] = answer
            z_h, labels_h = answer.z, answer.labels
            new = primary[held] < 0
            z[held[new]], labels[held[new]], primary[held[new]] = z_h[new], labels_h[new], h
            again = held[~new]
            if again.size:
                bad = disagreeing_rows({"primary": z[again], name: z_h[~new]}) | (labels[again] != labels_h[~new])
                disagree[again[bad]] = True
                for p in again[bad]:
                    row_hash = plan.row_hash(int(batch[p]))
                    first = plan.holders[primary[p]]
                    self.mismatches += [(row_hash, name, self.done), (row_hash, first, self.done)]
                    self.evidence.keep(self.done, name, answer)
                    self.evidence.keep(self.done, first, answered[primary[p]])
        return z, labels, primary, disagree

    def _gradients(self, batch: np.ndarray, kept: np.ndarray, owners: np.ndarray, dz: np.ndarray):
        """(summed layer-1 gradient, None), or (None, mask over `kept` of the rows of holders that failed)."""
        holders = np.unique(owners)
        calls: list[Callable[[], Any]] = []
        for h in holders:
            mine = owners == h
            calls.append(partial(self._holder(h).gradient, self.model_id, self.plan.row_ids[h, batch[kept[mine]]],
                                 dz[mine]))
        answers = self._ask_all(calls)
        failed = [int(h) for h, a in zip(holders, answers) if isinstance(a, ProxyError)]
        if failed:
            for h, answer in zip(holders, answers):
                if isinstance(answer, ProxyError):
                    self.log(f"  round {self.done}: gradient from {self.plan.holders[h]} failed ({answer})")
            self.failed.update(failed)
            return None, np.isin(owners, failed)
        weight = np.zeros(self.container.bank.weight.shape, dtype=np.float32)
        bias = np.zeros(self.container.bank.bias.shape, dtype=np.float32)
        for h, answer in zip(holders, answers):  # in holder order: float sums do not commute bit for bit
            weight += np.asarray(answer.weight, dtype=np.float32)
            bias += np.asarray(answer.bias, dtype=np.float32)
            self._note_withheld(int(h), batch[kept[owners == h]], answer.withheld)
        return Dense(jnp.asarray(weight), jnp.asarray(bias)), None

    def _note_withheld(self, h: int, rows: np.ndarray, withheld: Sequence[int]) -> None:
        """Records the plan rows (of `rows`, holder h's share of a step that is applied) whose gradient h withheld."""
        if len(withheld):
            out = rows[np.isin(self.plan.row_ids[h, rows], withheld)]
            self.withheld.append(Withheld(self.done, self.plan.holders[h], tuple(out.tolist())))
            self.times.withheld += int(out.size)

    def _ask_all(self, calls: list[Callable[[], Any]]) -> list[Any]:
        return ask_all(calls, self.pool)

    def _holder(self, h: int):
        return self.holders[self.plan.holders[h]]

    def _drop(self, rows: np.ndarray, reason: str, replace: bool = True) -> None:
        for i in rows.tolist():
            self.active[i] = False
            if replace:
                self.drops[i] = reason
            else:
                self.drops.setdefault(i, reason)


def ask_all(calls: list[Callable[[], Any]], pool: ThreadPoolExecutor | None = None) -> list[Any]:
    """Every call's answer (or the ProxyError it raised), in the order given; on `pool`, several run at once."""
    if len(calls) == 1 or pool is None:
        return [_answer(call) for call in calls]
    return [future.result() for future in [pool.submit(_answer, call) for call in calls]]


def _answer(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ProxyError as e:  # ProxyUnavailable is one too
        return e
