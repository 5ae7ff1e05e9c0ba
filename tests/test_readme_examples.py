"""The README's own examples, run as written against a fresh gateway (issue 16).

A newcomer copies the README's commands and compares what they see with what it shows.
Here every ``text`` block that starts with ``$ `` is a command and its sample output:
each command runs (``simulate`` against a fresh ``earshot serve`` with the embedded
models and the bundled receptionist, ``replay`` on the call it made, ``serve`` with the
README's agent file broken as it says), and each line it prints must have the shape of a
line the README shows (numbers, ids and quoted text may differ; a kind of line the README
never shows may not appear), its first and last lines those of the sample; ``simulate``
prints every line the sample shows.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.gateway import AUTH_TOKEN, DATA_KEY_ENV, REPO, free_port, serve_process

BUNDLED_AGENT = REPO / "gateway" / "agents" / "receptionist.toml"
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")
LATENCIES = re.compile(r"^\s+[a-z_]+ -?\d+ ms(, [a-z_]+ -?\d+ ms)*$")


README = (REPO / "README.md").read_text()


def examples() -> list[tuple[list[str], list[str]]]:
    """Each ``$ command`` block of the README: the command's words (any ``NAME=value``
    before it included) and its sample output."""
    found = []
    for block in re.findall(r"```text\n(.*?)```", README, re.S):
        lines = block.rstrip("\n").split("\n")
        if lines[0].startswith("$ "):
            found.append((shlex.split(lines[0][2:]), lines[1:]))
    return found


def shape(line: str) -> str:
    """A line with what varies from call to call taken out: ids, quoted text, numbers,
    whether a cut fell mid-word, the reason an agent turn was said."""
    if LATENCIES.match(line):
        return "<latencies>"
    if line.startswith("  tool "):
        return "  tool <name>(<arguments>) -> <result>"
    line = CALL_SID.sub("<call>", line)
    line = QUOTED.sub("<quoted>", line)
    # So does where a cut fell: mid-word, or (a caller cutting in as the line ends) after it.
    line = line.replace(" (cut mid-word: <quoted>)", "")
    # Why the agent spoke varies too (a filler when an answer runs late, a hold line).
    line = re.sub(r"^(  agent #\d+) \([a-z_]+\)", r"\1 (<reason>)", line)
    return re.sub(r"-?\d+(\.\d+)?", "<n>", line)


def run(words: list[str], env: dict[str, str], cwd: Path, *, fails: bool = False) -> list[str]:
    """Run an ``earshot`` command line as the README writes it; what it printed, by line
    (stdout, or stderr for a command that ``fails``: then it must print nothing else)."""
    assignments = [word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word)]
    words = words[len(assignments) :]
    assert words[0].endswith("earshot"), words
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *words[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(REPO), **env, **dict(assignments)},
    )
    printed, other = (done.stderr, done.stdout) if fails else (done.stdout, done.stderr)
    assert (done.returncode != 0) == fails and not other, (done.stdout, done.stderr)
    return printed.rstrip("\n").split("\n")


def assert_shaped_like(output: list[str], sample: list[str], *, every_line: bool) -> None:
    """No kind of line the sample lacks; with ``every_line``, none of the sample's missing
    (a replay's lines depend on the call: a filler, a tool, a cut mid-word)."""
    shapes = {shape(line) for line in sample}
    unshown = [line for line in output if shape(line) not in shapes]
    assert not unshown, f"lines the README does not show: {unshown}\n(output: {output})"
    assert shape(output[0]) == shape(sample[0]) and shape(output[-1]) == shape(sample[-1])
    if every_line:
        missing = shapes - {shape(line) for line in output}
        assert not missing, f"lines the README shows, not printed: {missing}\n{output}"


def test_the_readmes_call_examples_print_what_the_readme_shows(tmp_path: Path) -> None:
    (simulate, simulate_sample), (replay, replay_sample), _ = examples()
    assert simulate[1:2] == ["simulate"] and replay[1:2] == ["replay"], (simulate, replay)
    port = free_port()
    env = {
        "EARSHOT_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        **DATA_KEY_ENV,
    }
    served = {**env, "EARSHOT_CONVERSE": "1", "EARSHOT_AGENT": str(BUNDLED_AGENT)}
    with serve_process(port, served, tmp_path / "gateway.log"):
        said = run([*simulate, "--url", f"http://127.0.0.1:{port}"], env, tmp_path)
    assert_shaped_like(said, simulate_sample, every_line=True)
    assert (tmp_path / "heard.wav").stat().st_size > 44  # --out heard.wav, in the cwd
    call_sid = CALL_SID.findall(said[-1])[0]
    replayed = run([CALL_SID.sub(call_sid, word) for word in replay], env, tmp_path)
    assert_shaped_like(replayed, replay_sample, every_line=False)
    assert replayed[0].startswith(f"call {call_sid}")


def test_the_readmes_broken_agent_file_is_refused_as_the_readme_shows(tmp_path: Path) -> None:
    """The README's agent file, with the mistake its example names, stops ``serve``."""
    *_, (serve, sample) = examples()
    agent_file = re.search(r"```toml\n(.*?)```", README, re.S)
    assert agent_file is not None
    (tmp_path / "shop.toml").write_text(
        agent_file.group(1).replace("reprompt_s = 8 ", 'reprompt_s = "8 s"')
    )
    assert run(serve, {}, tmp_path, fails=True) == sample
