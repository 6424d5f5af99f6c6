"""The import graph of ``src/synthrank``: no cycle between modules, no import of a higher layer.

Layers (a module may import its own layer and the ones below):

    0  synthrank, synthrank.data, synthrank.config_io, synthrank.systems, synthrank.hub
    1  synthrank.evaluate
    2  synthrank.generate, synthrank.mine, synthrank.distill
    3  synthrank.train
    4  synthrank.run
    5  synthrank.cli

Every ``import`` / ``from ... import`` is counted, also those inside functions (a lazy import is
still a dependency). Cycles are looked for among module-level imports only (a function-level
import cannot deadlock module loading); upward imports are refused at any level.
Run: ``python scripts/check_imports.py`` (exit 1 and one line per problem), or from the tests.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {"synthrank": 0, "synthrank.data": 0, "synthrank.config_io": 0, "synthrank.systems": 0, "synthrank.hub": 0,
          "synthrank.evaluate": 1, "synthrank.generate": 2, "synthrank.mine": 2, "synthrank.distill": 2,
          "synthrank.train": 3, "synthrank.run": 4, "synthrank.cli": 5}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """``(imported synthrank module, at module level, line)`` for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("synthrank"):
                found.append((name, id(node) in top, node.lineno))
    return found


def problems() -> list[str]:
    files = {module_name(p): p for p in SRC.joinpath("synthrank").rglob("*.py")}
    out, graph = [], {}
    for module, path in files.items():
        edges = set()
        for name, module_level, line in imports(path):
            target = name if name in files else name.rsplit(".", 1)[0]
            if target not in files:
                continue
            if layer(target) > layer(module):
                out.append(f"{path.relative_to(SRC.parent)}:{line}: upward import of {target} (layer {layer(target)}) "
                           f"from layer {layer(module)}")
            if module_level and target != module and not module.startswith(target + "."):
                edges.add(target)
        graph[module] = edges
    out += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return list(dict.fromkeys(out))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    listed = problems()
    print("\n".join(listed) or f"ok: {len(list(SRC.joinpath('synthrank').rglob('*.py')))} modules, no cycle, no upward import")
    sys.exit(1 if listed else 0)
