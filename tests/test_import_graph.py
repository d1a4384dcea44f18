"""The package's import structure: no cycles between nnmargin's modules.

Every import statement counts, including those inside functions: an import moved into a function
to dodge a cycle still shows up here as the cycle it is."""
from __future__ import annotations

import ast
from pathlib import Path

import nnmargin

PACKAGE_DIR = Path(nnmargin.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict:
    """Module name -> source file; compiled extensions (nnmargin._core) are leaves."""
    modules = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    modules["nnmargin._core"] = None
    return modules


def _resolve(name: str, modules: dict):
    """The nnmargin module (file) an imported name refers to, or None for anything else."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict) -> set:
    is_package = path.name == "__init__.py"
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg
            names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
                     for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target and target.split(".")[0] == "nnmargin" and target != module:
                targets.add(target)
    return targets


def import_graph() -> dict:
    modules = _modules()
    return {m: _imports(m, p, modules) if p is not None else set() for m, p in modules.items()}


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
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


def test_no_import_cycles_between_package_modules():
    graph = import_graph()
    assert len(graph) > 20 and "nnmargin.certify" in graph
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph["nnmargin.trainset"] = graph["nnmargin.trainset"] | {"nnmargin.certify"}  # certify imports trainset
    assert any({"nnmargin.certify", "nnmargin.trainset"} <= set(c) for c in cycles(graph))


def test_core_modules_do_not_reach_into_private_names_of_other_modules():
    """certify/trainset/adversarial/exact/bounds use public names of each other (the float64 view,
    predict_1nn, ...), not underscored internals."""
    core = ["certify", "trainset", "adversarial", "exact", "bounds", "result", "reference"]
    for name in core:
        tree = ast.parse((PACKAGE_DIR / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and node.module not in (None, "_core"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"nnmargin.{name} imports private {private} from .{node.module}"
