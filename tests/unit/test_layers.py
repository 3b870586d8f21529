"""The layers hold: who may import whom, no import cycles, folders and modules of a readable size.

Read from the source with ``ast`` (nothing is imported), counting imports placed inside
functions too: a lazy import hides a cycle from Python, not from a reader.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Top-level folders, highest first: a folder may import itself and any folder after it.
LAYERS = ["camsort", "bench", "infra", "training", "export", "functions"]
# Inside infra, highest first. The package's own __init__ (PROJECT_ROOT) is below them all.
INFRA_LAYERS = ["soak", "demo", "labelling", "ops", "local", "deploy"]

MAX_MODULES_PER_FOLDER = 20


def project_modules() -> dict[str, Path]:
    """``{dotted module name: path}`` of every project module outside tests."""
    modules = {}
    for top in LAYERS:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, anywhere in the file (``from pkg import mod`` -> pkg.mod)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    # Imports under `if TYPE_CHECKING:` never run: they name a type for the checker, not a dependency.
    type_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
        for statement in node.body
        for child in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, name, modules) for name, path in modules.items()}


def rank(module: str) -> tuple[int, int]:
    """(top-level layer, infra sub-layer): a module may import only modules of equal or higher rank."""
    parts = module.split(".")
    top = LAYERS.index(parts[0])
    if parts[0] == "infra":
        sub = (
            INFRA_LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in INFRA_LAYERS else len(INFRA_LAYERS)
        )
        return top, sub
    return top, 0


def test_every_module_imports_only_its_own_layer_or_lower_ones():
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if rank(target) < rank(module)
    ]
    assert upward == [], "imports against the layer order:\n" + "\n".join(upward)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None (iterative DFS, three colours)."""
    colour: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child) :] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_no_import_cycles_between_project_modules():
    graph = import_graph()
    # A package's __init__ importing its own submodules is how packages re-export, not a cycle
    # a reader has to untangle; every other edge counts.
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_rank_orders_the_infra_subpackages():
    assert rank("infra.soak.run") < rank("infra.demo.run") < rank("infra.ops.audit_report")
    assert rank("infra.demo.loop") < rank("infra.labelling.sample") < rank("infra.ops.review")
    assert rank("infra.ops.audit_report") < rank("infra.local.stack") < rank("infra.deploy.policy")
    assert rank("infra.deploy.policy") < rank("infra") < rank("training.fit.crossval")


@pytest.mark.parametrize("top", LAYERS)
def test_no_folder_holds_more_than_about_twenty_modules(top):
    crowded = {
        str(folder.relative_to(REPO)): count
        for folder in [REPO / top, *(p for p in (REPO / top).rglob("*") if p.is_dir())]
        if "__pycache__" not in folder.parts
        and (count := len([p for p in folder.glob("*.py") if p.name != "__init__.py"]))
        > MAX_MODULES_PER_FOLDER
    }
    assert crowded == {}
