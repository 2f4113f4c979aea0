"""Channel variables shared by the daemon and the dialplan in asterisk_conf/.

This module is the single source of the names. asterisk_conf/extensions.conf
reads them after the AGI returns; tests check that both sides agree.

The dialplan contract:

* ``CC_RESULT`` is set by the FastAGI side before the session ends:
  ``queue``  -> the caller goes to ``Queue(${CC_QUEUE})`` with ``QUEUE_PRIO``
                set from ``CC_PRIORITY``;
  ``done``   -> self-service finished, the dialplan hangs up;
  ``fallback`` (or unset: the FastAGI server was unreachable, or the daemon
  stopped mid-call) -> the caller goes to Asterisk's own ``Queue()`` on the
  fallback queue, so no call is lost because the CTI server is down.
* ``CC_QUEUE`` only ever holds a queue name from the daemon's own
  configuration; the dialplan still passes it through ``FILTER()``.
* ``acd`` (``RESULT_ACD``) -> the caller waits in MusicOnHold in ``cc-wait``
  until the daemon picks an agent: AMI ``Setvar CC_AGENT_IFACE`` plus
  ``Redirect`` to ``cc-connect,s,1``. Unanswered/busy -> back to ``cc-wait``;
  nobody picked in time -> the fallback queue.

The dialplan passes every value the daemon hands over through ``FILTER()``
with the character sets below before it reaches Dial/Queue/ChanSpy/Goto; a
daemon that validates against the same sets never sees a value silently cut.
asterisk_conf/README.md has the full table.
"""

CC_RESULT = "CC_RESULT"
CC_QUEUE = "CC_QUEUE"
CC_PRIORITY = "CC_PRIORITY"
CC_SKILLS = "CC_SKILLS"
CC_LANGUAGE = "CC_LANGUAGE"
CC_CALL_ID = "CC_CALL_ID"
CC_TRANSFER_TO = "CC_TRANSFER_TO"

RESULT_QUEUE = "queue"
RESULT_DONE = "done"
RESULT_FALLBACK = "fallback"
RESULT_TRANSFER = "transfer"

#: Queue used by the dialplan when the daemon gives no usable answer.
FALLBACK_QUEUE = "support"

#: Characters allowed in a queue name the daemon hands to the dialplan.
QUEUE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

# --- Added for asterisk_conf/extensions.conf (daemon-driven ACD, supervisor) ---

#: Result: park the caller in MusicOnHold (cc-wait) for daemon-driven ACD.
RESULT_ACD = "acd"

#: Agent interface the daemon sets (AMI Setvar) before Redirect to cc-connect,
#: e.g. ``Local/6001@agents/n`` or ``PJSIP/6001``.
CC_AGENT_IFACE = "CC_AGENT_IFACE"
#: Ring time (seconds) of one ACD offer, read by cc-connect (digits, 1-120).
CC_RING_SECS = "CC_RING_SECS"
#: The callback request a callback call dials for (Originate Variable), and the customer leg's DIALSTATUS.
CC_CALLBACK_ID = "CC_CALLBACK_ID"
CC_CALLBACK_RESULT = "CC_CALLBACK_RESULT"
#: Global the routing daemon sets over AMI every few seconds; cc-wait falls back when it stops moving.
ACD_BEAT = "CTI_ACD_BEAT"
#: Full channel name a supervisor spies on (Originate Variable to cc-spy).
CC_SPY_TARGET = "CC_SPY_TARGET"
#: The agent extension (6XXX) an attended transfer consults, inherited by the consultation call.
CC_CONSULT_TO = "CC_CONSULT_TO"

#: Characters the dialplan keeps in CC_AGENT_IFACE (it also requires the form
#: ``Local/<digits>@agents[/n]`` or ``PJSIP/<name>``).
AGENT_IFACE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./@"
#: Characters the dialplan keeps in CC_SPY_TARGET (Local channels end in ;1/;2).
CHANNEL_NAME_CHARS = AGENT_IFACE_CHARS + ";"
#: Characters the dialplan keeps in CC_TRANSFER_TO and click-to-dial numbers.
TRANSFER_TO_CHARS = "0123456789"
DIAL_NUMBER_CHARS = "+0123456789"

#: Dialplan contexts the daemon addresses over AMI (Redirect / Originate).
CONTEXT_WAIT = "cc-wait"            # caller waits in MOH for an agent pick
CONTEXT_CONNECT = "cc-connect"      # Dial(CC_AGENT_IFACE), exten s
CONTEXT_FALLBACK = "cc-fallback"    # Queue(FALLBACK_QUEUE), exten s
CONTEXT_HOLD = "cc-hold"            # caller on hold (MOH), exten s
CONTEXT_AGENT_HOLD = "cc-agent-hold"  # agent leg parked while caller on hold
CONTEXT_TRANSFER = "cc-transfer"    # allow-listed transfer targets (_6XXX)
CONTEXT_CONSULT = "cc-consult"      # attended transfers: _6XXX, or CONSULT_EXTEN with CC_CONSULT_TO
CONSULT_EXTEN = "0"
CONTEXT_OUTBOUND = "cc-outbound"    # click-to-dial, exten = customer number
CONTEXT_SPY = "cc-spy"              # supervisor, exten = a SPY_* mode
CONTEXT_AGENTS = "agents"           # Local/<ext>@agents rings PJSIP/<ext>
CONTEXT_CALLBACK = "cc-callback"    # a callback: Originate of the agent's phone, exten = customer number
CONTEXT_ACD_EXIT = "cc-acd-exit"    # the ACD gives up on a caller, exten = voicemail|callback|queue

#: Extensions of CONTEXT_SPY (ChanSpy options q+E+S plus w / B).
SPY_LISTEN = "listen"
SPY_WHISPER = "whisper"
SPY_BARGE = "barge"
