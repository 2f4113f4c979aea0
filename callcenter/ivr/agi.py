"""The engine's commands as AGI commands on one FastAGI session.

Every argument that carries data goes out double-quoted (``QuotedArg``) and
has been checked by :mod:`callcenter.ivr.sanitize` first.  The hand-off ends
with the dialplan contract of ``asterisk_conf/extensions.conf``: the CC_*
variables first, ``CC_RESULT`` last, so a half-finished hand-off is never
mistaken for a complete one.

Prompts get long watchdogs (a closed message can last a minute).  A prompt
that Asterisk cannot play (``result=-1`` on a live channel, see
:mod:`callcenter.asterisk.fastagi_session`) is never fatal for the call: it
is logged once per call at WARNING and not asked for again; a play node goes
on without it, and a menu or collect whose prompt is missing still reads
the caller's keys with ``WAIT FOR DIGIT`` (``GET DATA``'s timeouts, ``#``
ends the input).  ``GET DATA`` plays one file (``ast_app_getdata_full``
hands its whole argument to ``ast_streamfile``), so of several prompts all
but the last are played with ``STREAM FILE`` and any key as escape digit -
a key pressed there is the first key of the input, as in ``GET DATA``.
"""

from __future__ import annotations

import logging

from callcenter.asterisk.channel_vars import (
    CC_CALL_ID, CC_LANGUAGE, CC_PRIORITY, CC_QUEUE, CC_RESULT, CC_SKILLS, CC_TRANSFER_TO, RESULT_DONE,
    RESULT_ACD, RESULT_FALLBACK, RESULT_QUEUE, RESULT_TRANSFER,
)
from callcenter.asterisk.fastagi_protocol import QuotedArg
from callcenter.asterisk.fastagi_session import AGIPlaybackFailed, AGISession
from callcenter.ivr import sanitize
from ivr_flows import commands as cmd

logger = logging.getLogger(__name__)

PROMPT_TIMEOUT = 120.0
SAY_TIMEOUT = 60.0
VOICEMAIL_TIMEOUT = 900.0
#: ast_app_getdata_full without a timeout: 6 s for the first key, 2 s between keys.
FIRST_KEY_MS, NEXT_KEY_MS = 6000, 2000
END_KEY = "#"


class AgiChannel:
    """One call's channel, spoken to in engine commands."""

    def __init__(self, session: AGISession, call_id: str | None = None) -> None:
        self.session = session
        #: The call id for log lines (the handler sets the linkedid once known).
        self.call_id = call_id or session.uniqueid
        #: Sounds Asterisk could not play on this call: logged once, not asked for again.
        self.missing: set[str] = set()

    def _cannot_play(self, name: str, exc: AGIPlaybackFailed, then: str) -> None:
        if name in self.missing:
            return
        self.missing.add(name)
        logger.warning("call %s: prompt %r cannot be played (missing on the Asterisk box?): %s; %s",
                       self.call_id, name, exc, then)

    async def play(self, prompt: str) -> None:
        await self._stream(sanitize.prompt(prompt), "")

    async def _stream(self, name: str, escape_digits: str) -> str:
        """STREAM FILE ``name``: the escape key pressed, or ``""`` (also when it cannot be played)."""
        if name in self.missing:
            return ""
        try:
            return await self.session.stream_file(QuotedArg(name), QuotedArg(escape_digits),
                                                  timeout=PROMPT_TIMEOUT)
        except AGIPlaybackFailed as exc:
            self._cannot_play(name, exc, "skipped")
            return ""

    async def say_digits(self, digits: str) -> None:
        spoken = sanitize.say_digits(digits)
        try:
            await self.session.say_digits(QuotedArg(spoken), QuotedArg(""), timeout=SAY_TIMEOUT)
        except AGIPlaybackFailed as exc:
            self._cannot_play("digits/*", exc, "skipped")

    async def say_number(self, number: int) -> None:
        spoken = str(sanitize.say_number(number))
        try:
            await self.session.say_number(QuotedArg(spoken), QuotedArg(""), timeout=SAY_TIMEOUT)
        except AGIPlaybackFailed as exc:
            self._cannot_play("digits/*", exc, "skipped")

    async def say_currency(self, command: cmd.SayCurrency) -> None:
        units, cents = sanitize.amount(command.amount)
        await self.say_number(units)
        await self.play(command.unit_prompt)
        if cents:
            await self.say_number(cents)
            await self.play(command.cents_prompt)

    async def set_language(self, language: str) -> None:
        await self.session.set_variable("CHANNEL(language)", sanitize.language(language))

    async def get_digits(self, command: cmd.GetDigits) -> str:
        names = [sanitize.prompt(p) for p in command.prompts]
        for name in names[:-1]:
            key = await self._stream(name, sanitize.CALLER_KEYS)
            if key:
                return sanitize.caller_digits(await self._keys_after(key, command), command.max_digits)
        last = names[-1] if names else ""
        if not last or last in self.missing:
            raw = await self.wait_for_keys(command.timeout_ms, command.max_digits)
        else:
            watchdog = PROMPT_TIMEOUT + command.timeout_ms / 1000.0 * (command.max_digits + 1)
            try:
                raw = await self.session.get_data(QuotedArg(last), command.timeout_ms, command.max_digits,
                                                  timeout=watchdog)
            except AGIPlaybackFailed as exc:
                self._cannot_play(last, exc, "reading the caller's keys with WAIT FOR DIGIT")
                raw = await self.wait_for_keys(command.timeout_ms, command.max_digits)
        return sanitize.caller_digits(raw, command.max_digits)

    async def _keys_after(self, first: str, command: cmd.GetDigits) -> str:
        """The input that starts with ``first``, pressed during an earlier prompt."""
        if first == END_KEY:
            return ""
        return first + await self.wait_for_keys(command.timeout_ms, command.max_digits - 1, first_key=False)

    async def wait_for_keys(self, timeout_ms: int, max_digits: int, *, first_key: bool = True) -> str:
        """Up to ``max_digits`` keys with WAIT FOR DIGIT, the way GET DATA reads
        them (ast_readstring_full): ``timeout_ms`` for each key (without one,
        6 s for the first and 2 s for the next), ending at a timeout or at
        ``#``, which is not part of the input."""
        first_ms, next_ms = (timeout_ms, timeout_ms) if timeout_ms > 0 else (FIRST_KEY_MS, NEXT_KEY_MS)
        keys = ""
        while len(keys) < max_digits:
            key = await self.session.wait_for_digit(first_ms if first_key and not keys else next_ms)
            if not key or key == END_KEY:
                break
            keys += key
        return keys

    async def hand_off(self, handoff: cmd.HandOff, call_id: str, *, acd: bool = False) -> None:
        """Set the hand-off variables; ``CC_RESULT`` is ``acd`` (the daemon routes) or ``queue`` (Queue())."""
        values = [(CC_QUEUE, sanitize.queue(handoff.queue)), (CC_SKILLS, sanitize.skills(handoff.skills)),
                  (CC_PRIORITY, str(sanitize.priority(handoff.priority))),
                  (CC_LANGUAGE, sanitize.language(handoff.language)), (CC_CALL_ID, call_id)]
        for name, value in values:
            await self.session.set_variable(name, value)
        await self.session.set_variable(CC_RESULT, RESULT_ACD if acd else RESULT_QUEUE)

    async def transfer(self, target: str, call_id: str) -> None:
        await self.session.set_variable(CC_TRANSFER_TO, sanitize.transfer_target(target))
        await self.session.set_variable(CC_CALL_ID, call_id)
        await self.session.set_variable(CC_RESULT, RESULT_TRANSFER)

    async def voicemail(self, mailbox: str) -> bool:
        """Run VoiceMail(mailbox,u); False when Asterisk has no VoiceMail application."""
        reply = await self.session.command("EXEC", "VoiceMail", QuotedArg(f"{sanitize.mailbox(mailbox)},u"),
                                           timeout=VOICEMAIL_TIMEOUT)
        return reply.result != "-2"

    async def done(self) -> None:
        await self.session.set_variable(CC_RESULT, RESULT_DONE)

    async def fallback(self) -> None:
        await self.session.set_variable(CC_RESULT, RESULT_FALLBACK)

    async def hangup(self) -> None:
        await self.session.hangup()
