"""AMI messages exactly as Asterisk 22.10.1 writes them (header names, order, units).

Every builder returns a :class:`Message`: an ordered list of ``(key, value)``
pairs.  The header sets and orders are the ones recorded in
tests/fixtures/asterisk-22/ (README.txt and more/README.txt list the traps):

* channel events carry the 14-line channel snapshot block, optionally with a
  prefix (``Dest``, ``LocalOne``, ...); CallerIDName and ConnectedLineName are
  C-escaped there (``ast_escape_c``) and nowhere else;
* async events have ``Privilege: <class>,all``; list events have none;
* units: AgentConnect HoldTime/RingTime and AgentComplete HoldTime/TalkTime
  are seconds, AgentRingNoAnswer RingTime is milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.sim.channels import Bridge, Channel

Headers = list[tuple[str, str]]

CALL = "call,all"
DIALPLAN = "dialplan,all"
AGENT = "agent,all"
AGI = "agi,all"
DTMF = "dtmf,all"
SYSTEM = "system,all"
SECURITY = "security,all"

STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "User alerting, no answer",
             21: "Call Rejected", 34: "Circuit/channel congestion"}
CALLING_PRES = "0 (Presentation Allowed, Not Screened)"
UNAVAILABLE_PRES = "67 (Number Unavailable)"   # a caller id taken from an unknown connected line

_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
              "\v": "\\v", "\\": "\\\\", "'": "\\'", '"': '\\"', "?": "\\?"}


class Message:
    """One AMI message: ordered headers; ``encode()`` gives the wire bytes."""

    __slots__ = ("headers",)

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        self.headers: Headers = list(headers)

    @property
    def name(self) -> str:
        return self.headers[0][1]

    @property
    def is_event(self) -> bool:
        return self.headers[0][0] == "Event"

    def get(self, key: str, default: str | None = None) -> str | None:
        for name, value in self.headers:
            if name == key:
                return value
        return default

    @property
    def classes(self) -> frozenset[str]:
        """Event classes of the Privilege header ('call', 'agent', ...), without 'all'."""
        privilege = self.get("Privilege") or ""
        return frozenset(part for part in privilege.split(",") if part and part != "all")

    def encode(self) -> bytes:
        return encode(self.headers)

    def __repr__(self) -> str:
        return f"Message({self.headers!r})"


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    """``Key: value\\r\\n`` per header and the empty line (empty values keep the space)."""
    text = "".join(f"{key}: {value}\r\n" for key, value in headers) + "\r\n"
    return text.encode("utf-8", "surrogateescape")


def escape_c(value: str) -> str:
    """``ast_escape_c`` (main/utils.c), as applied to names in channel snapshots."""
    return "".join(_C_ESCAPES.get(char, char) for char in value)


def snapshot(chan: Channel, prefix: str = "") -> Headers:
    """The channel snapshot block (manager_channels.c ast_manager_build_channel_state_string)."""
    return [
        (prefix + "Channel", chan.name),
        (prefix + "ChannelState", str(chan.state)),
        (prefix + "ChannelStateDesc", STATE_DESC[chan.state]),
        (prefix + "CallerIDNum", chan.cid_num if chan.cid_num is not None else "<unknown>"),
        (prefix + "CallerIDName", escape_c(chan.cid_name) if chan.cid_name is not None else "<unknown>"),
        (prefix + "ConnectedLineNum", chan.conn_num if chan.conn_num is not None else "<unknown>"),
        (prefix + "ConnectedLineName", escape_c(chan.conn_name) if chan.conn_name is not None else "<unknown>"),
        (prefix + "Language", chan.language),
        (prefix + "AccountCode", chan.accountcode),
        (prefix + "Context", chan.context),
        (prefix + "Exten", chan.exten),
        (prefix + "Priority", str(chan.priority)),
        (prefix + "Uniqueid", chan.uniqueid),
        (prefix + "Linkedid", chan.linkedid),
    ]


def event(name: str, privilege: str, *blocks: Iterable[tuple[str, str]]) -> Message:
    headers: Headers = [("Event", name), ("Privilege", privilege)]
    for block in blocks:
        headers.extend(block)
    return Message(headers)


def response(status: str, action_id: str | None, *blocks: Iterable[tuple[str, str]]) -> Message:
    """``Response: <status>`` then ``ActionID`` (only if the action had one) then the rest."""
    headers: Headers = [("Response", status)]
    if action_id is not None:
        headers.append(("ActionID", action_id))
    for block in blocks:
        headers.extend(block)
    return Message(headers)


# --- channel events -------------------------------------------------------

def channel_event(name: str, chan: Channel, *extra: tuple[str, str], privilege: str = CALL) -> Message:
    return event(name, privilege, snapshot(chan), extra)


def newchannel(chan: Channel) -> Message:
    return channel_event("Newchannel", chan)


def newstate(chan: Channel) -> Message:
    return channel_event("Newstate", chan)


def newcallerid(chan: Channel) -> Message:
    unknown = chan.cid_num is None and chan.cid_name is None
    return channel_event("NewCallerid", chan, ("CID-CallingPres", UNAVAILABLE_PRES if unknown else CALLING_PRES))


def newconnectedline(chan: Channel) -> Message:
    return channel_event("NewConnectedLine", chan)


def newexten(chan: Channel) -> Message:
    return channel_event("Newexten", chan, ("Extension", chan.exten), ("Application", chan.app),
                         ("AppData", chan.appdata), privilege=DIALPLAN)


def varset(chan: Channel | None, variable: str, value: str) -> Message:
    if chan is None:  # a global: Setvar without Channel, [globals] at boot and reload
        return event("VarSet", DIALPLAN, [("Channel", "none"), ("Uniqueid", "none"),
                                          ("Variable", variable), ("Value", value)])
    return channel_event("VarSet", chan, ("Variable", variable), ("Value", value), privilege=DIALPLAN)


def hangup(chan: Channel) -> Message:
    cause = chan.hangupcause
    return channel_event("Hangup", chan, ("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown")))


def hangup_request(chan: Channel, cause: int) -> Message:
    return channel_event("HangupRequest", chan, ("Cause", str(cause)))


def soft_hangup_request(chan: Channel, cause: int) -> Message:
    return channel_event("SoftHangupRequest", chan, ("Cause", str(cause)))


def moh_start(chan: Channel, moh_class: str) -> Message:
    return channel_event("MusicOnHoldStart", chan, ("Class", moh_class))


def moh_stop(chan: Channel) -> Message:
    return channel_event("MusicOnHoldStop", chan)


def hold(chan: Channel) -> Message:
    return channel_event("Hold", chan)


def unhold(chan: Channel) -> Message:
    return channel_event("Unhold", chan)


def dtmf_begin(chan: Channel, digit: str, direction: str = "Received") -> Message:
    return channel_event("DTMFBegin", chan, ("Digit", digit), ("Direction", direction), privilege=DTMF)


def dtmf_end(chan: Channel, digit: str, duration_ms: int, direction: str = "Received") -> Message:
    return channel_event("DTMFEnd", chan, ("Digit", digit), ("DurationMs", str(duration_ms)),
                         ("Direction", direction), privilege=DTMF)


def agi_exec_start(chan: Channel, command_id: int, command: str) -> Message:
    return channel_event("AGIExecStart", chan, ("CommandId", str(command_id)), ("Command", command), privilege=AGI)


def agi_exec_end(chan: Channel, command_id: int, command: str, code: int, result: str) -> Message:
    return channel_event("AGIExecEnd", chan, ("CommandId", str(command_id)), ("Command", command),
                         ("ResultCode", str(code)), ("Result", result), privilege=AGI)


def local_bridge(one: Channel, two: Channel, context: str, exten: str, optimize: bool) -> Message:
    return event("LocalBridge", CALL, snapshot(one, "LocalOne"), snapshot(two, "LocalTwo"),
                 [("Context", context), ("Exten", exten), ("LocalOptimization", "Yes" if optimize else "No")])


def _dial(name: str, caller: Channel | None, dest: Channel, tail: tuple[str, str]) -> Message:
    blocks = [snapshot(caller)] if caller is not None else []
    return event(name, CALL, *blocks, snapshot(dest, "Dest"), [tail])


def dial_begin(caller: Channel | None, dest: Channel, dialstring: str) -> Message:
    """DialBegin; an Originate has no caller, so no ``Channel`` block at all."""
    return _dial("DialBegin", caller, dest, ("DialString", dialstring))


def dial_state(caller: Channel | None, dest: Channel, status: str) -> Message:
    return _dial("DialState", caller, dest, ("DialStatus", status))


def dial_end(caller: Channel | None, dest: Channel, status: str) -> Message:
    return _dial("DialEnd", caller, dest, ("DialStatus", status))


# --- bridges ---------------------------------------------------------------

def bridge_block(bridge: Bridge, prefix: str = "") -> Headers:
    return [
        (prefix + "BridgeUniqueid", bridge.uniqueid),
        (prefix + "BridgeType", "basic"),
        (prefix + "BridgeTechnology", "simple_bridge"),
        (prefix + "BridgeCreator", "<unknown>"),
        (prefix + "BridgeName", "<unknown>"),
        (prefix + "BridgeNumChannels", str(len(bridge.channels))),
        (prefix + "BridgeVideoSourceMode", "none"),
    ]


def bridge_create(bridge: Bridge) -> Message:
    return event("BridgeCreate", CALL, bridge_block(bridge))


def bridge_destroy(bridge: Bridge) -> Message:
    return event("BridgeDestroy", CALL, bridge_block(bridge))


def bridge_enter(bridge: Bridge, chan: Channel) -> Message:
    return event("BridgeEnter", CALL, bridge_block(bridge), snapshot(chan))


def bridge_leave(bridge: Bridge, chan: Channel) -> Message:
    return event("BridgeLeave", CALL, bridge_block(bridge), snapshot(chan))


def bridge_merge(to: Bridge, from_: Bridge) -> Message:
    """BridgeMerge: no BridgeUniqueid of its own, the two bridges as To* and From*."""
    return event("BridgeMerge", CALL, bridge_block(to, "To"), bridge_block(from_, "From"))


def attended_transfer(success: bool, transferer: Channel, orig: Bridge, second: Bridge,
                      transferee: Channel | None, target: Channel | None) -> Message:
    """AttendedTransfer (stasis_bridges.c attended_transfer_to_ami) as more/ami_atxfer.txt has it.

    The transferer is both OrigTransferer and SecondTransferer (its two bridges); the
    Transferee* and TransferTarget* blocks are left out when there is no such channel
    (Asterisk 22 left TransferTarget* out for a PJSIP transferer).  A success merged the
    second bridge into ``orig`` (DestType Bridge); a failure says ``DestType: Fail``.
    """
    blocks = [[("Result", "Success" if success else "Fail")], snapshot(transferer, "OrigTransferer"),
              bridge_block(orig, "Orig"), snapshot(transferer, "SecondTransferer"), bridge_block(second, "Second")]
    if transferee is not None:
        blocks.append(snapshot(transferee, "Transferee"))
    if target is not None:
        blocks.append(snapshot(target, "TransferTarget"))
    tail = [("IsExternal", "No")]
    tail += [("DestType", "Bridge"), ("DestBridgeUniqueid", orig.uniqueid)] if success else [("DestType", "Fail")]
    return event("AttendedTransfer", CALL, *blocks, tail)


# --- queues ----------------------------------------------------------------

def queue_caller(name: str, chan: Channel, queue: str, *extra: tuple[str, str]) -> Message:
    return event(name, AGENT, snapshot(chan), [("Queue", queue)], extra)


def agent_event(name: str, caller: Channel, member_leg: Channel, queue: str, interface: str,
                member_name: str, *extra: tuple[str, str]) -> Message:
    """AgentCalled/Connect/Complete/RingNoAnswer: Channel = the queue CALLER, Dest = member leg."""
    return event(name, AGENT, snapshot(caller), snapshot(member_leg, "Dest"),
                 [("Queue", queue), ("Interface", interface), ("MemberName", member_name)], extra)


def queue_member_block(queue: str, member) -> Headers:
    """QueueMemberAdded/Removed/Pause/Status body (MemberName/Interface naming)."""
    return [
        ("Queue", queue), ("MemberName", member.name), ("Interface", member.interface),
        ("StateInterface", member.state_interface), ("Membership", "dynamic"), ("Penalty", str(member.penalty)),
        ("CallsTaken", str(member.calls)), ("LastCall", str(member.last_call)),
        ("LastPause", str(member.last_pause)), ("LoginTime", str(member.login_time)),
        ("InCall", "1" if member.in_call else "0"), ("Status", str(member.status)),
        ("Paused", "1" if member.paused else "0"), ("PausedReason", member.paused_reason),
        ("Ringinuse", "1" if member.ringinuse else "0"), ("Wrapuptime", "0"),
    ]


def queue_member_event(name: str, queue: str, member) -> Message:
    return event(name, AGENT, queue_member_block(queue, member))


def device_state_change(device: str, state: str) -> Message:
    return event("DeviceStateChange", CALL, [("Device", device), ("State", state)])


# --- originate, system, security ------------------------------------------

def originate_response(action_id: str | None, success: bool, channel: str, target: Headers,
                       reason: int, uniqueid: str, cid_num: str | None, cid_name: str | None) -> Message:
    """OriginateResponse: ActionID first (if any); CallerIDName NOT escaped."""
    headers: Headers = [("Event", "OriginateResponse"), ("Privilege", CALL)]
    if action_id is not None:
        headers.append(("ActionID", action_id))
    headers += [("Response", "Success" if success else "Failure"), ("Channel", channel)]
    headers += target
    headers += [("Reason", str(reason)), ("Uniqueid", uniqueid),
                ("CallerIDNum", cid_num or "<unknown>"), ("CallerIDName", cid_name or "<unknown>")]
    return Message(headers)


def fully_booted(uptime: int, last_reload: int, at_boot: bool) -> Message:
    """Field order differs: at boot "Status, Uptime, LastReload"; after a Login the other way."""
    status = ("Status", "Fully Booted")
    times = [("Uptime", str(uptime)), ("LastReload", str(last_reload))]
    return event("FullyBooted", SYSTEM, [status] + times if at_boot else times + [status])


def security_block(event_tv: str, severity: str) -> Headers:
    return [("EventTV", event_tv), ("Severity", severity), ("Service", "AMI"), ("EventVersion", "1")]


def successful_auth(event_tv: str, account: str, session_id: str, local: str, remote: str) -> Message:
    return event("SuccessfulAuth", SECURITY, security_block(event_tv, "Informational"),
                 [("AccountID", account), ("SessionID", session_id), ("LocalAddress", local),
                  ("RemoteAddress", remote), ("UsingPassword", "0"), ("SessionTV", event_tv)])


def request_bad_format(event_tv: str, account: str, session_id: str, local: str, remote: str,
                       request_type: str) -> Message:
    return event("RequestBadFormat", SECURITY, security_block(event_tv, "Error"),
                 [("SessionID", session_id), ("LocalAddress", local), ("RemoteAddress", remote),
                  ("RequestType", request_type), ("SessionTV", event_tv), ("AccountID", account)])


def shutdown(restart: bool) -> Message:
    return event("Shutdown", SYSTEM, [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")])


def reload() -> Message:
    return event("Reload", SYSTEM, [("Module", "All"), ("Status", "0")])
