"""The model artifact of every closed checkpoint: what the group reached, as the owner would deploy it.

After a checkpoint is settled or rolled back the hosting node writes the weights the group trained to (for a
rollback: the ones it discarded, so the owner can check the accuracy it was rolled back with) as
`checkpoint-N.onnx` (orchestrator/container/onnx_export.py: the full network over the raw inputs) and
`checkpoint-N.model.json` (the model file, modelfile.dump_model) in the artifacts directory. The ONNX
initializers hash to the canonical weights hash the checkpoint commits on chain (weightsHashAfter).

Files are written under a temporary name and renamed, so a reader (`host serve`) never sees half a file, and
writing the same checkpoint again gives the same bytes, so a node that crashed around a close and closes the
group again after a restart leaves the same artifact.
"""
import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.container.fields import FieldTable
from orchestrator.container.modelfile import ModelFile, dump_model, with_network
from orchestrator.container.network import MLP
from orchestrator.container.onnx_export import export_onnx


@dataclass(frozen=True)
class CheckpointArtifact:
    checkpoint_id: int
    onnx: bytes
    model_file: bytes


def default_artifacts_dir(db: str | Path) -> Path:
    """Beside the state file: host.sqlite -> host.artifacts/."""
    return Path(db).with_suffix(".artifacts")


def build_artifact(checkpoint_id: int, model: ModelFile, table: FieldTable, network: MLP) -> CheckpointArtifact:
    return CheckpointArtifact(checkpoint_id, export_onnx(model, table, network),
                              dump_model(with_network(model, network)))


def onnx_path(directory: str | Path, checkpoint_id: int) -> Path:
    return Path(directory) / f"checkpoint-{checkpoint_id}.onnx"


def model_path(directory: str | Path, checkpoint_id: int) -> Path:
    return Path(directory) / f"checkpoint-{checkpoint_id}.model.json"


def write_artifact(directory: str | Path, artifact: CheckpointArtifact) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    # the ONNX file last: its presence is what says "this checkpoint has an artifact" (read_artifact)
    _write_atomically(model_path(directory, artifact.checkpoint_id), artifact.model_file)
    _write_atomically(onnx_path(directory, artifact.checkpoint_id), artifact.onnx)


def read_artifact(directory: str | Path, checkpoint_id: int) -> CheckpointArtifact | None:
    """The artifact written for this checkpoint, or None when there is none."""
    onnx_file, model_file = onnx_path(directory, checkpoint_id), model_path(directory, checkpoint_id)
    if not onnx_file.is_file() or not model_file.is_file():
        return None
    return CheckpointArtifact(checkpoint_id, onnx_file.read_bytes(), model_file.read_bytes())


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
