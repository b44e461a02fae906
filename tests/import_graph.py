"""What a script imports, directly or through the adaptune modules it uses: the import graph
the environment and packaging tests check requirements against."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"


def module_file(module: str) -> Path | None:
    """The file of an adaptune module (a package's __init__.py), or None."""
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path, module: str | None) -> tuple[set[str], set[str]]:
    """(required, optional) absolute module names imported anywhere in a file; an import inside
    a `try:` block is optional (the code works without it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    optional_nodes = {
        id(node)
        for tried in ast.walk(tree)
        if isinstance(tried, ast.Try)
        for stmt in tried.body
        for node in ast.walk(stmt)
    }
    required, optional = set(), set()
    package = module if path.name == "__init__.py" else (module or "").rpartition(".")[0]
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [base] + [
                f"{base}.{alias.name}"
                for alias in node.names
                if base.startswith("adaptune") and module_file(f"{base}.{alias.name}")
            ]
        (optional if id(node) in optional_nodes else required).update(names)
    return required, optional


def third_party_imports(script: Path) -> tuple[set[str], set[str]]:
    """Top-level names of the packages a script imports, directly or through adaptune modules."""
    required, optional, seen = set(), set(), set()
    pending = [(script, None, False)]
    while pending:
        path, module, is_optional = pending.pop()
        needed, maybe = imports_of(path, module)
        for name, name_optional in [(n, is_optional) for n in needed] + [(n, True) for n in maybe]:
            top = name.split(".")[0]
            if top == "adaptune":
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):
                    sub = ".".join(parts[:depth])
                    file = module_file(sub)
                    if file and (sub, name_optional) not in seen:
                        seen.add((sub, name_optional))
                        pending.append((file, sub, name_optional))
            elif top in sys.stdlib_module_names or top in ("_checkout", "__future__"):
                continue
            else:
                (optional if name_optional else required).add(top)
    return required, optional - required


def modules_reached(scripts: list[Path]) -> set[Path]:
    """The adaptune files the scripts import, directly or through each other (imports inside
    functions included): the code a job of those scripts can run."""
    files: set[Path] = set()
    pending = [(script, None) for script in scripts]
    while pending:
        path, module = pending.pop()
        required, optional = imports_of(path, module)
        for name in required | optional:
            if name.split(".")[0] != "adaptune":
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                sub = ".".join(parts[:depth])
                file = module_file(sub)
                if file and file not in files:
                    files.add(file)
                    pending.append((file, sub))
    return files


def has_code(path: Path) -> bool:
    """Whether a file holds more than a docstring (a package's __init__.py may hold only that)."""
    tree = ast.parse(path.read_text())
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    return bool(body)
