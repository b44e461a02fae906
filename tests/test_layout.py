"""The package's layout is its architecture: stages in layers, each importing only its own layer
and those below it, no module-level import cycle, and no private name imported across modules."""

from __future__ import annotations

import ast

from import_graph import SRC, imports_of, module_file

# Lowest first. The approach registry and its contract (plain Python) sit in the core: the
# Snakefile and the study's names ask them; the approaches themselves sit above the model.
LAYERS = [
    ("core", ["adaptune", "adaptune.core", "adaptune.approaches", "adaptune.approaches.base"]),
    ("data", ["adaptune.data"]),
    ("hardware", ["adaptune.hardware"]),
    ("lm", ["adaptune.lm"]),
    ("approaches", ["adaptune.approaches."]),
    ("evaluate", ["adaptune.evaluate"]),
    ("train", ["adaptune.train"]),
    ("sweep", ["adaptune.sweep"]),
    ("report", ["adaptune.report"]),
    ("openai", ["adaptune.openai"]),
    ("cli", ["adaptune.cli", "adaptune.__main__"]),
]


def module_name(path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer index of a module: an exact name, else its longest matching package prefix."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact = module == prefix
            within = prefix.endswith(".") and module.startswith(prefix)
            package = module.startswith(prefix + ".") and not prefix.endswith(".")
            if (exact or within or package) and len(prefix) > best_length:
                best, best_length = index, len(prefix) + (1 if exact else 0)
    assert best is not None, f"{module}: in no layer of tests/test_layout.py"
    return best


def adaptune_imports(module: str) -> set[str]:
    """The adaptune modules a module imports anywhere in it (functions included)."""
    required, optional = imports_of(MODULES[module], module)
    return {name for name in required | optional if name in MODULES}


def module_level_imports(module: str) -> set[str]:
    """The adaptune modules a module imports when it is imported (not inside functions)."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES and name != module}


def test_every_module_has_a_layer_and_no_import_runs_upward():
    upward = []
    for module in MODULES:
        for imported in adaptune_imports(module):
            if layer_of(imported) > layer_of(module):
                upward.append(
                    f"{module} ({LAYERS[layer_of(module)][0]}) imports {imported} "
                    f"({LAYERS[layer_of(imported)][0]})"
                )
    assert not upward, "\n".join(upward)


def test_the_layers_tell_a_stage_from_the_core():
    """The registry is core and an approach above it; the train stage is above the core."""
    assert layer_of("adaptune.core.io") < layer_of("adaptune.train.run")
    assert layer_of("adaptune.approaches") < layer_of("adaptune.approaches.lora")
    assert "adaptune.approaches.adapters" in adaptune_imports("adaptune.train.run")


def test_no_module_level_import_cycle():
    graph = {module: module_level_imports(module) for module in MODULES}
    state: dict[str, str] = {}

    def visit(module, path):
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                raise AssertionError(" -> ".join(path + [module, imported]))
            if imported not in state:
                visit(imported, path + [module])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [])


def test_no_private_name_is_imported_from_another_module():
    roots = [SRC, SRC.parents[1] / "tests", SRC.parents[1] / "bench", SRC.parents[1] / "workflow"]
    private = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("adaptune"):
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            private.append(f"{path}: {node.module}.{alias.name}")
    assert not private, "\n".join(private)


def test_every_stage_package_says_what_it_holds():
    for module, path in MODULES.items():
        if path.name == "__init__.py" and module != "adaptune":
            assert ast.get_docstring(ast.parse(path.read_text())), f"{path}: no docstring"
            assert module_file(module) == path


def test_development_md_counts_the_modules_a_tweet_crosses():
    """docs/development.md's count of the modules on a tweet's way from the CSV to its report
    row is the import graph's."""
    import re

    from import_graph import has_code, modules_reached

    repo = SRC.parent
    scripts = [
        repo / "workflow" / "scripts" / f"{name}.py"
        for name in ("sample_splits", "format_prompts", "train", "evaluate", "report")
    ]
    with_code = [path for path in modules_reached(scripts) if has_code(path)]
    text = " ".join((repo / "docs" / "development.md").read_text().split())
    stated = re.search(r"those (\d+) scripts and (\d+) modules with code", text)
    assert stated, "docs/development.md: the sentence counting a tweet's modules is gone"
    assert (int(stated.group(1)), int(stated.group(2))) == (len(scripts), len(with_code))
