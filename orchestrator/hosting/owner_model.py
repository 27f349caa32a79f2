"""`splitledger owner fetch-model` and `owner verify`: the owner gets a checkpoint's model out and checks it.

fetch-model  asks the hosting node (`host serve`) for a closed checkpoint's artifact with a request signed by the
             owner's key, rebuilds the canonical weights hash from the ONNX initializers and from the model file,
             refuses both unless they equal the checkpoint's weightsHashAfter on chain, then writes
             checkpoint-N.onnx and checkpoint-N.model.json.
verify       evaluates an ONNX artifact with onnxruntime (orchestrator/artifact/onnx_eval.py, no JAX) on the test
             set the owner registered and compares the accuracy with the checkpoint's accuracyAfter on chain,
             for settled and rolled-back checkpoints alike. The ONNX weights, the field table, the test set and
             (for a regression's tolerance) the model file must be the ones the chain committed to, so the figure
             measured is the one the chain's figure claims. For a verified model the checkpoint's accuracy
             proofs are checked on the owner's test rows (owner_proofs.py: from the close's calldata, or a
             proofs folder with `--proofs`), and the chain's figure is compared with the proven one instead, the
             fixed-point circuit's, which is what a verified model's checkpoints record (docs/zk.md); the float
             figure is reported beside it.
Any disagreement is an ArtifactError naming both sides (AccuracyMismatch: both figures).
"""
import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.artifact.onnx_eval import ClassTargets, Evaluation, RegressionTargets, evaluate
from orchestrator.auth.messages import ArtifactRequest, Domain
from orchestrator.auth.signing import Authorization
from orchestrator.chain.client import MarketClient
from orchestrator.container.canonical_weights import weights_hash
from orchestrator.container.fields import ColumnMapping, FieldTable, Label, NormalisedRows, normalise_columns
from orchestrator.container.modelfile import parse_model_json, to_network
from orchestrator.container.onnx_export import onnx_weights_hash
from orchestrator.errors import AccuracyMismatch, ArtifactError, SplitLedgerError
from orchestrator.hashing.keccak import keccak256
from orchestrator.proxy.tls import client_context

from .artifact_service import artifact_route
from .artifacts import CheckpointArtifact, model_path, onnx_path, write_artifact
from .owner_proofs import ProvenAccuracy

CLOSED = ("settled", "rolled_back")
# a verified model's proof check, given the owner's test rows as the field table normalises them
ProofCheck = Callable[[NormalisedRows], ProvenAccuracy]
REQUEST_TTL = 120


@dataclass(frozen=True)
class FetchedModel:
    checkpoint_id: int
    state: str  # settled or rolled_back
    weights_hash: bytes
    onnx_file: Path
    model_file: Path


@dataclass(frozen=True)
class Verification:
    checkpoint_id: int
    state: str
    evaluation: Evaluation
    on_chain_ppm: int
    proven: ProvenAccuracy | None = None  # what the checkpoint's accuracy proofs prove, when they were checked


def artifact_authorization(account: LocalAccount, domain: Domain, model_id: int, checkpoint_id: int, *,
                           ttl: int = REQUEST_TTL, clock: Callable[[], float] = time.time) -> Authorization:
    nonce, expiry = secrets.token_bytes(32), int(clock()) + ttl
    message = ArtifactRequest(model_id, checkpoint_id, nonce, expiry)
    return Authorization(nonce, expiry, bytes(Account.sign_message(message.signable(domain), account.key).signature))


def latest_settled_checkpoint(chain: MarketClient, model_id: int) -> int:
    logs = chain.market.events.CheckpointSettled.get_logs(from_block=chain.deployment.market_deploy_block,
                                                           argument_filters={"modelId": model_id})
    if not logs:
        raise ArtifactError(f"model {model_id} has no settled checkpoint yet (give --checkpoint for a rolled-back one)")
    return max(log["args"]["checkpointId"] for log in logs)


def closed_checkpoint(chain: MarketClient, model_id: int, checkpoint_id: int) -> dict:
    """The checkpoint as the chain records it, refused unless it is this model's and closed."""
    try:
        checkpoint = chain.checkpoint(checkpoint_id)
    except Exception as e:  # the market reverts UnknownCheckpoint; web3 raises it as one of several types
        raise ArtifactError(f"checkpoint {checkpoint_id} cannot be read from the chain: {e}") from None
    if checkpoint["modelId"] != model_id:
        raise ArtifactError(f"checkpoint {checkpoint_id} belongs to model {checkpoint['modelId']}, not {model_id}")
    if checkpoint["state"] not in CLOSED:
        raise ArtifactError(f"checkpoint {checkpoint_id} is {checkpoint['state']}: only a settled or rolled-back "
                            f"checkpoint has an artifact")
    return checkpoint


def request_artifact(host_url: str, auth: Authorization, model_id: int, checkpoint_id: int, *,
                     ca_bundle: str | None = None, timeout: float = 60.0) -> CheckpointArtifact:
    verify = client_context(ca_bundle) if host_url.startswith("https://") else True
    url = host_url.rstrip("/") + artifact_route(model_id, checkpoint_id)
    try:
        answer = httpx.get(url, headers=auth.headers(), timeout=timeout, verify=verify)
    except httpx.HTTPError as e:
        raise ArtifactError(f"cannot reach the hosting node at {host_url}: {e}") from None
    if answer.status_code != 200:
        try:
            refusal = answer.json()
            shown = f"{refusal['error']}: {refusal['detail']}"
        except (ValueError, KeyError, TypeError):
            shown = answer.text[:200]
        raise ArtifactError(f"the hosting node refused the artifact ({answer.status_code}) {shown}")
    try:
        body = answer.json()
        return CheckpointArtifact(checkpoint_id, base64.b64decode(body["onnx"], validate=True),
                                  base64.b64decode(body["modelFile"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise ArtifactError(f"the hosting node's answer is not an artifact document: {e}") from None


def check_weights(artifact: CheckpointArtifact, committed: bytes) -> bytes:
    """Refuses an artifact whose ONNX or model file weights do not hash to `committed` (weightsHashAfter)."""
    committed = bytes(committed)
    from_onnx = onnx_weights_hash(artifact.onnx)
    if from_onnx != committed:
        raise ArtifactError(f"checkpoint {artifact.checkpoint_id}: the ONNX weights hash to 0x{from_onnx.hex()}, "
                            f"but the chain committed weightsHashAfter 0x{committed.hex()}")
    try:
        from_model = weights_hash(to_network(parse_model_json(artifact.model_file)))
    except SplitLedgerError as e:
        raise ArtifactError(f"checkpoint {artifact.checkpoint_id}: the model file is not valid: {e}") from None
    if from_model != committed:
        raise ArtifactError(f"checkpoint {artifact.checkpoint_id}: the model file's weights hash to "
                            f"0x{from_model.hex()}, but the chain committed weightsHashAfter 0x{committed.hex()}")
    return committed


def fetch_model(chain: MarketClient, host_url: str, model_id: int, checkpoint_id: int | None, out_dir: str | Path, *,
                ca_bundle: str | None = None) -> FetchedModel:
    if checkpoint_id is None:
        checkpoint_id = latest_settled_checkpoint(chain, model_id)
    checkpoint = closed_checkpoint(chain, model_id, checkpoint_id)
    auth = artifact_authorization(chain.signer, chain.domain(), model_id, checkpoint_id)
    artifact = request_artifact(host_url, auth, model_id, checkpoint_id, ca_bundle=ca_bundle)
    committed = check_weights(artifact, checkpoint["weightsHashAfter"])
    write_artifact(out_dir, artifact)
    return FetchedModel(checkpoint_id, checkpoint["state"], committed, onnx_path(out_dir, checkpoint_id),
                        model_path(out_dir, checkpoint_id))


def verify_checkpoint(chain: MarketClient, model_id: int, checkpoint_id: int, onnx_bytes: bytes, table_bytes: bytes,
                      test_bytes: bytes, model_bytes: bytes | None = None,
                      proofs: ProofCheck | None = None) -> Verification:
    """Checks the artifact against the checkpoint on chain (module docstring). `proofs`, for a verified model,
    checks the checkpoint's accuracy proofs on the owner's normalised test rows (owner_proofs.py), once the
    field table and test set are known to be the registered ones; its figure is then the one compared."""
    checkpoint = closed_checkpoint(chain, model_id, checkpoint_id)
    registered = chain.model(model_id)
    from_onnx, committed = onnx_weights_hash(onnx_bytes), bytes(checkpoint["weightsHashAfter"])
    if from_onnx != committed:
        raise ArtifactError(f"this ONNX file is not checkpoint {checkpoint_id}'s model: its weights hash to "
                            f"0x{from_onnx.hex()}, the chain committed weightsHashAfter 0x{committed.hex()}")
    table = FieldTable.from_json(table_bytes)
    _same("field table", table.commitment(), registered["fieldTableHash"])
    _same("test set", keccak256(test_bytes), registered["testSetHash"])
    columns = _columns(test_bytes)
    rows = normalise_columns(table, ColumnMapping.identity(table), columns)  # refuses bad values by row and field
    targets: ClassTargets | RegressionTargets
    if isinstance(table.output.operator, Label):
        targets = ClassTargets(tuple(columns[table.output.name]))
    else:
        if model_bytes is None:
            raise ArtifactError("a regression's hits depend on the task's tolerance: give the model file you "
                                "registered (--model)")
        _same("model file", keccak256(model_bytes), registered["modelHash"])
        tolerance = parse_model_json(model_bytes).task.tolerance
        if tolerance is None:  # Task refuses a regression without one at construction; this narrows the type
            raise ArtifactError("the model file's regression task has no tolerance")
        targets = RegressionTargets(rows.labels, tolerance)
    proven = proofs(rows) if proofs is not None else None
    evaluation = evaluate(onnx_bytes, columns, targets)
    if proven is not None:
        if proven.accuracy_ppm != checkpoint["accuracyAfter"]:
            raise AccuracyMismatch(checkpoint_id, proven.accuracy_ppm, checkpoint["accuracyAfter"],
                                   f" ({proven.correct} of {proven.rows} rows)", measured_by="its proofs prove")
    elif evaluation.accuracy_ppm != checkpoint["accuracyAfter"]:
        raise AccuracyMismatch(checkpoint_id, evaluation.accuracy_ppm, checkpoint["accuracyAfter"],
                               f" ({evaluation.hits} of {evaluation.rows} rows)")
    return Verification(checkpoint_id, checkpoint["state"], evaluation, checkpoint["accuracyAfter"], proven)


def _same(what: str, found: bytes, registered: bytes) -> None:
    if found != bytes(registered):
        raise ArtifactError(f"the {what} given hashes to 0x{found.hex()}, but the model registered "
                            f"0x{bytes(registered).hex()}: verify against the files the chain committed to")


def _columns(data: bytes) -> dict[str, list]:
    try:
        columns = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"the test set is not JSON: {e}") from None
    if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
        raise ArtifactError("the test set is a JSON object of columns, {standard name: [values]}")
    return columns
