"""The engine's commands as AGI commands on one FastAGI session.

Every argument that carries data goes out double-quoted (``QuotedArg``) and
has been checked by :mod:`callcenter.ivr.sanitize` first.  The hand-off ends
with the dialplan contract of ``asterisk_conf/extensions.conf``: the CC_*
variables first, ``CC_RESULT`` last, so a half-finished hand-off is never
mistaken for a complete one.

Prompts get long watchdogs (a closed message can last a minute); a missing
prompt file is logged and skipped, never fatal for the call.
"""

from __future__ import annotations

import logging

from callcenter.asterisk.channel_vars import (
    CC_CALL_ID, CC_LANGUAGE, CC_PRIORITY, CC_QUEUE, CC_RESULT, CC_SKILLS, CC_TRANSFER_TO, RESULT_DONE,
    RESULT_FALLBACK, RESULT_QUEUE, RESULT_TRANSFER,
)
from callcenter.asterisk.fastagi_protocol import AGIResult, QuotedArg
from callcenter.asterisk.fastagi_session import AGICommandFailed, AGIHangup, AGISession
from callcenter.ivr import sanitize
from ivr_flows import commands as cmd

logger = logging.getLogger(__name__)

PROMPT_TIMEOUT = 120.0
SAY_TIMEOUT = 60.0
VOICEMAIL_TIMEOUT = 900.0


def _not_hung_up(reply: AGIResult, name: str) -> AGIResult:
    if reply.result == "-1":
        raise AGIHangup(f"{name}: {reply.raw}")
    return reply


class AgiChannel:
    """One call's channel, spoken to in engine commands."""

    def __init__(self, session: AGISession) -> None:
        self.session = session

    async def play(self, prompt: str) -> None:
        name = sanitize.prompt(prompt)
        try:
            await self.session.stream_file(QuotedArg(name), QuotedArg(""), timeout=PROMPT_TIMEOUT)
        except AGICommandFailed:
            logger.warning("call %s: prompt %r is missing on the Asterisk box; skipped", self.session.uniqueid, name)

    async def say_digits(self, digits: str) -> None:
        reply = await self.session.command("SAY", "DIGITS", QuotedArg(sanitize.say_digits(digits)), QuotedArg(""),
                                           timeout=SAY_TIMEOUT)
        _not_hung_up(reply, "SAY DIGITS")

    async def say_number(self, number: int) -> None:
        reply = await self.session.command("SAY", "NUMBER", QuotedArg(str(sanitize.say_number(number))),
                                           QuotedArg(""), timeout=SAY_TIMEOUT)
        _not_hung_up(reply, "SAY NUMBER")

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
        prompts = "&".join(sanitize.prompt(p) for p in command.prompts)
        watchdog = PROMPT_TIMEOUT + command.timeout_ms / 1000.0 * (command.max_digits + 1)
        raw = await self.session.get_data(QuotedArg(prompts), command.timeout_ms, command.max_digits,
                                          timeout=watchdog)
        return sanitize.caller_digits(raw, command.max_digits)

    async def hand_off(self, handoff: cmd.HandOff, call_id: str) -> None:
        values = [(CC_QUEUE, sanitize.queue(handoff.queue)), (CC_SKILLS, sanitize.skills(handoff.skills)),
                  (CC_PRIORITY, str(sanitize.priority(handoff.priority))),
                  (CC_LANGUAGE, sanitize.language(handoff.language)), (CC_CALL_ID, call_id)]
        for name, value in values:
            await self.session.set_variable(name, value)
        await self.session.set_variable(CC_RESULT, RESULT_QUEUE)

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
