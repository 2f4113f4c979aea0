"""Every AMI action the daemon sends, with the shape of Asterisk's reply.

An action is answered either by ONE response, or by a response with
``EventList: start`` followed by events and a completing event
(``EventList: Complete``, ``ListItems: N``).  The client decides which from
this table alone, never from the reply's text: panoramisk guesses from the
``Message:`` ("... will follow", "Added ... to queue", "... successfully
queued") and so waits forever for the end of a list after QueueAdd,
Originate and Atxfer, which are single replies.

Every entry was checked against Asterisk 22.10.1 as the ``cti`` user
(tests/test_real_asterisk_ami.py, whose docstring lists the real replies).
An action that is not here is refused before it is sent: whoever adds one
looks up its real reply shape first and adds a test for it.  (Sending an
unknown action as a single reply would look right until it is a list: the
caller would get the ``EventList: start`` response as if it were the answer
and the items would leak to the event listener.)

Names are matched case-insensitively, as Asterisk does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


class UnknownAMIAction(ValueError):
    """The daemon has no declared reply shape for this action; it is not sent."""


@dataclass(frozen=True)
class ActionSpec:
    """How Asterisk answers ``name``: one response, or a list ending with the event ``complete``."""

    name: str
    complete: str | None = None

    @property
    def is_list(self) -> bool:
        return self.complete is not None


def _single(name: str) -> ActionSpec:
    return ActionSpec(name)


def _list(name: str, complete: str) -> ActionSpec:
    return ActionSpec(name, complete)


_SPECS = (
    # the link itself
    _single("Login"),              # Authentication accepted | Authentication failed (then Asterisk closes)
    _single("Logoff"),             # Response: Goodbye, then Asterisk closes
    _single("Ping"),               # Ping: Pong, Timestamp
    _single("CoreStatus"),         # CoreStartupDate/Time, CoreReloadDate/Time, CoreCurrentCalls ...
    # the resync snapshot and supervision
    _list("CoreShowChannels", "CoreShowChannelsComplete"),
    _list("QueueStatus", "QueueStatusComplete"),    # an unknown Queue: an empty list, not an error
    _list("QueueSummary", "QueueSummaryComplete"),
    _list("Status", "StatusComplete"),              # an unknown Channel: Response: Error, no list
    # queue members (agent log-in, pause)
    _single("QueueAdd"),           # Added interface to queue
    _single("QueueRemove"),        # Removed interface from queue
    _single("QueuePause"),         # Interface paused successfully / Interface unpaused successfully
    _single("QueuePenalty"),       # Interface penalty set successfully
    _single("QueueLog"),           # Event added successfully
    # calls
    _single("Originate"),          # always Async: "Originate successfully queued"; the outcome is the
                                   # OriginateResponse EVENT (same ActionID), delivered to the listener
    _single("Redirect"),           # Redirect successful / Dual Redirect successful
    _single("Setvar"),             # Variable Set
    _single("Getvar"),             # Variable, Value
    _single("Hangup"),             # Channel Hungup (a Channel: /regex/ would make it a list: refused)
    _single("Bridge"),             # Channels have been bridged
    _single("Atxfer"),             # Atxfer successfully queued
    _single("CancelAtxfer"),       # CancelAtxfer successfully queued (also when no transfer runs)
    _single("BlindTransfer"),      # Transfer succeeded (the channel's bridge peer goes to the target)
    _single("PlayDTMF"),           # DTMF successfully queued
)

#: action name (lower case) -> its reply shape
ACTIONS: dict[str, ActionSpec] = {spec.name.lower(): spec for spec in _SPECS}


def spec_for(name: str, headers: Iterable[tuple[str, str]] = ()) -> ActionSpec:
    """The declared reply shape of ``name``; raises :class:`UnknownAMIAction` or ValueError.

    ``Hangup`` with ``Channel: /regex/`` hangs up every matching channel and
    is answered with a list (``ChannelsHungupListComplete``): the daemon
    hangs up channels by name only, so that form is refused.
    """
    spec = ACTIONS.get(name.strip().lower())
    if spec is None:
        known = ", ".join(s.name for s in _SPECS)
        raise UnknownAMIAction(f"AMI action {name!r} has no declared reply shape (single or list) in "
                               f"callcenter/asterisk/ami_actions.py; not sent. Declared: {known}")
    if spec.name == "Hangup":
        for key, value in headers:
            if key.lower() == "channel" and len(value) > 1 and value.startswith("/") and value.endswith("/"):
                raise ValueError(f"Hangup of Channel {value!r}: a /regex/ hangs up every matching channel "
                                 "(and is answered with a list); hang channels up by name")
    return spec
