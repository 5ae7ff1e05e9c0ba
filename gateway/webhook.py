"""The voice webhooks: check Twilio's signature, answer with TwiML that connects a Media
Stream (or, past capacity, a busy signal), and, once the stream has ended, say what comes
next: hang up, or dial the person the call is transferred to.

``<Connect action=".../twilio/after">``: when a Media Stream ends (the gateway closed it
after the agent's goodbye or its "putting you through" was heard), Twilio carries on with
the TwiML the action URL returns. That answer is read from the call's events
(``CallTransferred``), so any gateway sharing the store can give it, not only the one
that served the stream.

Twilio signs the *public* URL it called (the gateway usually sits behind a
proxy), so the signature is checked against ``Settings.public_url``, never the
Host header.

Busy is ``<Reject reason="busy"/>``: the caller hears their carrier's busy tone,
which every phone user understands as "try again later", and the call is never
answered, so it costs no minutes and holds no media resources while the process is
full. (``<Say>`` then ``<Hangup/>`` would answer the call to explain, using a
Twilio text-to-speech voice and a billed minute at the moment we are overloaded.)
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from events.catalogue import AnyEvent, CallTransferred
from gateway.config import Settings
from gateway.stream_tokens import StreamTokens

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 64 * 1024
AFTER_STREAM_PATH = "/twilio/after"


class WebhookRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verified_call(
    settings: Settings, path: str, body: bytes, signature: str | None
) -> dict[str, str]:
    """The parameters of a signed ``POST /twilio/voice``; raises ``WebhookRefused`` otherwise."""
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
    return params


def connect_stream(settings: Settings, tokens: StreamTokens, params: dict[str, str]) -> str:
    """TwiML that connects the call to our Media Stream, with its one-use stream token and
    the caller's and the called number (the stream's ``start`` carries them back, so the
    process that takes the stream records them in ``CallStarted``)."""
    response = VoiceResponse()
    connect = Connect(action=settings.public_url + AFTER_STREAM_PATH, method="POST")
    stream = connect.stream(url=settings.media_stream_url)
    stream.parameter(name="token", value=tokens.mint(params["CallSid"]))
    stream.parameter(name="from", value=params.get("From", "")[:32])
    stream.parameter(name="to", value=params.get("To", "")[:32])
    response.append(connect)
    return str(response)


def busy() -> str:
    """TwiML for a call over capacity: the caller's busy tone, the call never answered."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def after_stream(events: list[AnyEvent]) -> str:
    """TwiML for the call once its stream has ended: dial the transfer's target if the
    call was transferred (a SIP URI in ``<Sip>``), else hang up. A call the store knows
    nothing of is hung up too: there is nobody to put it through to."""
    transfer = next((e for e in reversed(events) if isinstance(e, CallTransferred)), None)
    response = VoiceResponse()
    if transfer is None:
        response.hangup()
        return str(response)
    dial = Dial(answer_on_bridge=True)
    if transfer.target.startswith(("sip:", "sips:")):
        dial.sip(transfer.target)
    else:
        dial.number(transfer.target)
    response.append(dial)
    return str(response)
