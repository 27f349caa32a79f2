"""ldp mode at a holder: each quoted row's one release per model (docs/privacy.md, "The holder's side of ldp
mode").

A row's release for a model is fixed: its noise and randomized response come from a PRF (privacy/ldp.py,
`release_seeds`) keyed with its source's row-hash key, so that the source's proxies agree on it, or, for a
source that gave no key, with the holder's own secret (store table `holder_secret`), which no other proxy
shares. The PRF's input names the row by its row hash, which is the same at each of its source's proxies.
"""
from collections.abc import Mapping, Sequence

import numpy as np

from orchestrator.container.fields import FieldTable, Label
from orchestrator.errors import PolicyError
from orchestrator.privacy.ldp import keyed_release, release_seeds
from orchestrator.privacy.policy import PrivacyPolicy

from .quoted import QuotedRows


def release_classes(policy: PrivacyPolicy, table: FieldTable) -> int | None:
    """For an ldp policy, the number of classes its randomized response answers among (the table's label
    categories); None in other modes or where the label goes in the clear. Refuses (PolicyError, with the
    reason) an ldp policy whose parameters do not give its claimed epsilon, or that asks randomized response
    of a numeric label: randomized response is defined over classes, so under ldp a numeric (regression)
    label is released in the clear (label_epsilon None) or not at all."""
    if policy.mode != "ldp":
        return None
    settings = policy.ldp_settings
    problems = settings.problems()  # PrivacyPolicy refuses these when it is made; the holder checks its own
    if problems:
        raise PolicyError(f"ldp policy refused: {'; '.join(problems)}")
    if settings.label_epsilon is None:
        return None
    operator = table.output.operator
    if not isinstance(operator, Label):
        raise PolicyError(f"ldp mode: randomized response needs a class label, but {table.output.name!r} is "
                          f"numeric; an ldp policy over a numeric label must release it in the clear "
                          f"(label_epsilon null)")
    if len(operator.categories) < 2:
        raise PolicyError(f"ldp mode: randomized response needs two or more classes, {table.output.name!r} has "
                          f"{len(operator.categories)}")
    return len(operator.categories)


def release_keys(sources: Sequence[str], hash_keys: Mapping[str, bytes | None], secret: bytes) -> list[bytes]:
    """Each row's release key: its source's row-hash key, or the holder's own `secret` for a keyless source."""
    return [hash_keys.get(source) or secret for source in sources]


def released_rows(model_id: int, policy: PrivacyPolicy, classes: int | None, ids: np.ndarray, u: np.ndarray,
                  labels: np.ndarray, hashes: Sequence[bytes], keys: Sequence[bytes]) -> QuotedRows:
    """What the holder answers for these rows under the model's ldp policy, as quoted rows: `x` the released
    u (float32, the precision sub-model outputs cross the wire in), `labels` the released labels."""
    seeds = release_seeds(keys, model_id, hashes)
    values, answered = keyed_release(u, labels, classes, policy.ldp_settings.release, seeds)
    return QuotedRows.of(ids, values, answered)
