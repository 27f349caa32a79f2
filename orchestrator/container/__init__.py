"""The training container (claims 1-3): model file, split, exact split training, history set, field table,
detection model and backup points. Pure Python/JAX; no chain or network code. See docs/container.md.

The names below are imported from their modules on first use, so that `orchestrator.container.fields` (no JAX)
does not bring in the training code. Row hashes, keccak and Merkle trees live in orchestrator.hashing."""
from typing import TYPE_CHECKING

from orchestrator.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "backup": ("BackupPoint", "Outcome", "keeps", "resolve", "take_backup"),
    "container": ("TrainingContainer", "create_container"),
    "detection": ("DetectionModel",),
    "fields": ("ColumnMapping", "FieldSpec", "FieldTable", "Identity", "Label", "Log1pZScore", "MinMax",
               "NormalisedRows", "OneHot", "ZScore", "fit_table", "normalise_columns", "normalise_rows",
               "standard_name"),
    "history": ("Anchor", "HistorySet"),
    "modelfile": ("ModelFile", "OptimizerSpec", "dump_model", "load_model_file", "parse_model", "parse_model_json",
                  "to_network", "with_network"),
    "network": ("MLP", "Dense", "MainModel", "build_mlp", "logits", "predict"),
    "onnx_import": ("OnnxImport", "convert_onnx", "import_onnx"),
    "split": ("SubModel", "SubModelBank", "bank_from_submodels", "derive_bank", "evaluate", "join", "submodels"),
    "table_task": ("task_from_table",),
    "task": ("Task", "ppm_from_counts", "ppm_from_fraction"),
    "training": ("HostStep", "apply_update", "assemble_gradients", "centralized_step", "host_step", "host_update",
                 "init_optimizer", "source_gradients", "source_outputs", "split_step"),
})

if TYPE_CHECKING:  # the same names, for the type checker only (it cannot follow __getattr__)
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
    from .history import Anchor, HistorySet
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
    from .split import SubModel, SubModelBank, bank_from_submodels, derive_bank, evaluate, join, submodels
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
