"""The structured reference string a circuit's keys and proofs are made with (docs/zk.md, "SRS").

A locally generated SRS is only as secret as this machine: whoever generated it can forge proofs. It is
accepted on dev chains only (their chain ids below), with a warning on every use; any other network needs a
ceremony SRS file given with `--srs FILE` (ezkl reads the perpetual-powers-of-tau KZG format).
"""
import logging
from pathlib import Path

from orchestrator.errors import ZkError

log = logging.getLogger(__name__)
DEV_CHAIN_IDS = frozenset({1337, 31337})
WARNING = ("LOCAL SRS: generated on this machine, so whoever ran it can forge accuracy proofs. Dev chains only; "
           "on any other network pass a ceremony SRS with --srs FILE (docs/zk.md)")


def require_srs(chain_id: int, ceremony: Path | None) -> None:
    """Refuses, before any work, to go on without a ceremony SRS where a local one is not accepted."""
    if ceremony is None and chain_id not in DEV_CHAIN_IDS:
        raise ZkError(f"chain {chain_id} is not a dev chain: a locally generated SRS is refused there; "
                      f"pass a ceremony SRS with --srs FILE")


def local_srs(path: Path, logrows: int, chain_id: int) -> Path:
    """Generates a throwaway SRS of 2**logrows points at `path` for a dev chain; refuses any other chain."""
    require_srs(chain_id, None)
    import ezkl
    log.warning(WARNING)
    # gen_srs returns None in ezkl 23 (older releases returned a flag): the file is the result.
    ezkl.gen_srs(str(path), logrows)
    if not path.exists():
        raise ZkError(f"ezkl could not write an SRS of logrows {logrows} to {path}")
    return path


def ceremony_srs(path: Path) -> Path:
    """A user-supplied SRS file, checked only for existence here; ezkl refuses one with too few points at setup."""
    if not path.is_file():
        raise ZkError(f"SRS file {path} does not exist")
    return path


def srs_for(ceremony: Path | None, local_path: Path, logrows: int, chain_id: int) -> Path:
    """The ceremony SRS when one is given (any chain), else a local one at `local_path` (dev chains only)."""
    return ceremony_srs(ceremony) if ceremony is not None else local_srs(local_path, logrows, chain_id)
