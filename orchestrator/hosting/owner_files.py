"""`splitledger owner fit-table` and `owner import-onnx`: the owner's files, made without a chain or a key;
and `owner register --model net.onnx`, which imports the graph the same way before registering.

An imported model is registered as the model file it becomes: the market stores keccak-256 of that file's
bytes, and register writes those very bytes (--model-out, default: the .onnx path with a .json suffix),
which the hosting node is given (host run --model). The hosting node is never given the ONNX graph itself:
the bytes it trains must be the registered ones, not a re-import that depends on options such as the
optimiser.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.container.fields import OPERATORS, FieldTable, fit_table
from orchestrator.container.optimizers import OPTIMIZERS
from orchestrator.errors import SplitLedgerError, UsageError

if TYPE_CHECKING:  # the model file's code loads JAX (and ONNX to import a graph): only the commands that make one do
    from orchestrator.container.modelfile import ModelFile, OptimizerSpec

COMMANDS = ("fit-table", "import-onnx")
ONNX_SUFFIX = ".onnx"


def add_commands(commands) -> None:
    """Registers fit-table and import-onnx on the owner's subcommand parsers."""
    fit = commands.add_parser("fit-table", help="fit a standard field table on reference rows (no chain needed)")
    fit.add_argument("--data", required=True, type=Path,
                     help="reference rows under standard names: a JSON object of columns, or a JSON list of rows")
    fit.add_argument("--output", required=True, metavar="NAME", help="the output field (what the model predicts)")
    fit.add_argument("--output-operator", default="label", choices=sorted(OPERATORS),
                     help="the output field's operator: label for classes (default), a numeric one for regression")
    fit.add_argument("--input", action="append", metavar="NAME[=OPERATOR]",
                     help="an input field, in model order; repeat (default: every other column, in the data's order)")
    fit.add_argument("--operator", default="z-score", choices=sorted(OPERATORS),
                     help="operator of the inputs that name none (default: %(default)s)")
    fit.add_argument("--meaning", action="append", metavar="NAME=TEXT",
                     help="what a field means, so sources can map their columns to it; repeat, one per field")
    fit.add_argument("--meanings", type=Path, metavar="FILE", help="the meanings as a JSON object {name: text}")
    fit.add_argument("--out", required=True, type=Path, help="where to write the field table (JSON)")

    imp = commands.add_parser("import-onnx", help="turn an ONNX MLP into a model file (no chain needed)")
    imp.add_argument("--onnx", required=True, type=Path, help="the ONNX graph (torch.onnx, skl2onnx, tf2onnx, ...)")
    imp.add_argument("--fields", required=True, type=Path,
                     help="the field table: its model inputs name the graph's input columns, its output the task")
    imp.add_argument("--out", required=True, type=Path, help="where to write the model file (JSON)")
    _import_options(imp)


def add_register_arguments(register: argparse.ArgumentParser) -> None:
    """The options `owner register --model net.onnx` imports the graph with."""
    register.add_argument("--model-out", type=Path, metavar="FILE",
                          help="with an ONNX --model: where to write the model file registered (default: the .onnx "
                               "path with a .json suffix); the hosting node is given this file")
    _import_options(register)


def _import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tolerance", type=float,
                        help="regression only: a test prediction within this of the target (in the output's "
                             "normalised units) is a hit")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optax optimiser (default: adam)")
    parser.add_argument("--learning-rate", type=float, help="default: 0.001")
    parser.add_argument("--momentum", type=float, help="sgd only")
    parser.add_argument("--weight-decay", type=float, help="adamw only")


def run(args, log: Callable[[str], None] = print) -> int:
    if args.command == "fit-table":
        table = fit_table_from_files(args)
        _write(args.out, json.dumps(table.to_dict(), indent=2) + "\n")
        log(f"field table written to {args.out}: output {table.output.name!r} ({table.output.operator.kind}), "
            f"model inputs in order {list(table.model_inputs)}")
        return 0
    from orchestrator.container.modelfile import dump_model
    model = import_model(args.onnx, _read_table(args.fields), args, log)
    _write(args.out, dump_model(model))
    log(f"model file written to {args.out}")
    return 0


def model_for_registration(args, log: Callable[[str], None] = print) -> Path:
    """The model file `owner register` registers: --model itself, or for an .onnx graph the model file it
    imports to, written to --model-out (default: beside it, .json)."""
    if not is_onnx(args.model):
        given = [f"--{name.replace('_', '-')}" for name in ("model_out", *_IMPORT_OPTIONS)
                 if getattr(args, name) is not None]
        if given:
            raise UsageError(
                f"{', '.join(given)}: only with an ONNX --model (.onnx), which register imports; {args.model} is "
                "a model file already"
            )
        return args.model
    out = args.model_out or args.model.with_suffix(".json")
    if out.resolve() == args.model.resolve():
        raise SplitLedgerError(f"--model-out {out} is the ONNX graph itself")
    from orchestrator.container.modelfile import dump_model
    model = import_model(args.model, _read_table(args.fields), args, log)
    _write(out, dump_model(model))
    log(f"model file written to {out}: its bytes are what is registered; give it to the hosting node "
        f"(host run --model {out})")
    return out


def refuse_onnx_for_host(path: Path) -> None:
    if is_onnx(path):
        raise SplitLedgerError(
            f"{path} is an ONNX graph; the hosting node trains the model file the owner registered: give --model "
            f"the JSON that `owner register` wrote ({path.with_suffix('.json')} unless --model-out said otherwise) "
            "or that `owner import-onnx` made"
        )


def is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ONNX_SUFFIX


def import_model(onnx_path: Path, table: FieldTable, args, log: Callable[[str], None]) -> ModelFile:
    from orchestrator.container.onnx_import import convert_onnx
    from orchestrator.container.table_task import task_from_table
    result = convert_onnx(_read(onnx_path, "the ONNX graph"), inputs=table.model_inputs,
                          task=task_from_table(table, args.tolerance), optimizer=_optimizer(args))
    for note in result.notes:
        log(f"note: {note}")
    return result.model


_IMPORT_OPTIONS = ("tolerance", "optimizer", "learning_rate", "momentum", "weight_decay")


def _optimizer(args) -> OptimizerSpec:
    from orchestrator.container.modelfile import OptimizerSpec
    # The spec is validated with the rest of the model file (parse_model), which names a bad option.
    return OptimizerSpec(name=args.optimizer or "adam",
                         learning_rate=1e-3 if args.learning_rate is None else args.learning_rate,
                         momentum=args.momentum, weight_decay=args.weight_decay)


def fit_table_from_files(args) -> FieldTable:
    columns = _reference_columns(_json(_read(args.data, "the reference rows"), f"the reference rows {args.data}"),
                                 args.data)
    if args.output not in columns:
        raise SplitLedgerError(f"the output field {args.output!r} is not a column of {args.data} ({sorted(columns)})")
    inputs = _inputs(args.input, args.operator, [name for name in columns if name != args.output])
    meanings = _meanings(args.meaning, args.meanings)
    fields = [*(name for name, _ in inputs), args.output]
    if unknown := sorted(set(meanings) - set(fields)):
        raise SplitLedgerError(f"meanings given for {unknown}, which are not fields of the table ({fields})")
    if missing := [name for name in fields if not meanings.get(name, "").strip()]:
        raise SplitLedgerError(
            f"fields {missing} have no meaning; sources map their columns onto the table by meaning, so give "
            "each one (--meaning NAME=TEXT, or --meanings FILE)"
        )
    return fit_table(columns, [(name, kind, meanings[name]) for name, kind in inputs],
                     (args.output, args.output_operator, meanings[args.output]))


def _inputs(given: list[str] | None, default_kind: str, others: list[str]) -> list[tuple[str, str]]:
    if not given:
        return [(name, default_kind) for name in others]
    inputs = []
    for item in given:
        name, _, kind = item.partition("=")
        inputs.append((name, kind or default_kind))
    return inputs


def _meanings(pairs: list[str] | None, path: Path | None) -> dict[str, str]:
    meanings: dict[str, str] = {}
    if path is not None:
        doc = _json(_read(path, "the meanings"), f"the meanings {path}")
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise SplitLedgerError(f"{path}: meanings are a JSON object {{field name: text}}")
        meanings.update(doc)
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        if not sep:
            raise SplitLedgerError(f"--meaning {pair!r} is not NAME=TEXT")
        meanings[name] = text
    return meanings


def _reference_columns(doc: Any, path: Path) -> dict[str, list[Any]]:
    if isinstance(doc, list):
        if not doc or not all(isinstance(row, dict) for row in doc):
            raise SplitLedgerError(f"{path}: a list of rows holds one JSON object per row, {{field: value}}")
        names = list(dict.fromkeys(name for row in doc for name in row))
        for i, row in enumerate(doc):
            if missing := [name for name in names if name not in row]:
                raise SplitLedgerError(f"{path}: row {i} lacks {missing}")
        return {name: [row[name] for row in doc] for name in names}
    if isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
        return doc
    raise SplitLedgerError(f"{path}: reference rows are a JSON object of columns {{field: [values]}} or a list of rows")


def _read_table(path: Path) -> FieldTable:
    return FieldTable.from_dict(_json(_read(path, "the field table"), f"the field table {path}"))


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SplitLedgerError(f"{what} is not JSON: {e}") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SplitLedgerError(f"cannot read {what}: {e}") from None


def _write(path: Path, content: str | bytes) -> None:
    try:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    except OSError as e:
        raise SplitLedgerError(f"cannot write {path}: {e}") from None
