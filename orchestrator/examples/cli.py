"""`splitledger example`: the worked example's input files, from datasets scikit-learn ships (docs/tutorial.md)."""
import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

from orchestrator.commandline import CommandParser, Handler, standalone
from orchestrator.commandline import main as run_command
from orchestrator.errors import SplitLedgerError

from .datasets import LOADERS

DESCRIPTION = """Write the files a worked example starts from: `data` cuts a bundled dataset into the owner's own
labelled rows, its test set, what each field means, and data sources' CSV files (each under its own column
names, with a mapping file);
`model` fits a small scikit-learn MLP on the owner's rows and exports it as ONNX (the owner's existing model)."""


def configure(parser: CommandParser) -> None:
    parser.description = DESCRIPTION
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data = commands.add_parser("data", help="owner rows, test set and source CSV files from a bundled dataset")
    data.set_defaults(handler=_refusing_bad_data(data_command))
    data.add_argument("--dataset", choices=sorted(LOADERS), default="wine")
    data.add_argument("--out", required=True, type=Path, metavar="DIR")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--owner-rows", type=int, default=30)
    data.add_argument("--test-rows", type=int, default=60)
    data.add_argument("--sources", type=int, default=2)
    model = commands.add_parser("model", help="the owner's starting model: an MLP fitted on its rows, as ONNX")
    model.add_argument("--fields", required=True, type=Path, help="the standard field table (owner fit-table)")
    model.add_argument("--rows", required=True, type=Path, help="the owner's labelled rows (columns, JSON)")
    model.add_argument("--hidden", type=int, default=8)
    model.add_argument("--iterations", type=int, default=30)
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--out", required=True, type=Path, metavar="FILE")
    model.set_defaults(handler=_refusing_bad_data(model_command))


def build_parser(prog: str = "splitledger example") -> CommandParser:
    return standalone(prog, configure)


def _refusing_bad_data(command: Handler) -> Handler:
    """The command, with a malformed input file (a value or a column the dataset code cannot take) refused as
    a runtime error rather than a traceback."""
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (ValueError, KeyError) as e:
            raise SplitLedgerError(str(e)) from None
    return run


def data_command(args) -> int:
    from .datasets import example_data
    example = example_data(args.dataset, seed=args.seed, owner_rows=args.owner_rows, test_rows=args.test_rows,
                           sources=args.sources)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "owner-rows.json").write_text(json.dumps(example.owner_rows))
    (args.out / "test-set.json").write_text(json.dumps(example.test_set))
    (args.out / "meanings.json").write_text(json.dumps(example.meanings, indent=1))
    for source in example.sources:
        with open(args.out / f"{source.name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(source.header)
            writer.writerows(source.rows)
        (args.out / f"{source.name}.mapping.json").write_text(json.dumps({"mapping": source.mapping}, indent=1))
    print(f"{args.dataset}: {len(example.owner_rows[example.output])} owner rows, "
          f"{len(example.test_set[example.output])} test rows, label field {example.output!r}; sources: "
          + ", ".join(f"{s.name} ({len(s.rows)} rows)" for s in example.sources) + f" -> {args.out}/")
    return 0


def model_command(args) -> int:
    from orchestrator.container.fields import FieldTable

    from .model import owner_model_onnx
    table = FieldTable.from_json(args.fields.read_bytes())
    rows = json.loads(args.rows.read_text())
    args.out.write_bytes(owner_model_onnx(table, rows, hidden=args.hidden, iterations=args.iterations,
                                          seed=args.seed))
    print(f"owner's starting model ({args.hidden} hidden units, {args.iterations} passes over "
          f"{len(rows[table.output.name])} rows) -> {args.out}")
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "splitledger example") -> int:
    return run_command(build_parser(prog), argv)
