"""`host serve` hands a checkpoint's artifact to the model's owner only: signed, fresh, once per nonce."""
import httpx
import pytest
from eth_account import Account

from orchestrator.auth.signing import Authorization
from orchestrator.chain.client import MarketClient
from orchestrator.errors import ArtifactError
from orchestrator.hosting.artifact_gate import OwnerGate
from orchestrator.hosting.artifact_service import artifact_route, create_app
from orchestrator.hosting.artifacts import CheckpointArtifact, write_artifact
from orchestrator.hosting.nonces import NonceStore
from orchestrator.hosting.owner_model import artifact_authorization, request_artifact
from orchestrator.hosting.registration import register
from orchestrator.proxy.server import running

ARTIFACT = b"\x08\x09onnx bytes", b'{"format":"splitledger-mlp"}'


def open_checkpoint(host, model_id):
    """A checkpoint of the model on chain (what it trains does not matter to the service)."""
    checkpoint_id, _ = host.open_checkpoint(model_id, 1, host.model(model_id)["weightsHash"], host.model(model_id)["bestAccuracy"])
    return checkpoint_id


@pytest.fixture
def served(market_model, deployed, w3, tmp_path):
    """(url, model id, checkpoint id, owner client): a serving host with one checkpoint's artifact written."""
    model_id, owner, host = market_model
    checkpoint_id = open_checkpoint(host, model_id)
    write_artifact(tmp_path / "artifacts", CheckpointArtifact(checkpoint_id, *ARTIFACT))
    gate = OwnerGate(MarketClient(w3, deployed[2]), NonceStore(tmp_path / "host.sqlite"))
    with running(create_app(tmp_path / "artifacts", gate)) as url:
        yield url, model_id, checkpoint_id, owner


def get(url, model_id, checkpoint_id, auth: Authorization | None):
    return httpx.get(url + artifact_route(model_id, checkpoint_id), headers=auth.headers() if auth else {})


def test_the_owner_gets_the_exact_bytes_the_node_wrote(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(owner.account, owner.domain(), model_id, checkpoint_id)
    artifact = request_artifact(url, auth, model_id, checkpoint_id)
    assert (artifact.onnx, artifact.model_file) == ARTIFACT


def test_a_signer_who_is_not_the_models_owner_is_refused(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(Account.create(), owner.domain(), model_id, checkpoint_id)
    answer = get(url, model_id, checkpoint_id, auth)
    assert answer.status_code == 403 and answer.json()["error"] == "not_owner"


def test_the_hosting_node_itself_is_not_the_owner(served, market_model):
    url, model_id, checkpoint_id, owner = served
    host = market_model[2]
    answer = get(url, model_id, checkpoint_id, artifact_authorization(host.account, owner.domain(), model_id,
                                                                      checkpoint_id))
    assert answer.status_code == 403


def test_a_replayed_request_is_refused(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(owner.account, owner.domain(), model_id, checkpoint_id)
    assert get(url, model_id, checkpoint_id, auth).status_code == 200
    again = get(url, model_id, checkpoint_id, auth)
    assert again.status_code == 409 and again.json()["error"] == "replayed"


def test_an_unsigned_request_is_refused(served):
    url, model_id, checkpoint_id, _owner = served
    answer = get(url, model_id, checkpoint_id, None)
    assert answer.status_code == 401 and answer.json()["error"] == "unsigned"


def test_an_expired_request_is_refused(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(owner.account, owner.domain(), model_id, checkpoint_id, ttl=-1)
    answer = get(url, model_id, checkpoint_id, auth)
    assert answer.status_code == 401 and answer.json()["error"] == "expired"


def test_a_request_living_longer_than_the_bound_is_refused(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(owner.account, owner.domain(), model_id, checkpoint_id, ttl=3600)
    answer = get(url, model_id, checkpoint_id, auth)
    assert answer.status_code == 401 and answer.json()["error"] == "expiry_too_far"


def test_a_signature_for_another_checkpoint_does_not_fetch_this_one(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(owner.account, owner.domain(), model_id, checkpoint_id + 1)
    answer = get(url, model_id, checkpoint_id, auth)
    assert answer.status_code == 403  # it recovers to some other address, not the owner


def test_a_checkpoint_of_another_model_is_not_found(served, market_model, package):
    url, _model_id, checkpoint_id, owner = served
    other_id, _terms, _ = register(owner, market_model[2].address, package)
    auth = artifact_authorization(owner.account, owner.domain(), other_id, checkpoint_id)
    answer = get(url, other_id, checkpoint_id, auth)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_checkpoint"


def test_a_checkpoint_that_does_not_exist_is_not_found(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(owner.account, owner.domain(), model_id, checkpoint_id + 50)
    answer = get(url, model_id, checkpoint_id + 50, auth)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_checkpoint"


def test_a_checkpoint_without_an_artifact_is_not_found(served, tmp_path):
    url, model_id, checkpoint_id, owner = served
    (tmp_path / "artifacts" / f"checkpoint-{checkpoint_id}.onnx").unlink()
    auth = artifact_authorization(owner.account, owner.domain(), model_id, checkpoint_id)
    answer = get(url, model_id, checkpoint_id, auth)
    assert answer.status_code == 404 and answer.json()["error"] == "no_artifact"


def test_the_owners_client_reports_a_refusal_with_its_code(served):
    url, model_id, checkpoint_id, owner = served
    auth = artifact_authorization(Account.create(), owner.domain(), model_id, checkpoint_id)
    with pytest.raises(ArtifactError, match=r"403.*not_owner"):
        request_artifact(url, auth, model_id, checkpoint_id)
