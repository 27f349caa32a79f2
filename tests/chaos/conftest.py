"""The chaos driver lives beside bench/ (chaos/), outside the installed package: the tests import it from the
repository root."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
