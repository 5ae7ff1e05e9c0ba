"""Calls to the operator's tool endpoints: a signed JSON POST, on a pool shared by the process.

The Llm actor submits a call and waits on it with its own clock (the caller hears a
holding line when it runs long), so the HTTP request runs on a pool thread. The
pool is process-wide and small: tool calls wait on the network, not the CPU, and
a gateway with a handful of calls rarely has more than one in flight.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from actors.core.agent import Tool
from actors.core.tool_signature import HEADER, sign

log = logging.getLogger(__name__)

MAX_RESULT_BYTES = 64 * 1024
TOOL_WORKERS = 4
CALL_HEADER = "X-Earshot-Call"  # the call a request is for, for the operator's logs


class ToolError(Exception):
    """A tool that did not answer usefully; the message says how, never echoing its body."""


class ToolRunner:
    def __init__(self, secret: bytes, gateway_url: str, workers: int = TOOL_WORKERS) -> None:
        self.secret = secret
        self.gateway_url = gateway_url.rstrip("/")  # what ``{gateway}`` in a tool URL means
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tool")

    def submit(self, tool: Tool, arguments: dict[str, Any], call_sid: str) -> Future[Any]:
        return self._pool.submit(self.call, tool, arguments, call_sid)

    def call(self, tool: Tool, arguments: dict[str, Any], call_sid: str) -> dict[str, Any]:
        """POST ``arguments`` to the tool; its JSON object answer, or ``ToolError``."""
        body = json.dumps(arguments, separators=(",", ":")).encode()
        url = tool.url.replace("{gateway}", self.gateway_url, 1)
        request = Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                HEADER: sign(self.secret, body, int(time.time())),
                CALL_HEADER: call_sid,
            },
        )
        try:
            with urlopen(request, timeout=tool.timeout_s) as response:
                raw = response.read(MAX_RESULT_BYTES + 1)
        except HTTPError as error:
            raise ToolError(f"{tool.name} answered HTTP {error.code}") from None
        except (URLError, OSError) as error:  # refused, unreachable, timed out
            reason = getattr(error, "reason", error)
            raise ToolError(f"{tool.name} unreachable: {reason}") from None
        if len(raw) > MAX_RESULT_BYTES:
            raise ToolError(f"{tool.name} answered more than {MAX_RESULT_BYTES} bytes")
        try:
            result = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ToolError(f"{tool.name} answered something that is not JSON") from None
        if not isinstance(result, dict):
            raise ToolError(f"{tool.name} answered JSON that is not an object")
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
