"""The layout holds (issue 13): the import graph of ``src/lamina`` — read from the code with
``ast``, imports inside functions included — has no cycle; no module imports another
module's private name; no module is over 500 lines; and the documents that describe the
layout name only modules that exist."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lamina"
MAX_LINES = 500


def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs: at module level or inside functions, but not
    under ``if TYPE_CHECKING:`` (type checkers read those; Python never runs them)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
            yield node


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, str | None]]:
    """(module imported, name imported from it or None) for each runtime import of lamina."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in runtime_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "lamina":
                    yield alias.name, None
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        if source.split(".")[0] != "lamina":
            continue
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            yield (submodule, None) if submodule in known else (source, alias.name)


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, _ in imported(name, path, known):
            if target in known and target != name:
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    assert sum(map(len, edges.values())) > 100  # the graph was read, imports in functions too
    assert cycles(edges) == []


def test_the_graph_finds_a_cycle_made_inside_a_function() -> None:
    edges = {"lamina.a": {"lamina.b"}, "lamina.b": set()}
    assert cycles(edges) == []
    edges["lamina.b"].add("lamina.a")
    assert cycles(edges) == [["lamina.a", "lamina.b"]]


def test_no_module_imports_another_modules_private_name() -> None:
    known = modules()
    private = sorted(
        f"{name} imports {source}.{imported_name}"
        for name, path in known.items()
        for source, imported_name in imported(name, path, known)
        if imported_name is not None
        and imported_name.startswith("_")
        and not imported_name.startswith("__")
    )
    assert private == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_500_lines(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


PATH = re.compile(r"`((?:src/)?lamina/[\w/]+(?:\.py)?)`")


@pytest.mark.parametrize("document", ["docs/architecture.md", "docs/formulas.md"])
def test_the_documents_name_only_modules_that_exist(document: str) -> None:
    text = (ROOT / document).read_text()
    paths = set(PATH.findall(text))
    assert len(paths) >= 15, f"{document} names only {sorted(paths)}"
    missing = []
    for path in sorted(paths):
        relative = path if path.startswith("src/") else f"src/{path}"
        if not (ROOT / relative).exists():
            missing.append(path)
    assert missing == []


def test_the_readme_links_only_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    assert "docs/formulas.md" in readme and "docs/architecture.md" in readme


def test_the_tests_mirror_the_package() -> None:
    folders = sorted(
        path.name
        for path in (ROOT / "tests").iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    )
    assert len(folders) >= 8
    assert [name for name in folders if not (PACKAGE / name / "__init__.py").exists()] == []


def test_a_dense_network_trains_and_predicts_without_loading_scipy() -> None:
    # SciPy (exact GELU's erf) costs a process ~0.3 s, ~27 MB and a second OpenBLAS thread
    # pool beside NumPy's: it is imported where it is used, not with lamina
    script = (
        "import sys, numpy as np, lamina as lm\n"
        "m = lm.Model([lm.layers.Dense(4, 8, activation='relu'),"
        " lm.layers.Dense(8, 2, activation='softmax')], seed=0)\n"
        "m.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])\n"
        "m.fit(np.random.rand(64, 4), np.arange(64) % 2, epochs=1, verbose=0)\n"
        "m.predict(np.random.rand(5, 4))\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'scipy'))\n"
        "lm.layers.GELU().forward(np.zeros((2, 2)))\n"
        "print('scipy.special' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"], done.stdout
