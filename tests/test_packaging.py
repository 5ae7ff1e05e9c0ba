"""The wheel: the five folders of code installed whole, and runnable away from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = ("actors", "events", "projections", "gateway", "migrations")
NOT_SOURCE = (
    ".venv",
    ".git",
    "var",
    "build",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: setuptools would reuse a checkout's stale build/ folder.
    source = tmp_path_factory.mktemp("source") / "earshot"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("earshot-*.whl")
    return built


def test_the_wheel_installs_the_five_folders_with_every_module(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {*INSTALLED, wheel_dist_info(wheel)}
    ours = {
        path.relative_to(ROOT).as_posix()
        for folder in INSTALLED
        for path in (ROOT / folder).glob("**/*")
        if path.is_file()
        and path.suffix in (".py", ".toml", ".html", ".mako")
        and "__pycache__" not in path.parts
    }
    assert sorted(ours - set(names)) == []  # a new folder of code not in pyproject's packages


def test_the_installed_gateway_finds_its_migrations_and_agent_away_from_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "-t",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    script = (
        "import events.database as d, gateway.agent_file as a\n"
        "print(d.migrations_dir(), a.BUNDLED_AGENT.is_file(), (d.migrations_dir() / 'env.py')"
        ".is_file())"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out == [str(target / "migrations"), "True", "True"]


def wheel_dist_info(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name}-{version}.dist-info"
