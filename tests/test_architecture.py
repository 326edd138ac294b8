"""The shape of ``etl/``: packages by role, imports that run one way, modules of a readable size.

Imports are read from the source with ``ast`` (deferred imports inside functions included),
not by importing the modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ETL = Path(__file__).resolve().parent.parent / "etl"

#: How far down each part of ``etl`` sits: a module may import its own level or lower ones.
#: ``etl`` itself is the pipeline's entry point (``--module etl``), at the pipeline's level.
#: ``proxy`` is a service of its own that stands alone (its image carries it without etl);
#: ``console`` is the operations web app, over the worker's run requests.
LEVELS = {
    "shared": 0, "adapters": 1, "pipeline": 2, "etl": 2, "tools": 3, "worker": 3, "proxy": 3,
    "console": 4,
}  # fmt: skip
SHARED = {"settings", "parsers", "errors", "logs", "redact"}
PACKAGES = {"adapters", "pipeline", "tools", "worker", "proxy", "console"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ETL.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ETL.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The ``etl`` modules ``path`` imports (``from etl.x import y`` counts ``etl.x.y`` when
    that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from etl.pipeline import ranking`` imports the module etl.pipeline.ranking;
            # ``from etl.pipeline import ReadUFOs`` imports a name of etl.pipeline.
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [m if m in known else node.module for m in submodules]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def part(module: str) -> str:
    """The part of ``etl`` a module belongs to: a package, ``shared`` or ``etl``."""
    pieces = module.split(".")
    if len(pieces) == 1:
        return "etl"
    return pieces[1] if pieces[1] in PACKAGES else "shared"


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def test_the_top_level_holds_only_the_packages_and_the_shared_modules():
    top = {p.stem for p in ETL.glob("*.py")} - {"__init__"}
    packages = {p.name for p in ETL.iterdir() if (p / "__init__.py").is_file()}
    assert top == SHARED
    assert packages == PACKAGES


def test_imports_never_run_back_up():
    upward = [
        f"{source} ({part(source)}) imports {target} ({part(target)})"
        for source, targets in graph().items()
        for target in targets
        if LEVELS[part(target)] > LEVELS[part(source)]
        or {part(source), part(target)} == {"tools", "worker"}
    ]
    assert upward == []


def test_the_proxy_stands_alone_on_the_standard_library_and_bcrypt():
    import sys

    allowed = set(sys.stdlib_module_names) | {"bcrypt"}
    for path in sorted((ETL / "proxy").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = [node.module.split(".")[0]]
            else:
                continue  # relative: within the package
            assert set(tops) <= allowed, f"{path.name} imports {tops}"


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of ``edges`` (its modules, the first repeated at the end), or []."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str]:
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        done.add(node)
        return []

    for node in sorted(edges):
        if node not in done:
            found = visit(node)
            if found:
                return found
    return []


def test_the_import_graph_has_no_cycle():
    assert find_cycle(graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_400_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by what it does"


def test_the_checks_see_a_real_import_graph():
    # The pipeline's load task imports the database adapter: the reading of imports works.
    edges = graph()
    assert "etl.adapters.database" in edges["etl.pipeline.load"]
    assert "etl.pipeline.read" in edges["etl.pipeline.aggregate"]
    assert part("etl.worker.service") == "worker" and part("etl.settings") == "shared"
