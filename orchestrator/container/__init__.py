"""The training container (claims 1-3): model file, split, exact split training, history set, field table,
detection model and backup points. Pure Python/JAX; no chain or network code. See docs/container.md."""
from .backup import BackupPoint, Outcome, keeps, resolve, take_backup
from .container import TrainingContainer, create_container
from .detection import DetectionModel
from .fields import (
    ColumnMapping,
    FieldSpec,
    FieldTable,
    Identity,
    Label,
    Log1pZScore,
    MinMax,
    NormalisedRows,
    OneHot,
    ZScore,
    fit_table,
    normalise_columns,
    normalise_rows,
    standard_name,
)
from .keccak import keccak256
from .history import Anchor, HistorySet, row_hash, row_hashes
from .merkle import MerkleTree, merkle_proof, merkle_root, payout_leaf, process_proof, standard_leaf, verify
from .modelfile import (
    ModelFile,
    OptimizerSpec,
    dump_model,
    load_model_file,
    parse_model,
    parse_model_json,
    to_network,
    with_network,
)
from .network import MLP, Dense, MainModel, build_mlp, logits, predict
from .onnx_import import OnnxImport, convert_onnx, import_onnx
from .split import SubModel, SubModelBank, bank_from_submodels, derive_bank, evaluate, join, split, submodels
from .table_task import task_from_table
from .task import Task, ppm_from_counts, ppm_from_fraction
from .training import (
    HostStep,
    apply_update,
    assemble_gradients,
    centralized_step,
    host_step,
    host_update,
    init_optimizer,
    source_gradients,
    source_outputs,
    split_step,
)
