"""The import rules the README's architecture table states, held against every import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = ("events", "projections", "actors", "gateway", "migrations")  # as earshot.<name>
OURS = (*INSTALLED, "tests", "bench")

# package -> the packages of ours it may import (its own included)
ALLOWED = {
    "events": {"events"},
    "projections": {"events", "projections"},
    "actors.core": {"events", "projections", "actors.core"},
    "actors.engines": {"events", "projections", "actors.core", "actors.engines"},
    "actors": {"events", "projections", "actors.core", "actors.engines", "actors"},
    "gateway": {"events", "projections", "actors.core", "actors.engines", "actors", "gateway"},
}


def package_of(module: str) -> str:
    for package in ("actors.core", "actors.engines"):
        if module == package or module.startswith(package + "."):
            return package
    return module.split(".")[0]


def imported_names(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def imports(path: Path) -> list[str]:
    """Our modules ``path`` imports, named as in the tree (``earshot.`` taken off)."""
    names = [name.removeprefix("earshot.") for name in imported_names(path)]
    return [name for name in names if name.split(".")[0] in OURS]


def sources() -> list[Path]:
    """Every Python file of ours, by its real folder (``earshot/`` only links to them)."""
    return sorted(path for folder in OURS for path in (ROOT / folder).glob("**/*.py"))


def test_no_package_imports_above_its_floor() -> None:
    broken = []
    for source in sources():
        module = ".".join(source.relative_to(ROOT).with_suffix("").parts)
        package = package_of(module)
        if package not in ALLOWED:
            continue
        for imported in imports(source):
            if package_of(imported) not in ALLOWED[package]:
                broken.append(f"{module} imports {imported}")
    assert broken == []


def test_benches_use_only_the_shared_test_support() -> None:
    reaching = [
        f"{source.name} imports {imported}"
        for source in sorted((ROOT / "bench").glob("*.py"))
        for imported in imports(source)
        if imported.startswith("tests") and not imported.startswith("tests.support")
    ]
    assert reaching == []


def test_the_installed_packages_are_imported_under_earshot() -> None:
    """A bare ``import events`` would load a second copy of the module (or another project's
    ``events``): the installed names are ``earshot.events`` and its siblings."""
    bare = [
        f"{source.relative_to(ROOT)} imports {name}"
        for source in sources()
        for name in imported_names(source)
        if name.split(".")[0] in INSTALLED
    ]
    assert bare == []
