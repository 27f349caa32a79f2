"""The command-line convention (orchestrator/commandline.py): one tree, --version everywhere, exit 1 for a
refusal and 2 for a usage error, one line per refusal, logging set up once, bars only where they can be seen."""
import argparse
import io
import logging
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from orchestrator.cli import build_parser, main
from orchestrator.commandline import (
    CommandParser,
    ConsoleHandler,
    configure_logging,
    lines_of,
    progress_bars,
    standalone,
)
from orchestrator.commandline import main as run_command
from orchestrator.errors import SplitLedgerError, UsageError

ROOT = Path(__file__).resolve().parents[2]
VERSION = f"splitledger {version('splitledger')}\n"


def splitledger(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("argv", [("--version",), ("host", "--version"), ("owner", "status", "--version"),
                                  ("explorer", "--version")], ids=" ".join)
def test_version_prints_the_packages_version_at_every_level(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    assert done.value.code == 0 and capsys.readouterr().out == VERSION


def test_each_roles_own_entry_point_prints_the_version_too():
    for module in ("orchestrator.proxy", "orchestrator.source", "orchestrator.hosting"):
        done = subprocess.run([sys.executable, "-m", module, "--version"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert (done.returncode, done.stdout) == (0, VERSION), module


@pytest.mark.parametrize("argv", [(), ("no-such-role",), ("owner",), ("owner", "deposit", "--model-id", "1"),
                                  ("host", "status", "--db")], ids=lambda a: " ".join(a) or "nothing")
def test_a_usage_error_exits_2_with_the_usage(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    assert done.value.code == 2 and "usage: splitledger" in capsys.readouterr().err


def test_a_runtime_refusal_exits_1_with_one_error_line_and_no_traceback(tmp_path):
    done = splitledger("host", "status", "--db", str(tmp_path / "absent.sqlite"))
    assert done.returncode == 1
    assert done.stderr == f"error: no state file at {tmp_path / 'absent.sqlite'}\n"


def test_at_log_level_debug_a_refusal_shows_its_traceback_too(tmp_path):
    done = splitledger("--log-level", "debug", "host", "status", "--db", str(tmp_path / "absent.sqlite"))
    assert done.returncode == 1
    assert "Traceback" in done.stderr and done.stderr.rstrip().endswith(f"no state file at {tmp_path / 'absent.sqlite'}")


def test_a_chain_that_does_not_answer_is_a_refusal_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.delenv("SPLITLEDGER_OWNER_KEY", raising=False)
    done = splitledger("owner", "status", "--rpc", "http://127.0.0.1:1", "--model-id", "1")
    assert done.returncode == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_options_that_do_not_go_together_are_a_usage_error(capsys, tmp_path):
    code = main(["host", "serve", "--db", str(tmp_path / "h.sqlite"), "--port", "1", "--tls-cert", "c.pem"])
    assert code == 2
    err = capsys.readouterr().err
    assert "usage: splitledger host serve" in err and "--tls-cert and --tls-key go together" in err


def parser_running(handler) -> CommandParser:
    def configure(parser):
        parser.set_defaults(handler=handler)
    return standalone("demo", configure)


def test_a_handler_raising_a_bug_is_not_hidden_as_a_refusal():
    def broken(_args):
        raise ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError):
        run_command(parser_running(broken), [])


def test_the_log_level_may_be_given_at_the_top_or_at_the_role():
    top = build_parser(["--log-level", "warning", "host", "status", "--db", "h"])
    assert top.parse_args(["--log-level", "warning", "host", "status", "--db", "h"]).log_level == "warning"
    assert top.parse_args(["host", "--log-level", "error", "status", "--db", "h"]).log_level == "error"
    assert top.parse_args(["host", "status", "--db", "h"]).log_level == "info"


# ------------------------------------------------------------------------------------------- logging


@pytest.fixture
def console(capsys):
    """What configure_logging's handler writes to stderr, with the loggers it touches restored after the test."""
    names = ("", "orchestrator", "splitledger")
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    yield lambda: capsys.readouterr().err
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers


def test_our_info_lines_print_as_they_are_and_other_librarys_info_is_dropped(console):
    configure_logging("info")
    logging.getLogger("orchestrator.hosting.node").info("checkpoint 3: 200 rows locked")
    logging.getLogger("orchestrator.source.upload").warning("a proxy is slow")
    logging.getLogger("httpx").info("HTTP Request: GET /v1/health")
    assert console() == "checkpoint 3: 200 rows locked\nwarning: a proxy is slow\n"


def test_logging_configured_twice_prints_each_line_once(console):
    configure_logging("info")
    configure_logging("warning")
    logging.getLogger("orchestrator").warning("once")
    logging.getLogger("orchestrator").info("not at warning")
    assert console() == "warning: once\n"
    assert sum(isinstance(h, ConsoleHandler) for h in logging.getLogger().handlers) == 1


def test_a_service_stamps_its_lines_with_the_time_and_the_logger(console):
    configure_logging("info", timestamps=True)
    logging.getLogger("orchestrator.proxy.vault").info("stored 3 rows")
    line = console()
    assert line.endswith(" orchestrator.proxy.vault: stored 3 rows\n") and line[:4].isdigit()


def test_a_loggers_lines_can_be_told_in_another_voice_and_only_there(console):
    configure_logging("info")
    told = []
    with lines_of("orchestrator.hosting", told.append):
        logging.getLogger("orchestrator.hosting.node").info("no rows left to buy")
    logging.getLogger("orchestrator.hosting.node").info("after the block")
    assert told == ["no rows left to buy"] and console() == "after the block\n"


# ------------------------------------------------------------------------------------------- progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def options(**given) -> argparse.Namespace:
    return argparse.Namespace(**{"quiet": False, "log_level": "info", **given})


def test_bars_are_drawn_on_a_terminal_only_and_not_when_quiet_or_above_info():
    assert progress_bars(options(), Terminal()) is not None
    assert progress_bars(options(), io.StringIO()) is None
    assert progress_bars(options(quiet=True), Terminal()) is None
    assert progress_bars(options(log_level="warning"), Terminal()) is None


def test_a_bar_goes_when_its_task_is_done(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    bars = progress_bars(options())
    bars("pages to http://a", 1, 3)
    bars("pages to http://b", 1, 1)
    assert list(bars._bars) == ["pages to http://a"]
    bars("pages to http://a", 3, 3)
    assert bars._bars == {} and "pages to http://a" in sys.stderr.getvalue()


def test_a_usage_error_raised_by_a_handler_is_answered_like_argparses(capsys):
    def refuse(_args):
        raise UsageError("--a and --b go together")
    assert run_command(parser_running(refuse), []) == 2
    assert capsys.readouterr().err == "usage: demo [-h] [--version] [--log-level LEVEL] [--quiet]\n" \
                                      "demo: error: --a and --b go together\n"


def test_a_refusal_raised_by_a_handler_exits_1(capsys):
    def refuse(_args):
        raise SplitLedgerError("not today")
    assert run_command(parser_running(refuse), []) == 1
    assert capsys.readouterr().err == "error: not today\n"
