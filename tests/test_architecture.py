"""Boundaries the architecture promises, checked on the real modules."""

from __future__ import annotations

import subprocess
import sys


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
