"""Boundaries the architecture promises, checked on the real modules."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow  # starts a process
def test_the_service_never_imports_the_development_package() -> None:
    """Every module of `seqdream` imports without `seqdream_devkit` (world, tasks, parser, tiny pipelines)."""
    code = (
        "import importlib, pkgutil, sys, seqdream\n"
        "for module in pkgutil.walk_packages(seqdream.__path__, 'seqdream.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(len(sys.modules), sorted(m for m in sys.modules if m.startswith('seqdream_devkit')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    count, leaked = out.split(" ", 1)
    assert int(count) > 100 and leaked.strip() == "[]", out


def _part_imports() -> dict[str, set[str]]:
    """Which parts of `seqdream` (its top-level modules and packages) each part imports, lazily or not."""
    root = Path(__file__).resolve().parents[1] / "src" / "seqdream"
    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).with_suffix("").parts
        part = relative[0] if relative[0] != "__init__" else "seqdream"
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = (
                    [f"{node.module}.{alias.name}" for alias in node.names]
                    if node.module == "seqdream"
                    else [node.module]
                )
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("seqdream.") and name.split(".")[1] != part:
                    edges.setdefault(part, set()).add(name.split(".")[1])
    return edges


def test_the_parts_of_the_service_import_each_other_without_cycles() -> None:
    """Layers, bottom up: a part never reaches back to one that imports it (no cycle, lazy imports
    included), and nothing below the API or the command line imports them."""
    edges = _part_imports()
    assert {"api", "jobs", "engines", "storage", "db", "webhooks"} <= edges.keys() | {"db"}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            part = todo.pop()
            if part == goal:
                return True
            if part not in seen:
                seen.add(part)
                todo += edges.get(part, set())
        return False

    cycles = sorted(f"{a} -> {b} -> ... -> {a}" for a, targets in edges.items() for b in targets if reaches(b, a))
    assert cycles == [], cycles
    upward = sorted(f"{part} imports {top}" for part, targets in edges.items() for top in ("api", "cli")
                    if top in targets and part not in ("api", "cli"))  # fmt: skip
    assert upward == [], upward


@functools.cache
def _eager_imports(module: str, root: Path) -> frozenset[str]:
    """What a module of `seqdream` imports when it is imported: top-level statements only (lazy
    imports inside functions and `if TYPE_CHECKING:` blocks excluded), submodules resolved."""
    parts = module.split(".")[1:]
    path = root.joinpath(*parts)
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found: set[str] = set()
    todo = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.If | ast.Try):
            todo += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            todo += [statement for handler in getattr(node, "handlers", []) for statement in handler.body]
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return frozenset(found)


def _loaded_when_importing(start: str) -> set[str]:
    """Every module importing `start` loads: seqdream's own followed, others' top-level names."""
    root = Path(__file__).resolve().parents[1] / "src" / "seqdream"

    def exists(name: str) -> bool:
        path = root.joinpath(*name.split(".")[1:])
        return path.is_dir() or path.with_suffix(".py").is_file()

    def ours(name: str) -> bool:
        return name == "seqdream" or name.startswith("seqdream.")

    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if ours(name):
            parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]  # seqdream itself too
            todo += [found for found in _eager_imports(name, root) | set(parents) if not ours(found) or exists(found)]
    return {name if ours(name) else name.split(".")[0] for name in seen}


@pytest.mark.parametrize("entry", ["seqdream.cli.main", "seqdream.api.app", "seqdream.services"])
def test_the_api_and_the_command_line_load_without_torch(entry: str) -> None:
    """`seqdream keys create`, an API-only process and the app load no model library: torch and
    diffusers are imported by the engine that runs (a second or more of every command's start)."""
    loaded = _loaded_when_importing(entry)
    assert "seqdream.jobs.store" in loaded or entry == "seqdream.cli.main"  # the walk does follow seqdream
    heavy = sorted(loaded & {"torch", "diffusers", "transformers", "accelerate", "torchao", "nudenet"})
    assert heavy == [], f"{entry} imports {heavy} when it loads"
