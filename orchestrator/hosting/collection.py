"""Collecting a group's u in pages (projection and ldp modes): bounded requests, every holder at once, pipelined.

  pages       the plan's rows in order, PAGE_ROWS positions a page; for each page every holder is asked for
              the rows of it that it holds (so no request names more than PAGE_ROWS rows), P's rows as sub-models
              with zero biases, naming the checkpoint
  pipelined   each holder is asked by a thread of its own, page after page: its next page is asked while the
              host merges the previous one, and at most AHEAD answered pages wait per holder, so a slow holder
              holds the others back by a bounded window rather than piling their answers up
  merged      page by page in holder order, whatever order the answers arrive in: a row's first answering
              holder in holder order is its primary, a later holder whose u or label differs drops it (the
              mismatch recorded against both, with both signed answers as evidence); a page names the same rows
              for every holder, so a row's fate is decided on its page exactly as one request per holder
              decided it. Once its page is merged a row's u is final
  kept        what the merged page leaves: projection mode writes its rows' u and labels into a RowStore
              (every row is trained on, `epochs` times, in an order over the whole group); ldp mode folds the
              kept rows' release moments into the group's sum (all its training needs) and keeps no row
A holder that refuses ('privacy_check_failed') or fails is not asked again during the group: the rows of that
page and of its later pages that no other holder answered are recorded as `privacy_refused` or
`no_holder_answered` (and dropped before any training); the rows of its pages answered before stay. A mismatch
and its evidence are recorded under the page's index (round 0 when the group fits one page, as before pages).
"""
import os
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from orchestrator.errors import ProxyError
from orchestrator.privacy.denoise import ReleaseMoments, add_moments, empty_moments, release_moments
from orchestrator.privacy.projected import ProjectedContainer, TrainingRows

from .plan import Plan
from .redundancy import disagreeing_rows
from .rounds import EvidenceLog

PageProgress = Callable[[int, int], None]  # (pages merged so far, pages in all)

# Rows a page names: at k = 8 a page's u is 0.5 MB as float32 (1-2 MB as JSON), a fraction of the proxies' body
# limit and a third of schema.MAX_ROWS_PER_REQUEST; 61 requests per holder for a million rows.
PAGE_ROWS = 16_384
AHEAD = 1  # answered pages that may wait per holder while the host merges (plus the one being asked)
PRIVACY_REFUSAL = "privacy_check_failed"  # the protocol's code for a holder's privacy refusal
UNANSWERED = ("", "privacy_refused", "no_holder_answered")  # why no holder answered for a row, by code


class RowStore:
    """The group's u (rows, k) and labels as float32, by plan position: in RAM, or with `directory` in a file
    there (numpy.memmap: u, then the labels, each contiguous so that a batch is a fast gather), unlinked as soon
    as it is mapped, so that nothing is left behind by a crash and the pages are the file system's to evict
    under memory pressure rather than the process's to hold."""

    def __init__(self, rows: int, k: int, directory: str | Path | None = None):
        if directory is None or rows == 0:
            self.u, self.labels = np.zeros((rows, k), np.float32), np.zeros(rows, np.float32)
        else:
            Path(directory).mkdir(parents=True, exist_ok=True)
            path = Path(directory) / f".collected-u.{os.getpid()}.{threading.get_ident()}.f32"
            mapped = np.memmap(path, np.float32, mode="w+", shape=(rows * (k + 1),))
            path.unlink()
            self.u, self.labels = mapped[:rows * k].reshape(rows, k), mapped[rows * k:]

    def add(self, start: int, u: np.ndarray, labels: np.ndarray, active: np.ndarray) -> None:
        self.u[start:start + len(labels)] = u
        self.labels[start:start + len(labels)] = labels

    def prepared(self, container: ProjectedContainer, active: np.ndarray, seed: int) -> TrainingRows:
        return container.prepare(self.u, self.labels, active, seed)


class MomentsSum:
    """ldp mode: the moments of the group's kept releases, summed page by page (denoise.add_moments)."""

    def __init__(self, k: int, classes: int | None):
        self.classes = classes
        self.moments: ReleaseMoments = empty_moments(k, classes)
        self.count = 0

    def add(self, start: int, u: np.ndarray, labels: np.ndarray, active: np.ndarray) -> None:
        if active.any():
            page = release_moments(u[active], labels[active], self.classes)
            self.moments = add_moments(self.moments, page)
            self.count += int(active.sum())

    def prepared(self, container: ProjectedContainer, active: np.ndarray, seed: int) -> TrainingRows:
        return container.prepare_moments(self.moments, self.count, seed)


class Kept(Protocol):
    def add(self, start: int, u: np.ndarray, labels: np.ndarray, active: np.ndarray) -> None: ...

    def prepared(self, container: ProjectedContainer, active: np.ndarray, seed: int) -> TrainingRows: ...


def kept_for(container: ProjectedContainer, rows: int, directory: str | Path | None = None) -> Kept:
    """What a group of `rows` rows keeps of its pages: their rows (projection mode), or their moments (ldp)."""
    if container.trains_on_rows:
        return RowStore(rows, container.k, directory)
    return MomentsSum(container.k, container.classes)


@dataclass
class Collected:
    """What redundancy and refusals made of the group's rows, and what its pages left in `kept`."""

    kept: Any
    primary: np.ndarray  # (rows,) the holder a row's u is taken from; -1: none answered
    disagree: np.ndarray  # (rows,) a later holder's answer differed from the primary's
    unanswered: np.ndarray  # (rows,) int8: why no holder answered for a row, an index into UNANSWERED
    mismatches: list[tuple[bytes, str, int]] = field(default_factory=list)
    evidence: EvidenceLog = field(default_factory=EvidenceLog)

    @property
    def active(self) -> np.ndarray:
        return (self.primary >= 0) & ~self.disagree

    def drops(self) -> dict[int, str]:
        drops = {int(i): "mismatch" for i in np.flatnonzero(self.disagree)}
        for i in np.flatnonzero(self.primary < 0):
            drops[int(i)] = UNANSWERED[self.unanswered[i]]
        return drops


class _Asked(NamedTuple):
    """One holder's share of one page: its positions in the page, and what it answered (or the error)."""

    holder: int
    held: np.ndarray  # positions within the page of the rows it holds
    answer: Any


class _Crashed(NamedTuple):
    """An error other than a holder's refusal or failure, raised in a holder's thread: raised again by the host."""

    error: BaseException


def collect_projections(container: ProjectedContainer, holders: Mapping[str, Any], model_id: int, plan: Plan,
                        log: Callable[[str], None], checkpoint_id: int | None = None, *,
                        page_rows: int = PAGE_ROWS, kept: Kept | None = None,
                        progress: PageProgress | None = None) -> Collected:
    """Every holder's u for the group's rows it holds, page by page (module docstring), into `kept` (by default
    a RowStore in RAM); `progress` is told each page merged."""
    if page_rows < 1:
        raise ValueError(f"a page holds at least one row, not {page_rows}")
    rows = len(plan)
    out = Collected(kept if kept is not None else RowStore(rows, container.k), np.full(rows, -1, np.int64),
                    np.zeros(rows, bool), np.zeros(rows, np.int8))
    starts = range(0, rows, page_rows)

    def held(h: int, start: int) -> np.ndarray:
        return np.flatnonzero(plan.row_ids[h, start:start + page_rows] >= 0)

    asking = [h for h in range(len(plan.holders)) if (plan.row_ids[h] >= 0).any()]
    answers: dict[int, queue.Queue[Any]] = {h: queue.Queue(maxsize=AHEAD) for h in asking}
    stop = threading.Event()

    def ask(h: int) -> None:
        call = holders[plan.holders[h]].evaluate
        for start in starts:
            mine = held(h, start)
            if not mine.size:
                continue
            try:
                answer = _checked(call(model_id, plan.row_ids[h, start + mine], container.submodels,
                                       checkpoint_id=checkpoint_id), plan.holders[h], mine.size, container.k)
            except ProxyError as e:
                answer = e
            except BaseException as e:
                answer = _Crashed(e)
            while not stop.is_set():
                try:
                    answers[h].put(answer, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set() or isinstance(answer, (ProxyError, _Crashed)):
                return  # a holder that refused or failed is not asked again during the group

    failed: dict[int, ProxyError] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(asking)), thread_name_prefix="holder") as pool:
        for h in asking:
            pool.submit(ask, h)
        try:
            for p, start in enumerate(starts):
                page = []
                for h in asking:
                    mine = held(h, start)
                    if mine.size:
                        answer = failed[h] if h in failed else answers[h].get()
                        if isinstance(answer, _Crashed):
                            raise answer.error
                        if isinstance(answer, ProxyError) and h not in failed:
                            failed[h] = answer
                            why = "refused" if answer.code == PRIVACY_REFUSAL else "failed"
                            log(f"  {plan.holders[h]} {why} to send u ({answer}); its rows go to other holders")
                        page.append(_Asked(h, mine, answer))
                _merge(out, plan, p, start, min(page_rows, rows - start), page, container.k)
                if progress is not None:
                    progress(p + 1, len(starts))
        finally:
            stop.set()
    return out


def _checked(answer: Any, holder: str, rows: int, k: int) -> Any:
    """The answer, unless it is not u (rows, k) and labels (rows,): a 'bad_answer' failure of its holder."""
    z, labels = np.shape(answer.z), np.shape(answer.labels)
    if z != (rows, k) or labels != (rows,):
        raise ProxyError(holder, None, "bad_answer",
                         f"u {z} and labels {labels} for {rows} rows, not ({rows}, {k}) and ({rows},)")
    return answer


def _merge(out: Collected, plan: Plan, p: int, start: int, size: int, page: list[_Asked], k: int) -> None:
    """One page's answers, in holder order, into `out` (module docstring: merged, kept)."""
    u = np.zeros((size, k), np.float32)
    labels = np.zeros(size, np.float64)
    primary = np.full(size, -1, np.int64)
    disagree = np.zeros(size, bool)
    unanswered = out.unanswered[start:start + size]
    answered = {}
    for h, held, answer in page:
        name = plan.holders[h]
        if isinstance(answer, ProxyError):
            missing = held[primary[held] < 0]
            code = UNANSWERED.index("privacy_refused" if answer.code == PRIVACY_REFUSAL else "no_holder_answered")
            unanswered[missing] = np.where(unanswered[missing] == 0, code, unanswered[missing])
            continue
        answered[h] = answer
        u_h, labels_h = np.asarray(answer.z), np.asarray(answer.labels, np.float64)
        new = primary[held] < 0
        fresh = held[new]
        u[fresh], labels[fresh], primary[fresh], unanswered[fresh] = u_h[new], labels_h[new], h, 0
        again = held[~new]
        if again.size:
            bad = disagreeing_rows({"primary": u[again], name: u_h[~new]}) | (labels[again] != labels_h[~new])
            disagree[again[bad]] = True
            for i in again[bad].tolist():
                row_hash, first = plan.row_hash(start + i), int(primary[i])
                out.mismatches += [(row_hash, name, p), (row_hash, plan.holders[first], p)]
                out.evidence.keep(p, name, answer)
                out.evidence.keep(p, plan.holders[first], answered[first])
    out.primary[start:start + size], out.disagree[start:start + size] = primary, disagree
    # float32 labels, as the one-request collection held them (compared above in float64: a regression target
    # rounded to float32 would differ from every other holder's float64 copy of it)
    out.kept.add(start, u, labels.astype(np.float32), (primary >= 0) & ~disagree)
