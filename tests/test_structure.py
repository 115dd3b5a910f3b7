"""The package's import graph has no cycles, lazy (function-level) imports included.

A cycle hidden behind a function-level import still means two modules that cannot be
understood, tested or moved apart; each module should sit on a layer below its users.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vizecg"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # a package importing its own submodules (re-exports) is how packages are built
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_import_graph_has_no_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_only_the_study_glue_reads_params_and_nothing_below_imports_it() -> None:
    """``vizecg.study`` is the layer between params.yaml and the package: the building blocks
    (data, render, models, training, evaluation, page_reader, predict, ...) take plain arguments
    and never import it, so each can be used and tested without the study's configuration."""
    graph = import_graph()
    upward = {name: sorted(t for t in targets if t == "vizecg.study" or t.startswith("vizecg.study."))
              for name, targets in graph.items() if not (name == "vizecg.study" or name.startswith("vizecg.study."))}
    assert not {k: v for k, v in upward.items() if v}
    readers = [p for p in PACKAGE.rglob("*.py") if "study" not in p.relative_to(PACKAGE).parts
               and any(isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) == "load_params"
                       for n in ast.walk(ast.parse(p.read_text())))]
    assert not readers
