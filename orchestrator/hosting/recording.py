"""The hosting node's view of the rows, recorded at the wire: what an honest-but-curious host keeps.

`RecordingHolder` wraps any RowHolder and passes every request through unchanged, keeping what crossed: each
evaluate (the sub-models sent, the outputs and labels that came back) and each gradient (the dz sent, the
layer-1 gradients that came back), refusals included. `host_view` turns a recording into the attack's
`HostView` (privacy/attack.py), so the reconstruction attack runs on exactly what the integrated system
revealed: tests/hosting/test_attack_on_recorded_view.py.
"""
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from orchestrator.container.fields import FieldTable
from orchestrator.container.split import SubModel, bank_from_submodels
from orchestrator.errors import ProxyError
from orchestrator.privacy.attack import Backward, Forward, HostView
from orchestrator.privacy.policy import PrivacyPolicy

NOTHING_SENT = (np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0), bool))  # before the first evaluate


@dataclass(frozen=True)
class Exchange:
    """One request to a holder and its answer, as the host saw them; matrices in neuron order."""

    holder: str
    kind: str  # "evaluate" or "gradient"
    row_ids: np.ndarray  # (B,) the holder's row ids
    weights: np.ndarray  # (H, n) the sub-models in force (evaluate: sent; gradient: of the last evaluate)
    biases: np.ndarray  # (H,)
    mask: np.ndarray  # (H, n) bool: the connections the sub-models hold
    z: np.ndarray | None = None  # evaluate: (B, H) outputs
    labels: np.ndarray | None = None  # evaluate: (B,)
    dz: np.ndarray | None = None  # gradient: (B, H) sent, zero on the rows the holder withheld
    weight_grad: np.ndarray | None = None  # gradient: (H, n) received
    refused: str | None = None  # the holder's error code when it refused or failed


@dataclass
class Recording:
    inputs: tuple[str, ...]
    exchanges: list[Exchange] = field(default_factory=list)

    def of(self, kind: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == kind]


class RecordingHolder:
    """A RowHolder that records every evaluate and gradient exchange into a shared `Recording`."""

    def __init__(self, holder, recording: Recording):
        self._holder = holder
        self._recording = recording
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # weights, biases, mask in force

    @property
    def name(self) -> str:
        return self._holder.name

    @property
    def url(self) -> str:
        return self._holder.url

    def listings(self, after: int = 0, limit: int = 1000):
        return self._holder.listings(after, limit)

    def quote(self, model_id: int, price_per_row: int, field_table: FieldTable, row_ids: Sequence[int],
              policy: PrivacyPolicy):
        return self._holder.quote(model_id, price_per_row, field_table, row_ids, policy)

    def evaluate(self, model_id: int, row_ids: Sequence[int], submodels: Sequence[SubModel], *,
                 checkpoint_id: int | None = None):
        bank = bank_from_submodels(submodels, self._recording.inputs)
        sent = (np.asarray(bank.weight, np.float64), np.asarray(bank.bias, np.float64), np.asarray(bank.mask))
        ids = np.asarray(row_ids, np.int64)
        neuron_order = np.argsort([s.neuron for s in submodels])
        answer = self._record(lambda: self._holder.evaluate(model_id, row_ids, submodels, checkpoint_id=checkpoint_id),
                              lambda out: dict(z=np.asarray(out.z, np.float64)[:, neuron_order],
                                               labels=np.asarray(out.labels, np.float64)),
                              "evaluate", ids, sent)
        self._last = sent
        return answer

    def gradient(self, model_id: int, row_ids: Sequence[int], dz: np.ndarray):
        sent = self._last or NOTHING_SENT
        # The dz the answer is a gradient of: the rows the holder withheld count as zero (the host knows which).
        return self._record(lambda: self._holder.gradient(model_id, row_ids, dz),
                            lambda out: dict(dz=np.where(np.isin(row_ids, out.withheld)[:, None], 0.0,
                                                         np.asarray(dz, np.float64)),
                                             weight_grad=np.asarray(out.weight, np.float64)),
                            "gradient", np.asarray(row_ids, np.int64), sent)

    def _record(self, call: Callable, answered: Callable, kind: str, ids: np.ndarray, sent: tuple):
        weights, biases, mask = sent
        try:
            out = call()
        except ProxyError as e:
            self._recording.exchanges.append(Exchange(self.name, kind, ids, weights, biases, mask, refused=e.code))
            raise
        self._recording.exchanges.append(Exchange(self.name, kind, ids, weights, biases, mask, **answered(out)))
        return out


def host_view(recording: Recording, row_index: Mapping[str, Callable[[np.ndarray], np.ndarray]],
              n_rows: int) -> HostView:
    """The attack's view of a recording: rows as indices into the data set (`row_index[holder](row ids)`),
    outputs less the biases the host chose, each gradient paired with its holder's evaluate of the same rows."""
    forwards, backwards = [], []
    labels = np.zeros(n_rows)
    last: dict[str, tuple[Exchange, dict[int, int]]] = {}
    for e in recording.exchanges:
        if e.refused is not None:
            continue
        rows = row_index[e.holder](e.row_ids)
        if e.kind == "evaluate":
            forwards.append(Forward(rows, e.weights, _answered(e.z, e) - e.biases))
            labels[rows] = _answered(e.labels, e)
            last[e.holder] = (e, {int(r): k for k, r in enumerate(e.row_ids)})
        else:
            evaluated, position = last[e.holder]
            at = [position[int(r)] for r in e.row_ids]
            backwards.append(Backward(rows, e.weights, _answered(evaluated.z, evaluated)[at] - e.biases,
                                      _answered(e.dz, e), _answered(e.weight_grad, e), e.mask))
    return HostView(n_rows, len(recording.inputs), tuple(forwards), tuple(backwards), labels)


def _answered(value: np.ndarray | None, exchange: Exchange) -> np.ndarray:
    """A field of an answered exchange: RecordingHolder fills every field of its kind; this narrows the type."""
    if value is None:
        raise ValueError(f"a {exchange.kind} exchange with {exchange.holder} was recorded without its answer")
    return value
