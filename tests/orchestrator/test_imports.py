"""Read-only commands start without the training stack: JAX, equinox, optax and ONNX are imported only where a
model is trained, served or converted (docs/architecture.md). Each command runs in its own interpreter under
`-X importtime`, whose log names every module the command imported."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING_STACK = {"jax", "jaxlib", "equinox", "optax", "onnx", "onnxruntime"}


def imported_packages(*argv: str, cwd: Path = ROOT) -> set[str]:
    """The top-level packages that `python -X importtime argv` imports; the command must succeed."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines[1:]}  # [0] is the column header


@pytest.mark.parametrize("argv", [
    ("-m", "orchestrator.explorer", "--help"),
    ("-m", "orchestrator.cli", "--help"),
    ("-m", "orchestrator.cli", "owner", "status", "--help"),
    ("-m", "orchestrator.cli", "host", "--help"),
    ("-m", "orchestrator.cli", "proxy", "--help"),
    ("-m", "orchestrator.cli", "source", "--help"),
], ids=" ".join)
def test_help_and_the_explorer_import_no_training_stack(argv):
    assert imported_packages(*argv) & TRAINING_STACK == set()


def test_host_status_reads_a_state_file_without_the_training_stack(tmp_path):
    db = tmp_path / "host.sqlite"
    subprocess.run([sys.executable, "-c", f"from orchestrator.hosting.state import HostState; HostState({str(db)!r})"],
                   cwd=ROOT, check=True, timeout=120)
    assert imported_packages("-m", "orchestrator.cli", "host", "status", "--db", str(db)) & TRAINING_STACK == set()


def test_the_hashing_package_needs_no_training_stack():
    code = ("from orchestrator.hashing.merkle import MerkleTree, standard_leaf; "
            "from orchestrator.hashing.rows import row_hash; "
            "MerkleTree([standard_leaf(row_hash(1, [0.5], 1.0))])")
    assert imported_packages("-c", code) & TRAINING_STACK == set()


def test_a_package_names_its_exports_without_importing_them():
    code = "import orchestrator.container as c, sys; assert 'jax' not in sys.modules; c.FieldTable; c.TrainingContainer"
    packages = imported_packages("-c", code)
    assert "jax" in packages  # TrainingContainer, read last, is what imported it


@pytest.mark.parametrize("package", ["auth", "container", "source"])
def test_a_lazy_package_shows_the_type_checker_the_names_it_exports(package):
    # mypy cannot follow a module's __getattr__: the TYPE_CHECKING block must name the same exports, or every
    # `from orchestrator.PACKAGE import NAME` outside it would be unchecked.
    tree = ast.parse((ROOT / "orchestrator" / package / "__init__.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "lazy_exports")
    exported = {(module, name) for module, names in ast.literal_eval(call.args[1]).items() for name in names}
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    checked = {(n.module, alias.name) for n in block.body if isinstance(n, ast.ImportFrom) for alias in n.names}
    assert checked == exported
