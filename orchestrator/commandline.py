"""The convention every command line follows (docs/architecture.md, "Command line").

One argparse tree: `splitledger ROLE COMMAND ...` (orchestrator/cli.py), each role's tree also runnable alone
(`python -m orchestrator.proxy`, `python -m orchestrator.hosting`, ...). Every parser in it is a
CommandParser, so every level takes the same three options:

  --version        the package's version (importlib.metadata), then exit 0
  --log-level L    debug, info (default), warning or error: SplitLedger's own loggers at L, every other
                   library's at warning and above, one line per record on stderr, set up once by `main`
  --quiet, -q      no progress bars

A command is the handler a parser sets (`set_defaults(handler=...)`), called with the parsed arguments; it
returns the exit status, and `main` maps what it raises:

  0  done (a handler may return others: `source audit` exits 3 when it finds a discrepancy)
  1  a runtime refusal: any SplitLedgerError (a chain failure is a ChainError), an OSError (a file that cannot
     be read, a connection refused), a web3 exception; one line `error: ...` on stderr, the traceback only at
     --log-level debug
  2  a usage error: argparse's own, or a UsageError for options that do not go together (argparse's message
     and the command's usage line)

stdout carries what a command answers (an id, a JSON document); stderr its logs, errors and progress bars.
Bars (tqdm) are drawn only on a terminal, not with --quiet nor above --log-level info.
Nothing heavy is imported here: building parsers stays as fast as argparse.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import SplitLedgerError, UsageError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

LOG_LEVELS = ("debug", "info", "warning", "error")
OWN_LOGGERS = ("orchestrator", "splitledger")  # every module's logger is under one of these
RUNTIME_EXIT = 1
USAGE_EXIT = 2

log = logging.getLogger(__name__)

Configure = Callable[["CommandParser"], None]
Handler = Callable[[argparse.Namespace], int]


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # read on --version only: ~40 ms of imports

    try:
        return version("splitledger")
    except PackageNotFoundError:  # run from a checkout that was never installed (bin/setup installs it)
        return "unknown (not installed)"


class _Version(argparse.Action):
    """--version: prints `splitledger VERSION` to stdout and exits 0 (argparse's own needs the version up front,
    which would read the package metadata for every parser built)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version of splitledger and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        sys.stdout.write(f"splitledger {package_version()}\n")
        parser.exit()


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser with the common options; its subparsers are CommandParsers too (argparse makes them of
    the parent's class). The top parser (`top=True`) holds their defaults; below it they default to nothing,
    so that `--log-level` given at any level is the one used, and one left out is the top's."""

    def __init__(self, *args: Any, top: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action=_Version)
        self.add_argument("--log-level", choices=LOG_LEVELS, metavar="LEVEL",
                          default="info" if top else argparse.SUPPRESS,
                          help="what to log: debug, info (default), warning or error")
        self.add_argument("--quiet", "-q", action="store_true", default=False if top else argparse.SUPPRESS,
                          help="no progress bars")
        self.set_defaults(command_parser=self)  # the deepest parser's wins: the command's own, for its usage


def standalone(prog: str, configure: Configure) -> CommandParser:
    """A role's tree as its own top parser (`python -m orchestrator.proxy`)."""
    parser = CommandParser(prog=prog, top=True)
    configure(parser)
    return parser


def main(parser: CommandParser, argv: Sequence[str] | None = None, **defaults: Any) -> int:
    """Parses `argv` (default: sys.argv[1:]), sets logging up once, runs the command's handler and maps what it
    raised to an exit status (module docstring). `defaults` are set on the arguments before parsing (a demo's
    vault class, for example)."""
    if defaults:
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    configure_logging(args.log_level, timestamps=getattr(args, "service", False))
    try:
        return args.handler(args)
    except UsageError as e:  # as argparse answers its own usage errors, but returned rather than exited
        args.command_parser.print_usage(sys.stderr)
        print(f"{args.command_parser.prog}: error: {e}", file=sys.stderr)
        return USAGE_EXIT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not is_refusal(e):
            raise
        log.debug("the refusal's traceback", exc_info=True)
        print(f"error: {e}", file=sys.stderr)
        return RUNTIME_EXIT


def is_refusal(error: BaseException) -> bool:
    """A runtime refusal with a message for a person (exit 1), rather than a bug (a traceback)."""
    if isinstance(error, (SplitLedgerError, OSError)):
        return True
    web3 = sys.modules.get("web3.exceptions")  # imported only where a command reached the chain
    return web3 is not None and isinstance(error, web3.Web3Exception)


# ---------------------------------------------------------------------------------------------- logging


class ConsoleFormatter(logging.Formatter):
    """One line per record: the message alone at info (as a print would show it), prefixed by its level
    otherwise; services (`timestamps`) prefix the time, since their logs are read long after."""

    def __init__(self, timestamps: bool = False):
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno != logging.INFO:
            text = f"{record.levelname.lower()}: {text}"
        if self.timestamps:
            text = f"{self.formatTime(record, '%Y-%m-%d %H:%M:%S')} {record.name}: {text}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class ConsoleHandler(logging.Handler):
    """Writes records to the stderr of the moment (a test's captured stream, say), around any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except Exception:
            self.handleError(record)


def write_line(line: str) -> None:
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:  # bars may be on screen: tqdm clears them, writes the line and draws them again
        tqdm.tqdm.write(line, file=sys.stderr)
    else:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def configure_logging(level: str = "info", *, timestamps: bool = False) -> None:
    """SplitLedger's loggers at `level`, other libraries' at warning, all through one ConsoleHandler on the root
    logger (replacing one an earlier call set, so a process that runs several commands logs each line once)."""
    number = logging.getLevelName(level.upper())
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ConsoleHandler)]:
        root.removeHandler(handler)
    handler = ConsoleHandler()
    handler.setFormatter(ConsoleFormatter(timestamps))
    root.addHandler(handler)
    root.setLevel(max(number, logging.WARNING))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(number)


class _LineHandler(logging.Handler):
    def __init__(self, write: Callable[[str], None]):
        super().__init__()
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        self.write(record.getMessage())


@contextmanager
def lines_of(logger: str, write: Callable[[str], None]) -> Iterator[None]:
    """Within the block, the info (and higher) records of `logger` go to `write` as their messages, and nowhere
    else: a demo or a benchmark telling the hosting node's story in its own voice."""
    target = logging.getLogger(logger)
    handler = _LineHandler(write)
    saved = target.level, target.propagate
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    target.propagate = False
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(saved[0])
        target.propagate = saved[1]


# ---------------------------------------------------------------------------------------------- progress


class ProgressBars:
    """A Progress (orchestrator/progress.py) drawn as one tqdm bar per task on stderr, gone when it is done."""

    def __init__(self) -> None:
        from tqdm import tqdm  # imported by the commands that draw bars, on a terminal only

        self._tqdm = tqdm
        self._bars: dict[str, Any] = {}
        self._lock = threading.Lock()  # a task may advance from a worker thread

    def __call__(self, task: str, done: int, total: int) -> None:
        with self._lock:
            bar = self._bars.get(task)
            if bar is None:
                bar = self._bars[task] = self._tqdm(total=total, desc=task, unit="", file=sys.stderr, leave=False,
                                                    dynamic_ncols=True)
            bar.total = total
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
                del self._bars[task]

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()


def progress_bars(args: argparse.Namespace, stream: Any = None) -> ProgressBars | None:
    """Bars for this command, or None: not on a terminal, with --quiet, or above --log-level info."""
    stream = sys.stderr if stream is None else stream
    if args.quiet or LOG_LEVELS.index(args.log_level) > LOG_LEVELS.index("info") or not stream.isatty():
        return None
    return ProgressBars()


# ---------------------------------------------------------------------------------------------- keys


def add_key_option(parser: argparse._ActionsContainer, role: str) -> None:
    """--keystore FILE for a command that signs as `role` (owner, host, proxy, source, deployer), on a parser or
    on a group of one (the proxy's, beside --key-env)."""
    prefix = f"SPLITLEDGER_{role.upper()}"
    parser.add_argument("--keystore", type=Path, metavar="FILE",
                        help=f"an encrypted keystore (eth-account / geth JSON) holding the {role}'s key, its "
                             f"password from {prefix}_PASSWORD or asked for on a terminal (default: the key in "
                             f"{prefix}_KEY, or {prefix}_KEYSTORE + {prefix}_PASSWORD)")


def signing_account(args: argparse.Namespace, role: str) -> LocalAccount:
    """The key `role` signs with: --keystore's when given, else the environment's (orchestrator/chain/keys.py)."""
    from orchestrator.chain.keys import account_from_env, account_from_keystore

    keystore = getattr(args, "keystore", None)
    return account_from_keystore(keystore, role) if keystore is not None else account_from_env(role)
