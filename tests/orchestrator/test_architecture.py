"""The imports of orchestrator/ follow the table of docs/architecture.md, and the table follows the imports.

The table is the one place the allowed edges are written: its "imports" column names, in backticks outside
parentheses, the units a unit may import (a parenthesis only says which of their modules). A unit is a
package or a top-level module of orchestrator/, except that command-line modules (`cli`, `artifact_cli`,
`__main__` of any package, and orchestrator/cli.py) form one unit, `cli`: the command lines sit above every
library, whichever package they are filed in. Every import counts, at the top of a module or inside a
function, except those under `if TYPE_CHECKING:`, which annotate and load nothing."""
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orchestrator"
DOC = ROOT / "docs" / "architecture.md"
COMMAND_MODULES = {"cli", "artifact_cli", "__main__"}


def unit_of(module: str) -> str:
    """The unit of the table a dotted module name `orchestrator....` belongs to."""
    parts = module.split(".")
    if len(parts) == 1:
        return "orchestrator"
    if parts[-1] in COMMAND_MODULES:
        return "cli"
    return parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, (ast.Name, ast.Attribute)) and \
        ast.unparse(node.test).endswith("TYPE_CHECKING")


def imports_in(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if is_type_checking_block(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from imports_in(node)


def imported_modules(path: Path) -> Iterator[str]:
    """The orchestrator modules `path` imports, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in imports_in(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif node.level:
            base = package.split(".")[:len(package.split(".")) - node.level + 1]
            targets = [".".join(base + ([node.module] if node.module else []))]
        else:
            targets = [node.module or ""]
        yield from (target for target in targets if target == "orchestrator" or target.startswith("orchestrator."))


def actual_edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> the files that make the edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = unit_of(module_name(path))
        for target in imported_modules(path):
            imported = unit_of(target)
            if imported not in (source, "orchestrator"):
                edges.setdefault((source, imported), []).append(str(path.relative_to(ROOT)))
    return edges


def table() -> dict[str, set[str]]:
    """unit -> the units docs/architecture.md's package table lets it import."""
    text = DOC.read_text()
    section = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    allowed: dict[str, set[str]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        unit = re.match(r"`([a-z_]+)`", cells[0]).group(1)
        outside_parentheses = re.sub(r"\([^)]*\)", "", cells[2])
        allowed[unit] = set(re.findall(r"`([a-z_]+)`", outside_parentheses))
    return allowed


def units() -> set[str]:
    found = {unit_of(module_name(path)) for path in PACKAGE.rglob("*.py")}
    return found - {"orchestrator"}


def test_every_unit_of_the_package_has_a_row_in_the_table():
    assert units() - set(table()) == set()


def test_the_table_names_no_unit_that_does_not_exist():
    allowed = table()
    named = set(allowed) | set().union(*allowed.values())
    assert named - units() == set()


def test_every_import_is_an_edge_the_table_allows():
    allowed = table()
    wrong = {edge: files for edge, files in actual_edges().items() if edge[1] not in allowed.get(edge[0], set())}
    assert wrong == {}, "imports docs/architecture.md does not allow: " + "; ".join(
        f"{a} -> {b} ({', '.join(sorted(set(files)))})" for (a, b), files in sorted(wrong.items()))


def test_every_edge_of_the_table_is_an_import_of_the_code():
    edges = set(actual_edges())
    unused = {(unit, imported) for unit, imports in table().items() for imported in imports
              if (unit, imported) not in edges}
    assert unused == set()


def test_the_allowed_edges_run_one_way():
    allowed = table()
    order: list[str] = []
    visiting: list[str] = []

    def visit(unit: str) -> None:
        if unit in order:
            return
        if unit in visiting:
            pytest.fail(f"docs/architecture.md allows a cycle: {' -> '.join(visiting[visiting.index(unit):])} -> {unit}")
        visiting.append(unit)
        for imported in sorted(allowed.get(unit, ())):
            visit(imported)
        visiting.pop()
        order.append(unit)

    for unit in sorted(allowed):
        visit(unit)

