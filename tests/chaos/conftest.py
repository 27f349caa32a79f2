"""The chaos driver lives beside bench/ (chaos/), outside the installed package: the tests import it from the
repository root."""
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from chaos.story import PROJECT_ROOT, owner_files  # noqa: E402  (after the path is set)


@pytest.fixture(scope="session")
def files():
    """The owner's files, made once by the project's commands and kept with the JAX cache under var/."""
    return owner_files(PROJECT_ROOT / "var" / "chaos" / "files")
