"""The agent file: the bundled receptionist loads, an operator's TOML or YAML file is used, and
a mistake stops the gateway at start-up naming the file and its line (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.core.intents import asks_for_a_person, says_goodbye
from gateway.agent_file import AgentFileError, bundled_agent, load_agent
from gateway.config import Settings

MINIMAL = 'name = "t"\nsystem_prompt = "You are terse."\ngreeting = "Hi."\n'


def test_the_bundled_receptionist_books_answers_and_puts_through() -> None:
    agent = bundled_agent()
    assert "receptionist" in agent.system_prompt and agent.greeting
    assert (agent.silence.reprompt_s, agent.silence.hangup_s) == (8.0, 20.0)
    assert agent.digit_target(agent.digits["0"]) == agent.default_target is not None
    assert Settings().agent == agent


def test_earshot_agent_names_the_file_the_gateway_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "name: shop\nsystem_prompt: You sell boats.\ngreeting: Boats, hello.\n"
        "silence:\n  reprompt_s: 5\n  hangup_s: 12\n"
        "transfer_targets:\n  sales: sip:sales@example.com\ndigits:\n  '1': transfer:sales\n"
    )
    monkeypatch.setenv("EARSHOT_AGENT", str(path))
    agent = Settings.from_env().agent
    assert (agent.greeting, agent.silence.hangup_s) == ("Boats, hello.", 12.0)
    assert agent.digit_target(agent.digits["1"]) == "sip:sales@example.com"
    assert Settings.from_env(greeting="Other.").agent.system_prompt == "You sell boats."


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("wrong type", MINIMAL + "\n[silence]\nreprompt_s = 'eight'\n", "line 6: Expected `float`"),
        (
            "table with a comment",
            MINIMAL + "[silence]  # the caller's\nreprompt_s = 'eight'  # seconds\n",
            "line 5: Expected `float`",
        ),
        ("unknown key", MINIMAL + "greting = 'typo'\n", "line 4: Object contains unknown field"),
        ("silences", MINIMAL + "[silence]\nreprompt_s = 30\n", "line 4: reprompt_s must be"),
        (
            "target",
            MINIMAL + "[transfer_targets]\ndesk = '5550100'\n",
            "line 5: transfer target 'desk' is '5550100'",
        ),
        ("digit", MINIMAL + "[digits]\n0 = 'dance'\n", "line 5: unknown action 'dance'"),
        ("no target", MINIMAL + "[digits]\n0 = 'transfer'\n", "no transfer_targets"),
        ("syntax", MINIMAL + "max_call_s = = 3\n", "line 4"),
        (
            "heard_as",
            MINIMAL + "[[tools]]\nname = 'b'\ndescription = 'd'\nurl = 'https://x.test'\n"
            "[tools.parameters.n]\ntype = 'integer'\nheard_as = 'colour'\n",
            "line 10: heard_as 'colour': count, time, name",
        ),
        ("missing", 'name = "t"\n', "missing required field `system_prompt`"),
    ],
)
def test_a_mistake_names_the_file_and_the_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(AgentFileError) as refused:
        load_agent(path)
    assert str(refused.value).startswith(str(path)), refused.value
    assert expected in str(refused.value), refused.value


def test_a_yaml_mistake_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text("name: t\nsystem_prompt: p\ngreeting: g\nsilence:\n  hangup_s: often\n")
    with pytest.raises(AgentFileError, match=r"line 5: Expected `float`"):
        load_agent(path)


def test_a_missing_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(AgentFileError, match="cannot read the agent file"):
        load_agent(tmp_path / "nowhere.toml")


@pytest.mark.parametrize(
    "text", ["Thanks, bye.", "Okay, thank you very much. Goodbye!", "Bye-bye.", "bye"]
)
def test_goodbyes(text: str) -> None:
    assert says_goodbye(text) and not asks_for_a_person(text)


@pytest.mark.parametrize(
    "text",
    [
        "Can I book a table for two?",
        "I said goodbye to my friend and we came to the harbour for dinner last week.",
        "Is the bisque any good?",
        "Do you have people who speak French?",
        "",
    ],
)
def test_not_goodbyes_nor_requests_for_a_person(text: str) -> None:
    assert not says_goodbye(text) and not asks_for_a_person(text)


@pytest.mark.parametrize(
    "text",
    [
        "Could I speak to a person please?",
        "Can you transfer me to the front desk?",
        "I want to talk to someone.",
        "Put me through to the manager.",
        "Operator.",
    ],
)
def test_requests_for_a_person(text: str) -> None:
    assert asks_for_a_person(text) and not says_goodbye(text)
