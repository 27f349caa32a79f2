"""`splitledger ROLE COMMAND ...`: one argparse tree for every role (the convention: orchestrator/commandline.py).

Each role's subtree is its own module's `configure` (the same function `python -m orchestrator.proxy` and the
other module entry points build their parser with). Only the role named on the command line is configured:
its module and what it imports load for that role alone, so `splitledger --help` imports none of them and
the explorer's tree never loads JAX.
"""
import importlib
import sys
from collections.abc import Sequence

from orchestrator.commandline import CommandParser
from orchestrator.commandline import main as run_command

DESCRIPTION = """Hosted split training of neural networks, paid from an on-chain escrow only when test accuracy
improves. Every role is a command: `splitledger ROLE --help` lists its own."""

# role: (module:function that configures its parser, what it is)
ROLES = {
    "deploy": ("orchestrator.chain.cli:configure", "deploy the market onto the chain at --rpc (any port)"),
    "owner": ("orchestrator.hosting.cli:configure_owner",
              "fit a field table, import ONNX, register a model, escrow, set the quote, withdraw, fetch and "
              "verify checkpoints"),
    "host": ("orchestrator.hosting.cli:configure_host", "run a hosting node for a registered model"),
    "proxy": ("orchestrator.proxy.cli:configure", "run a source proxy (HTTP service holding sources' rows)"),
    "source": ("orchestrator.source.cli:configure", "hand rows to proxies, audit bills, claim payouts"),
    "explorer": ("orchestrator.explorer.cli:configure", "browse models, checkpoints, bills, payouts and anchors"),
    "example": ("orchestrator.examples.cli:configure",
                "write a worked example's input files from a bundled dataset"),
}


def build_parser(argv: Sequence[str] = ()) -> CommandParser:
    """The whole tree, with the subtree of the role named in `argv` (if any) configured."""
    parser = CommandParser(prog="splitledger", description=DESCRIPTION, top=True)
    roles = parser.add_subparsers(dest="role", required=True, metavar="ROLE")
    # Before the role only the top's options come, whose values are log levels: the first role name is the role.
    chosen = next((word for word in argv if word in ROLES), None)
    for name, (where, text) in ROLES.items():
        sub = roles.add_parser(name, help=text, description=text)
        if name == chosen:
            module, function = where.split(":")
            getattr(importlib.import_module(module), function)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(build_parser(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
