"""pyproject.toml declares what the code imports: every distribution a module of orchestrator/ or scripts/
imports is a runtime dependency, every one the tests import is a runtime or a `test` dependency, and
requirements.lock pins exactly their closure (bin/lock). docs/toolchain.md, "Packaging"."""
import ast
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OURS = {"orchestrator", "scripts", "tests", "bench", "chaos"}


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirements}


def top_level_imports(*directories: str) -> set[str]:
    found: set[str] = set()
    for directory in directories:
        for path in (ROOT / directory).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    local = {path.stem for directory in directories for path in (ROOT / directory).rglob("*.py")}
    return found - set(sys.stdlib_module_names) - OURS - local


def distributions_of(modules: set[str]) -> dict[str, set[str]]:
    """module -> the distributions that provide it (a module no installed distribution provides maps to {})."""
    provided = metadata.packages_distributions()
    return {module: {canonicalize_name(d) for d in provided.get(module, ())} for module in modules}


def undeclared(modules: set[str], declared: set[str]) -> dict[str, set[str]]:
    # eth_utils is also provided by faster-eth-utils (a drop-in of web3's); declaring either is enough.
    return {module: dists for module, dists in distributions_of(modules).items() if not dists & declared}


def test_every_distribution_the_code_imports_is_a_runtime_dependency():
    assert undeclared(top_level_imports("orchestrator", "scripts"), names(PROJECT["dependencies"])) == {}


def test_every_distribution_the_tests_import_is_declared():
    declared = names(PROJECT["dependencies"]) | names(PROJECT["optional-dependencies"]["test"])
    assert undeclared(top_level_imports("tests"), declared) == {}


def test_test_only_distributions_are_not_runtime_dependencies():
    runtime = names(PROJECT["dependencies"])
    assert runtime & {"pytest", "hypothesis", "playwright", "torch"} == set()


def test_the_lock_is_the_closure_of_what_pyproject_declares():
    done = subprocess.run([sys.executable, str(ROOT / "bin" / "lock"), "--check"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
