"""The import rules the README's architecture table states, held against every import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("events", "projections", "actors", "gateway", "migrations", "tests", "bench")

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


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name.split(".")[0] in OURS]


def test_no_package_imports_above_its_floor() -> None:
    broken = []
    for source in sorted(ROOT.glob("*/**/*.py")):
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
