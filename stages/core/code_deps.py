"""The code each stage runs, as files DVC compares: `data/code/<task>/<step>.json` holds the
sha256 of every file of `stages/` that `python -m stages <step> <task>` can execute — the step
module, what it imports at any depth (imports inside functions too), the packages' __init__
files that run first, the CLI's module-level imports, and the `data/` folder of a module that
reads files next to itself (`Path(__file__)`). The `source@<task>` stage rewrites them on every
repro, so a stage re-runs when, and only when, code it runs changed.

Written here because DVC cannot express it: a `foreach` stage's deps cannot come from a list
(DVC 3.67: "Cannot interpolate data of type 'list'"), and depending on whole packages re-ran
every stage of a task on any edit."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

from stages.core.fsio import dump_json, write_text

PACKAGE = "stages"
# `python -m stages` runs these first; only their module-level imports count, because their
# other imports serve other commands (registry, summary, ...)
ENTRY = ("stages.__main__", "stages.cli")
STEPS = ("download", "validate", "preprocess", "train", "evaluate", "report")


def module_file(root: Path, name: str) -> Path | None:
    """The file of module `name` under `root` (the repository), or None for a name that is not
    a module (`from stages.core.fsio import dump_json` also yields `stages.core.fsio.dump_json`)."""
    path = root.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported(tree: ast.Module, name: str, is_package: bool, module_level: bool) -> set[str]:
    """The `stages` modules (and names that may be modules) a module imports."""
    nodes: Iterable[ast.AST] = tree.body if module_level else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return {n for n in found if n == PACKAGE or n.startswith(f"{PACKAGE}.")}


def code_files(root: Path, module: str) -> list[Path]:
    """Every file `python -m stages` runs (or reads) for the step module `module`."""
    files: set[Path] = set()
    seen: set[str] = set()

    def visit(name: str, module_level: bool) -> list[str]:
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        path = module_file(root, name)
        if path is None:
            return parents
        files.add(path)
        source = path.read_text(encoding="utf-8")
        if "Path(__file__)" in source and (path.parent / "data").is_dir():
            files.update(p for p in (path.parent / "data").rglob("*") if p.is_file())
        tree = ast.parse(source, filename=str(path))
        return [*parents, *imported(tree, name, path.name == "__init__.py", module_level)]

    todo = [found for entry in ENTRY for found in visit(entry, module_level=True)]
    todo.append(module)
    while todo:
        name = todo.pop()
        if name not in seen:
            todo += visit(name, module_level=False)
    return sorted(files)


def manifest(root: Path, task: str, step: str) -> dict:
    files = code_files(root, f"{PACKAGE}.{task}.{step}")
    return {
        "stage": f"{step}@{task}",
        "files": {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files
        },
    }


def manifest_path(root: Path, task: str, step: str) -> Path:
    return root / "data" / "code" / task / f"{step}.json"


def write_manifests(root: Path, task: str) -> None:
    """data/code/<task>/<step>.json for every step; unchanged code gives the same bytes."""
    for step in STEPS:
        path = manifest_path(root, task, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, dump_json(manifest(root, task, step)))
