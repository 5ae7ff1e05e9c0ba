"""The voice webhook: check Twilio's signature, answer with TwiML that connects a Media Stream.

Twilio signs the *public* URL it called (the gateway usually sits behind a
proxy), so the signature is checked against ``Settings.public_url``, never the
Host header.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from gateway.config import Settings
from gateway.stream_tokens import StreamTokens

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 64 * 1024


class WebhookRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def answer_call(
    settings: Settings, tokens: StreamTokens, path: str, body: bytes, signature: str | None
) -> str:
    """TwiML for a signed ``POST /twilio/voice``; raises ``WebhookRefused`` otherwise."""
    if len(body) > MAX_WEBHOOK_BODY:
        raise WebhookRefused(413, "webhook body too large")
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise WebhookRefused(400, "webhook body is not UTF-8") from None
    if not signature:
        raise WebhookRefused(403, "missing X-Twilio-Signature")
    url = settings.public_url + path
    if not RequestValidator(settings.twilio_auth_token).validate(url, params, signature):
        raise WebhookRefused(403, "invalid X-Twilio-Signature")
    call_sid = params.get("CallSid", "")
    if not call_sid.startswith("CA") or len(call_sid) > 64:
        raise WebhookRefused(400, "missing or malformed CallSid")
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=settings.media_stream_url)
    stream.parameter(name="token", value=tokens.mint(call_sid))
    response.append(connect)
    return str(response)
