"""The five-model attack of issue 9, as an attacker would run it: it registers five models on chain (anyone may)
and hosts them itself, so every request it signs is one the proxy must admit; each model's projection is a slice
of one orthonormal basis of R^30 that passes its own review. Against a real proxy process over HTTP, the
holder's one budget per row across every model stops it before any input is reconstructed beyond the
threshold, and leaves the stored rows as they were."""
import numpy as np
import pytest
from adversaries import HOLDER_ROWS, host_attack, orthonormal_slices, requests_of
from proxy_builders import PRICE, SOURCE_A_KEY, source_mapping, source_rows

from orchestrator.privacy.attack import Forward
from orchestrator.privacy.policy import DEFAULT_THRESHOLD
from orchestrator.proxy.server import proxy_process


@pytest.fixture(scope="module")
def slices(table, columns):
    return orthonormal_slices(table, columns)


def test_five_self_hosted_slice_models_cannot_rebuild_the_rows_over_http(slices, table, columns, onchain,
                                                                         proxy_options, tmp_path):
    models = [onchain.register(table, policy) for policy in slices]  # hosted by onchain.host: the attacker
    args, env = proxy_options()
    with proxy_process(str(tmp_path / "proxy.sqlite"), args=args, env=env, signer=onchain.host_signer) as proxy:
        ids = list(proxy.upload(onchain.signer(SOURCE_A_KEY), PRICE, source_mapping(columns),
                                source_rows(columns, HOLDER_ROWS), ["Patient"]).row_ids)
        position = {row: i for i, row in enumerate(ids)}
        declined, forwards = [], []
        for model_id, policy in zip(models, slices):
            answer = proxy.quote(model_id, PRICE, table, ids, policy)
            declined.append({d.reason for d in answer.declined})
            sold = [a.row_id for a in answer.accepted]
            if sold:
                u = proxy.evaluate(model_id, sold, requests_of(policy)).z
                forwards.append(Forward(np.asarray([position[r] for r in sold]), policy.matrix,
                                        np.asarray(u, np.float64)))
        assert proxy.health() == len(HOLDER_ROWS)
    assert any("privacy_budget" in reasons for reasons in declined[1:])
    assert host_attack(forwards, table, columns).max() <= DEFAULT_THRESHOLD
