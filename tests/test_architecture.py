"""Boundaries the architecture promises, checked on the real modules."""

from __future__ import annotations

import ast
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
