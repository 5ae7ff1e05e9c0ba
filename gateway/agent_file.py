"""The agent file (``EARSHOT_AGENT``): one TOML or YAML file per agent, decoded by msgspec
into the typed ``Agent`` (``actors/core/agent.py`` says what each field does). What
differs between deployments of one agent (URLs, secrets, capacity) stays in the
environment.

A mistake in the file stops the gateway at start-up with the line it is on
(``AgentFileError``): a typo found by the first caller would be found too late.
The bundled default is the restaurant receptionist (``agents/receptionist.toml``).
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import msgspec.toml
import msgspec.yaml

from actors.core.agent import Agent

BUNDLED_AGENT = Path(__file__).resolve().parent / "agents" / "receptionist.toml"


class AgentFileError(Exception):
    """The agent file cannot be used; the message names the file and the line."""


def load_agent(path: Path) -> Agent:
    """The agent a TOML (``.toml``) or YAML (``.yaml``, ``.yml``) file describes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AgentFileError(f"{path}: cannot read the agent file ({exc.strerror})") from None
    yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        if yaml:
            return msgspec.yaml.decode(data, type=Agent)
        return msgspec.toml.decode(data, type=Agent)
    except msgspec.ValidationError as exc:
        line = _line_of(data.decode("utf-8", "replace"), str(exc), yaml=yaml)
        where = f"{path}, line {line}" if line else str(path)
        raise AgentFileError(f"{where}: {exc}") from None
    except msgspec.DecodeError as exc:  # a syntax error: the parser names the line itself
        raise AgentFileError(f"{path}: {exc}") from None


def bundled_agent() -> Agent:
    return load_agent(BUNDLED_AGENT)


def _line_of(text: str, message: str, *, yaml: bool) -> int | None:
    """The line of the key a msgspec error's path (``at `$.silence.reprompt_s```) names, or
    of an unknown field's key: found by reading keys in order, table by table."""
    path = re.search(r"at `\$((?:\.\w+|\[[^\]]*\])*)`", message)
    keys = re.findall(r"\.(\w+)|\[\"?([^\]\"]*)\"?\]", path.group(1)) if path else []
    names = [a or b for a, b in keys]
    unknown = re.search(r"unknown field `([^`]+)`", message)
    if unknown:
        names.append(unknown.group(1))
    lines = text.splitlines()
    # A check across fields, or inside a table msgspec does not name (``[...]``, a tool's
    # parameter): the line of the first value the message quotes.
    if not names or "..." in names:
        for quoted in re.findall(r"'([^']+)'", message):
            found = next((i for i, line in enumerate(lines) if quoted in line), None)
            if found is not None:
                return found + 1
        return None
    start = 0
    for depth, name in enumerate(names):
        found = _find_key(lines, start, name, names[:depth], yaml=yaml)
        if found is None:
            return start + 1 if depth else None
        start = found
    return start + 1


def _find_key(
    lines: list[str], start: int, name: str, parents: list[str], *, yaml: bool
) -> int | None:
    quoted = rf"[\"']?{re.escape(name)}[\"']?"
    if not yaml:
        table = re.compile(rf"^\s*\[\s*{re.escape('.'.join([*parents, name]))}\s*\]\s*(#.*)?$")
        for index, line in enumerate(lines):
            if table.match(line):
                return index
    key = re.compile(rf"^\s*{quoted}\s*[=:]")
    for index in range(start, len(lines)):
        if key.match(lines[index]):
            return index
    return None
