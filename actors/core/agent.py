"""What an agent is and may do on a call, as typed data: persona and greeting, the lines it
says when it ends or hands on a call, how long a caller may stay silent, where a transfer
goes, what each key on the keypad does, and how long a call may last.

Pure data, read by the call's policy; ``gateway/agent_file.py`` decodes it from the
operator's TOML or YAML file, and msgspec runs the checks here at decoding time, so a
mistake is reported with its line before the first call.
"""

from __future__ import annotations

import re

import msgspec

DIGITS = "0123456789*#"
END_CALL = "end_call"
TRANSFER = "transfer"
TRANSFER_CALL = "transfer_call"
BUILT_IN_ACTIONS = (END_CALL, TRANSFER_CALL)  # tools the model may call that Earshot carries out
HEARD_AS = ("count", "time", "name")  # the readers of ``actors/core/tool_due.py``
# A number Twilio's <Dial> takes (E.164), or a SIP URI (<Dial><Sip>).
TARGET = re.compile(r"^(\+[1-9]\d{6,14}|sips?:[^\s<>&\"']+@[^\s<>&\"']+)$")


class Silence(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """After ``reprompt_s`` of the caller's silence (with the floor theirs) the agent asks
    ``reprompt``; after ``hangup_s`` of it, it says ``goodbye`` and ends the call."""

    reprompt_s: float = 8.0
    hangup_s: float = 20.0
    reprompt: str = "Are you still there?"
    goodbye: str = "I haven't heard anything for a while, so I'll hang up now. Goodbye."

    def __post_init__(self) -> None:
        if not 0 < self.reprompt_s < self.hangup_s:
            raise ValueError("reprompt_s must be above 0 and below hangup_s")


class ToolParameter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str  # a JSON Schema type: string, integer, number, boolean
    description: str = ""
    required: bool = True
    enum: list[str] | None = None
    # How the caller says it: "count" (how many people), "time" or "name"; with the tool's
    # ``asked_by``, the model must call the tool once every required value was said
    # (``actors/core/tool_due.py``).
    heard_as: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ("string", "integer", "number", "boolean"):
            raise ValueError(f"parameter type {self.type!r}: string, integer, number or boolean")
        if self.heard_as is not None and self.heard_as not in HEARD_AS:
            raise ValueError(f"heard_as {self.heard_as!r}: {', '.join(HEARD_AS)}")


class Tool(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An operator's endpoint the model may call: Earshot POSTs the arguments as JSON, signed
    (``actors/core/tool_signature.py``), and waits at most ``timeout_s``; past ``HOLD_AFTER_S``
    the caller hears ``holding``. A JSON answer with a ``say`` field is spoken as it is
    (the operator words its own confirmations); otherwise the model words the result.
    ``{gateway}`` in the URL stands for the gateway's own address (the bundled tools)."""

    name: str
    description: str
    url: str
    parameters: dict[str, ToolParameter] = {}
    timeout_s: float = 5.0
    holding: str = "One moment, please."
    # Words a caller asks for it with ("book", "reservation"): see ``ToolParameter.heard_as``.
    asked_by: list[str] = []

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", self.name):
            raise ValueError(f"tool name {self.name!r}: lower case letters, digits and _")
        if self.name in BUILT_IN_ACTIONS:
            raise ValueError(f"tool name {self.name!r} is a built-in action")
        if not self.url.startswith(("https://", "http://", "{gateway}/")):
            raise ValueError(f"tool {self.name!r}: url must be http(s):// or {{gateway}}/...")
        if not 0 < self.timeout_s <= 30:
            raise ValueError(f"tool {self.name!r}: timeout_s must be within (0, 30]")


class Agent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    system_prompt: str
    greeting: str
    # Said, heard in full, before the stream closes: the caller said goodbye, or a key
    # mapped to end_call was pressed.
    goodbye: str = "Thank you for calling. Goodbye!"
    # Said before a transfer; the after-stream TwiML then dials the target.
    transferring: str = "Of course. I'm putting you through now, please hold."
    # Said when the first audio of a reply is late (a tool, a busy LLM): this long after the
    # caller's turn ended with nothing heard yet (0: never). It stops at a comma, or after
    # its last word, as soon as the reply's audio is ready ("Mm, <the answer>").
    filler: str = "Mm, let me see."
    filler_after_s: float = 0.5  # past half a second of silence a person says "mm"
    # Said first, before anything of the caller is kept, when the gateway retains audio.
    consent_announcement: str = "This call is recorded."
    max_call_s: float = 1800.0  # a call this long hears a goodbye (from 10 s before), ends
    silence: Silence = Silence()
    # Where a transfer goes, by name: an E.164 number or a SIP URI. The first is the
    # default (a caller asking for "a person").
    transfer_targets: dict[str, str] = {}
    # A key on the keypad and what it does: "end_call", "transfer" (the default target) or
    # "transfer:NAME". A key not listed reaches the model as text ("the caller pressed 1").
    digits: dict[str, str] = {}
    # The operator's endpoints the model may call, and which built-in actions it may take
    # (end_call; transfer_call, offered only with transfer_targets).
    tools: list[Tool] = []
    actions: tuple[str, ...] = ("end_call", "transfer_call")

    def __post_init__(self) -> None:
        if self.max_call_s <= 0:
            raise ValueError("max_call_s must be above 0")
        for name, target in self.transfer_targets.items():
            if not TARGET.match(target):
                raise ValueError(
                    f"transfer target {name!r} is {target!r}: expected an E.164 number "
                    "(+15551234567) or a SIP URI (sip:desk@example.com)"
                )
        for digit, action in self.digits.items():
            if len(digit) != 1 or digit not in DIGITS:
                raise ValueError(f"digit {digit!r} is not a key on a phone's keypad")
            self.digit_target(action)  # raises for an unknown action or target
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {names}")
        for action in self.actions:
            if action not in BUILT_IN_ACTIONS:
                raise ValueError(f"unknown action {action!r}: {', '.join(BUILT_IN_ACTIONS)}")

    def digit_target(self, action: str) -> str | None:
        """The transfer target an action names (None for end_call); ValueError if unknown."""
        if action == END_CALL:
            return None
        kind, _, name = action.partition(":")
        if kind != TRANSFER:
            raise ValueError(f"unknown action {action!r}: expected end_call or transfer[:NAME]")
        if not self.transfer_targets:
            raise ValueError(f"{action!r}: no transfer_targets are configured")
        if name and name not in self.transfer_targets:
            raise ValueError(f"{action!r}: no transfer target named {name!r}")
        return self.transfer_targets[name] if name else self.default_target

    @property
    def default_target(self) -> str | None:
        return next(iter(self.transfer_targets.values()), None)
