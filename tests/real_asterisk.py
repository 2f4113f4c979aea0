"""A real Asterisk 22 for the test session, with SIPp phones and the real daemon.

The Asterisk install is found through ``CALLCENTER_TEST_ASTERISK`` (an install
prefix holding ``sbin/asterisk``) or ``asterisk`` on PATH.  It runs from a
temporary directory with the project's own ``asterisk_conf/*.conf`` copied in
unchanged, plus a small overlay written here: the site-local files those
configs ``#include``/``#tryinclude`` (ports, the AMI secret, the test phones
and trunk, the FastAGI address), ``asterisk.conf``, ``logger.conf``,
``rtp.conf`` and ``pjsip_notify.conf``.  Everything listens on 127.0.0.1 on
free ports; ``stop()`` leaves no process, port or directory behind.

Test phones (``pjsip_local.conf``):

- 6001 and 6002 are the shipped agent endpoints, given a static contact on a
  loopback port where a SIPp UAS (:class:`Phone`) answers, rejects with 486,
  or rings without answering; with no SIPp there nothing answers at all.
- 6003 has no contact: an unregistered phone (Dial gives CHANUNAVAIL).
- ``trunk``: the carrier.  Callers (:class:`Caller`, SIPp UACs) come in from
  127.0.0.1 with the ANI in From and the DNIS in the request URI, and land in
  ``[from-pstn]``.  A caller presses keys when the test says so: the test
  sends an in-dialog NOTIFY through AMI ``PJSIPNotify`` and the caller's SIPp
  answers it with a SIP INFO ``application/dtmf-relay``, a real DTMF on the
  channel.

A second AMI user, ``cc-test`` (read/write all), is the test's observer; the
daemon logs in as the shipped least-privilege ``cti`` user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from callcenter.asterisk.ami_codec import AMIDecoder, AMIMessage

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "asterisk_conf"
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
ENV_PREFIX = "CALLCENTER_TEST_ASTERISK"
ENV_REQUIRE = "CALLCENTER_REQUIRE_ASTERISK"
CORE_SOUNDS = ("/usr/share/asterisk/sounds/en_US_f_Allison", "/usr/share/asterisk/sounds/en")
MOH_DIRS = ("/usr/share/asterisk/moh",)
DOC_DIRS = ("var/lib/asterisk/documentation", "share/asterisk/documentation")
MODULE_DIRS = ("lib/asterisk/modules", "lib/x86_64-linux-gnu/asterisk/modules", "lib64/asterisk/modules")
AMI_SECRET = "cti-test-secret"
OBSERVER = ("cc-test", "cc-test-secret")
AGENTS = ("6001", "6002")
UNREGISTERED_AGENT = "6003"


class Unavailable(RuntimeError):
    """What the real-Asterisk tests need is not on this machine (the reason says what)."""


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port(span: int = 1) -> int:
    """A UDP port p with p .. p+span-1 free (SIPp takes its media port and the next ones)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + span > 65535:
            continue
        held = []
        try:
            for port in range(base, base + span):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError("no free UDP port range")


def until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class Install:
    binary: Path
    modules: Path
    documentation: Path
    sounds: Path
    moh: Path | None
    sipp: str


def find_install(environ: dict[str, str] | None = None) -> Install:
    """Locate Asterisk, its modules and documentation, the core sounds and SIPp, or say what is missing."""
    env = os.environ if environ is None else environ
    prefix_text = env.get(ENV_PREFIX, "").strip()
    if prefix_text:
        prefix = Path(prefix_text)
        binary = prefix / "sbin" / "asterisk"
        if not binary.is_file():
            raise Unavailable(f"{ENV_PREFIX}={prefix_text}: no sbin/asterisk there")
        prefixes = [prefix]
    else:
        found = shutil.which("asterisk")
        if found is None:
            raise Unavailable(f"no Asterisk: set {ENV_PREFIX} to an install prefix (README: 'Tests against a real "
                              "Asterisk') or put asterisk on PATH")
        binary = Path(found).resolve()
        prefixes = [binary.parent.parent, Path("/usr"), Path("/")]
    modules = _first_dir(prefixes, MODULE_DIRS)
    documentation = _first_dir(prefixes, DOC_DIRS)
    if modules is None:
        raise Unavailable(f"Asterisk at {binary}: no modules directory under {', '.join(map(str, prefixes))}")
    if documentation is None:
        raise Unavailable(f"Asterisk at {binary}: no documentation directory (Asterisk refuses to start without it)")
    sounds = next((Path(d) for d in CORE_SOUNDS if Path(d, "vm-goodbye.gsm").exists()
                   or Path(d, "vm-goodbye.wav").exists()), None)
    if sounds is None:
        raise Unavailable("no Asterisk core sounds: install Debian's asterisk-core-sounds-en-gsm")
    moh = next((Path(d) for d in MOH_DIRS if Path(d).is_dir()), None)
    sipp = shutil.which("sipp")
    if sipp is None:
        raise Unavailable("no SIPp: install Debian's sip-tester package")
    return Install(binary, modules, documentation, sounds, moh, sipp)


def _first_dir(prefixes: Iterable[Path], subdirs: Iterable[str]) -> Path | None:
    for prefix in prefixes:
        for sub in subdirs:
            candidate = prefix / sub
            if candidate.is_dir():
                return candidate
    return None


@dataclass
class Ports:
    ami: int = field(default_factory=free_tcp_port)
    sip: int = field(default_factory=free_udp_port)
    agi: int = field(default_factory=free_tcp_port)
    phones: dict[str, int] = field(default_factory=lambda: {agent: free_udp_port() for agent in AGENTS})
    customer: int = field(default_factory=free_udp_port)    # the carrier's far end: callbacks, click-to-dial
    rtp: int = field(default_factory=lambda: free_udp_port(span=1))


class RealAsterisk:
    """One Asterisk process in its own directory, configured by the project's files plus the test overlay."""

    def __init__(self, install: Install, workdir: Path, ports: Ports | None = None) -> None:
        self.install = install
        self.dir = workdir
        self.ports = ports or Ports()
        self.etc = workdir / "etc"
        self.sounds = workdir / "lib" / "sounds"
        self.log_path = workdir / "log" / "full"
        self.conf = self.etc / "asterisk.conf"
        self.pid: int | None = None

    # -- set-up --------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        for sub in ("etc", "lib/agi-bin", "spool", "run", "log", "cache", "lib/sounds/en", "lib/sounds/zh"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        lib = self.dir / "lib"
        (lib / "documentation").symlink_to(self.install.documentation)
        if self.install.moh is not None:
            (lib / "moh").symlink_to(self.install.moh)
        # sounds/en: the core sounds linked one by one, so custom/ can be a real directory of our own
        for entry in self.install.sounds.iterdir():
            if entry.name != "custom":
                (self.sounds / "en" / entry.name).symlink_to(entry)
        for conf in sorted(CONF_DIR.glob("*.conf")):
            shutil.copyfile(conf, self.etc / conf.name)
        for name, text in self.overlay().items():
            (self.etc / name).write_text(text, encoding="utf-8")

    def overlay(self) -> dict[str, str]:
        d, p = self.dir, self.ports
        phones = "".join(f"""
[{agent}](+type=aor)
contact = sip:{agent}@127.0.0.1:{port}
qualify_frequency = 0
""" for agent, port in p.phones.items())
        return {
            "asterisk.conf": f"""[directories]
astetcdir => {d}/etc
astmoddir => {self.install.modules}
astvarlibdir => {d}/lib
astdbdir => {d}/lib
astkeydir => {d}/lib
astdatadir => {d}/lib
astagidir => {d}/lib/agi-bin
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astcachedir => {d}/cache
astsbindir => {self.install.binary.parent}
[options]
maxcalls = 200
cache_media_frames = yes
""",
            "logger.conf": "[general]\n[logfiles]\nfull => notice,warning,error,verbose(3),dtmf\n",
            "rtp.conf": f"[general]\nrtpstart = {p.rtp}\nrtpend = {p.rtp + 200}\n",
            "manager_cti_secret.conf": f"secret = {AMI_SECRET}\n",
            "manager_local.conf": f"""[general](+)
port = {p.ami}
bindaddr = 127.0.0.1

[{OBSERVER[0]}]
secret = {OBSERVER[1]}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
writetimeout = 5000
""",
            "pjsip_agent_auth.conf": "".join(
                f"[{agent}-auth](agent-auth)\nusername = {agent}\npassword = test-{agent}\n\n"
                for agent in (*AGENTS, UNREGISTERED_AGENT)),
            "pjsip_local.conf": f"""[transport-udp](+)
bind = 127.0.0.1:{p.sip}
{phones}
[{UNREGISTERED_AGENT}](agent-endpoint)
auth = {UNREGISTERED_AGENT}-auth
aors = {UNREGISTERED_AGENT}
callerid = "Agent {UNREGISTERED_AGENT}" <{UNREGISTERED_AGENT}>

[{UNREGISTERED_AGENT}](agent-aor)

[carrier]
type = endpoint
context = from-pstn
disallow = all
allow = ulaw,alaw
direct_media = no
aors = carrier

[carrier]
type = aor
contact = sip:carrier@127.0.0.1:{p.customer}
qualify_frequency = 0

[trunk]
type = endpoint
context = from-pstn
disallow = all
allow = ulaw,alaw
direct_media = no
aors = trunk

[trunk]
type = aor

[trunk]
type = identify
endpoint = trunk
match = 127.0.0.1
""",
            # short ACD heartbeat times: a caller whose daemon is gone reaches the fallback queue within seconds
            "extensions_local.conf": f"[globals](+)\nCTI_AGI_HOST = 127.0.0.1:{p.agi}\n"
                                     "CTI_ACD_CHECK_SECS = 2\nCTI_ACD_DEAD_SECS = 6\n"
                                     "CTI_OUTBOUND_TRUNK = carrier\nCTI_OUTBOUND_RING_SECS = 5\n",
            # res_pjsip_notify only loads with a config file; AMI PJSIPNotify with Variable= needs no entries
            "pjsip_notify.conf": "[cc-test]\nEvent => cc-test\n",
        }

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        result = subprocess.run([str(self.install.binary), "-C", str(self.conf)], capture_output=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise Unavailable(f"asterisk exited {result.returncode}: {result.stderr.decode(errors='replace')}")
        until(self._ami_answers, timeout, "Asterisk's AMI banner")
        pidfile = self.dir / "run" / "asterisk.pid"
        self.pid = int(until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "asterisk.pid"))
        until(lambda: "Asterisk Ready" in self.log(), timeout, "'Asterisk Ready' in the log")

    def _ami_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ports.ami), timeout=1) as s:
                return s.recv(64).startswith(b"Asterisk Call Manager/")
        except OSError:
            return False

    def cli(self, command: str, timeout: float = 15.0) -> str:
        result = subprocess.run([str(self.install.binary), "-C", str(self.conf), "-rx", command],
                                capture_output=True, timeout=timeout)
        return result.stdout.decode("utf-8", errors="replace")

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        if self.alive():
            try:
                self.cli("core stop now", timeout=10)
            except subprocess.TimeoutExpired:
                pass
            try:
                until(lambda: not self.alive(), 10, "Asterisk to stop")
            except AssertionError:
                os.kill(self.pid, signal.SIGKILL)
                until(lambda: not self.alive(), 5, "Asterisk to die")
        self.pid = None

    def restart(self) -> None:
        """``core restart now``: every channel is hung up and the same process image starts again."""
        old = self.pid
        marker = len(self.log())
        self.cli("core restart now")
        until(lambda: "Asterisk Ready" in self.log()[marker:], 60, "Asterisk to come back")
        pidfile = self.dir / "run" / "asterisk.pid"
        self.pid = int(until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "asterisk.pid"))
        assert self.alive(), f"Asterisk (pid {old} before the restart) is not running"

    # -- what Asterisk did ---------------------------------------------------------------------------------
    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def channels(self) -> list[str]:
        return [line.split("!", 1)[0] for line in self.cli("core show channels concise").splitlines()
                if "!" in line]

    def hangup_all(self) -> None:
        if self.channels():
            self.cli("channel request hangup all")
            until(lambda: not self.channels(), 10, "every channel to hang up")


class Observer:
    """The test's own AMI session (user ``cc-test``): every event, and actions with their replies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.events: list[AMIMessage] = []
        self.replies: dict[str, list[AMIMessage]] = {}
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._next_id = 0

    def connect(self) -> None:
        self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, name="ami-observer", daemon=True)
        self._thread.start()
        reply = self.action("Login", Username=OBSERVER[0], Secret=OBSERVER[1])
        assert reply[0].get("Response") == "Success", reply

    def _read(self) -> None:
        decoder = AMIDecoder()
        sock = self._sock
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            for message in decoder.feed(data):
                with self._lock:
                    action_id = message.get("ActionID")
                    if action_id is not None and action_id in self.replies:
                        self.replies[action_id].append(message)
                    elif message.get("Event") is not None:
                        self.events.append(message)

    def send(self, action: str, **headers: str | list[str]) -> str:
        with self._lock:
            self._next_id += 1
            action_id = f"test-{self._next_id}"
            self.replies[action_id] = []
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        for key, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{key}: {item}")
        # surrogateescape: a test may send bytes that are not UTF-8 (e.g. a Latin-1 caller name)
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        return action_id

    def action(self, action: str, timeout: float = 10.0, **headers: str | list[str]) -> list[AMIMessage]:
        """Send an action; return its reply (and its list events up to the ``...Complete`` one)."""
        action_id = self.send(action, **headers)

        def done() -> list[AMIMessage] | None:
            with self._lock:
                got = list(self.replies.get(action_id, []))
            if not got:
                return None
            if got[0].get("EventList") == "start":
                return got if any(m.get("EventList") == "Complete" for m in got[1:]) else None
            return got

        return until(done, timeout, f"the reply to {action}")

    def find(self, predicate: Callable[[AMIMessage], bool], since: int = 0) -> AMIMessage | None:
        with self._lock:
            events = self.events[since:]
        return next((e for e in events if predicate(e)), None)

    def wait_event(self, predicate: Callable[[AMIMessage], bool], timeout: float, what: str,
                   since: int = 0) -> AMIMessage:
        return until(lambda: self.find(predicate, since), timeout, what)

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._thread is not None:
            self._thread.join(5)
        self._sock, self._thread = None, None

    def reconnect(self) -> None:
        """A new session after Asterisk restarted; the events seen so far (and marks into them) stay."""
        self.close()
        self.connect()


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _started(proc: subprocess.Popen, port: int, log: Path, what: str) -> None:
    """Wait until a SIPp process listens on its port; fail with its own words if it exits instead."""
    until(lambda: proc.poll() is not None or _udp_port_taken(port), 10, f"{what} to listen on {port}")
    if proc.poll() is not None:
        raise AssertionError(f"{what} exited {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")


class _Sipp:
    """A SIPp process of the lab, its output in a log file."""

    proc: subprocess.Popen
    _out: Any

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


class Phone(_Sipp):
    """An agent phone: a SIPp UAS on the contact port of its endpoint.

    ``mode``: ``answer`` (rings 1 s, answers, talks until BYE), ``busy``
    (486 Busy Here) or ``noanswer`` (rings until the caller side gives up).
    """

    def __init__(self, sipp: str, agent: str, port: int, asterisk_sip_port: int, mode: str, workdir: Path) -> None:
        self.agent, self.mode = agent, mode
        self.media = free_udp_port(span=4)
        self.log = workdir / f"phone-{agent}-{mode}-{port}.log"
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sipp, "-sf", str(SIPP_DIR / f"phone_{mode}.xml"), "-p", str(port), "-i", "127.0.0.1",
             "-mp", str(self.media), "-nostdin", "-trace_err",
             "-error_file", str(workdir / f"phone-{agent}-{port}-errors.log"), f"127.0.0.1:{asterisk_sip_port}"],
            stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        _started(self.proc, port, self.log, f"phone {agent} ({mode})")



class Caller(_Sipp):
    """A caller: a SIPp UAC through the ``trunk`` endpoint, keys pressed on the test's word.

    The caller's channel is found from the observer's ``Newchannel`` with its
    ANI; ``press`` and ``hangup`` reach the SIPp process as an in-dialog NOTIFY.
    """

    def __init__(self, sipp: str, observer: Observer, asterisk_sip_port: int, workdir: Path, ani: str,
                 dnis: str, name: str = "") -> None:
        self.observer, self.ani, self.dnis, self.name = observer, ani, dnis, name
        self.mark = observer.mark()
        self.port = free_udp_port()
        self.media = free_udp_port(span=4)
        self.log = workdir / f"caller-{self.port}.log"
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sipp, "-sf", str(SIPP_DIR / "caller.xml"), "-s", dnis, "-set", "ani", ani, "-set", "name", name,
             "-p", str(self.port), "-i", "127.0.0.1", "-mp", str(self.media), "-m", "1", "-nostdin",
             "-trace_err", "-trace_msg", "-error_file", str(workdir / f"caller-{self.port}-errors.log"),
             f"127.0.0.1:{asterisk_sip_port}"],
            stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        self._channel: AMIMessage | None = None
        self.listening = 0      # index (in Lab.agi_commands) of the command that listens for keys
        self.next_command = 0   # the first command after the one that took the last key
        _started(self.proc, self.port, self.log, f"caller {ani}")

    @property
    def channel_event(self) -> AMIMessage:
        if self._channel is None:
            self._channel = self.observer.wait_event(
                lambda e: e.get("Event") == "Newchannel" and e.get("Channel", "").startswith("PJSIP/trunk-")
                and e.get("CallerIDNum") == self.ani and e.get("Exten") == self.dnis,
                15, f"the channel of caller {self.ani}", since=self.mark)
        return self._channel

    @property
    def channel(self) -> str:
        return self.channel_event["Channel"]

    @property
    def linkedid(self) -> str:
        return self.channel_event["Linkedid"]

    def _notify(self, header: str) -> None:
        name, value = header.split(": ", 1)
        reply = self.observer.action("PJSIPNotify", Channel=self.channel,
                                     Variable=["Event=cc-test", f"{name}={value}"])
        assert reply[0].get("Response") == "Success", reply[0]

    def press(self, digits: str) -> None:
        """Key ``digits`` one by one, each a SIP INFO DTMF of 160 ms."""
        for digit in digits:
            mark = self.observer.mark()
            self._notify(f"X-CC-Press: {digit}")
            self.observer.wait_event(lambda e: e.get("Event") == "DTMFEnd" and e.get("Channel") == self.channel
                                     and e.get("Digit") == digit, 5, f"DTMF {digit} on {self.channel}", since=mark)

    def hangup(self) -> None:
        self._notify("X-CC-Action: hangup")

    def wait_gone(self, timeout: float = 30.0) -> None:
        self.observer.wait_event(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == self.channel,
                                 timeout, f"{self.channel} to hang up", since=self.mark)



class Daemon:
    """``callcenter run`` in its own process, logging JSON lines to a file."""

    def __init__(self, workdir: Path, asterisk: RealAsterisk, flows_dir: Path, *, crm_url: str | None = None,
                 extra: str = "") -> None:
        self.dir = workdir
        self.asterisk = asterisk
        self.config = workdir / "callcenter.toml"
        self.crm_url = crm_url or f"sqlite:///{workdir / 'crm.db'}"
        self.control_socket = str(workdir / "control.sock")
        self.log_path = workdir / "daemon.log"
        #: The desktop server's port (pages, ``/api/login``, websocket ``/ws``).
        self.desktop_port = free_tcp_port()
        self.config.write_text(f"""
[asterisk]
ami_port = {asterisk.ports.ami}
ami_user = "cti"
ami_secret = "{AMI_SECRET}"
agi_bind = "127.0.0.1"
agi_port = {asterisk.ports.agi}

[crm]
url = "{self.crm_url}"
journal = "{workdir / 'journal.db'}"

[desktop]
port = {self.desktop_port}

[ivr]
flows_dir = "{flows_dir}"
routes = "{flows_dir / 'routes.yaml'}"

[acd]
control_socket = "{workdir / 'control.sock'}"
state_file = "{workdir / 'acd-state.json'}"
{extra}
[log]
level = "info"
format = "json"
""", encoding="utf-8")
        self.proc: subprocess.Popen | None = None
        self._out = None

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "the daemon is already running"
        marker = len(self.lines())
        self._out = open(self.log_path, "ab")
        env = dict(os.environ)
        for key in ("CALLCENTER_AMI_SECRET", "CALLCENTER_AMI_USER", "CALLCENTER_CRM_URL", "CALLCENTER_REDIS_URL"):
            env.pop(key, None)
        self.proc = subprocess.Popen([sys.executable, "-m", "callcenter", "run", "--config", str(self.config)],
                                     stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.dir, env=env)
        until(lambda: self.proc.poll() is not None or self.find("AMI resync:", since=marker), timeout,
              "the daemon to log in to AMI and resync")
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited {self.proc.returncode}: {self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._out is not None:
            self._out.close()
            self._out = None
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def lines(self) -> list[dict[str, Any]]:
        try:
            raw = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in raw:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line})
        return out

    def find(self, text: str, since: int = 0) -> list[dict[str, Any]]:
        return [line for line in self.lines()[since:] if text in str(line.get("msg", ""))]

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(str(line.get("msg", line)) for line in self.lines()[-n:])

    def control(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request to the daemon's control socket (what ``callcenter agents ...`` sends)."""
        from callcenter.routing.control import ask

        (answer,) = ask(self.control_socket, {"op": op, **fields}, timeout=15)
        assert answer is not None, "the daemon closed the control connection"
        return answer

    def agent(self, agent: str) -> dict[str, Any]:
        """The daemon's view of one agent (``agents.list``)."""
        rows = self.control("agents.list")["agents"]
        return next(row for row in rows if row["agent"] == agent)

    def contact(self, linkedid: str) -> Any:
        """The stored contact record of a call (read with the CRM's own code, as `contacts list` does)."""
        from sqlalchemy import create_engine

        from crm_core.contacts import thd_get_contact

        engine = create_engine(self.crm_url)
        try:
            return thd_get_contact(engine, linkedid)
        finally:
            engine.dispose()


def leftovers(asterisk: RealAsterisk) -> list[str]:
    """What a stopped lab still holds: a live Asterisk, a SIPp of ours, a bound port, its directory."""
    found = []
    if asterisk.alive():
        found.append(f"asterisk pid {asterisk.pid}")
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path("/proc", pid, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"sipp") and str(asterisk.dir).encode() in b" ".join(cmdline):
                found.append(f"sipp pid {pid}")
    ports = asterisk.ports
    for port in (ports.ami, ports.agi):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # TIME_WAIT is not a listener
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                found.append(f"TCP port {port}")
    for port in (ports.sip, *ports.phones.values()):
        if _udp_port_taken(port):
            found.append(f"UDP port {port}")
    if asterisk.dir.exists():
        found.append(f"directory {asterisk.dir}")
    return found


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="cc-asterisk-"))


PROMPT_BUILD_DIR = ROOT / "build" / "prompts"


def install_prompts(asterisk: RealAsterisk) -> None:
    """Render the custom prompts (cached in build/prompts) and install them the way an admin does."""
    for args in (["prompts", "build", "--out", str(PROMPT_BUILD_DIR)],
                 ["prompts", "install", "--from", str(PROMPT_BUILD_DIR), "--sounds-dir", str(asterisk.sounds)]):
        result = subprocess.run([sys.executable, "-m", "callcenter", *args], capture_output=True, timeout=300,
                                cwd=ROOT)
        if result.returncode != 0:
            raise AssertionError(f"callcenter {' '.join(args)} exited {result.returncode}: "
                                 f"{result.stderr.decode(errors='replace')}")


@dataclass
class Lab:
    """The session's Asterisk and observer, and the SIPp phones and callers of the current test."""

    install: Install
    asterisk: RealAsterisk
    observer: Observer
    dir: Path
    phones: list[Phone] = field(default_factory=list)
    callers: list[Caller] = field(default_factory=list)

    def phone(self, agent: str, mode: str = "answer") -> Phone:
        phone = Phone(self.install.sipp, agent, self.asterisk.ports.phones[agent], self.asterisk.ports.sip, mode,
                      self.dir)
        self.phones.append(phone)
        return phone

    def customer(self, mode: str = "answer") -> Phone:
        """The customers' side of the carrier trunk (CTI_OUTBOUND_TRUNK): a SIPp UAS answering every number."""
        phone = Phone(self.install.sipp, "carrier", self.asterisk.ports.customer, self.asterisk.ports.sip, mode,
                      self.dir)
        self.phones.append(phone)
        return phone

    def call(self, ani: str, dnis: str = "4000", name: str = "") -> Caller:
        caller = Caller(self.install.sipp, self.observer, self.asterisk.ports.sip, self.dir, ani, dnis, name)
        self.callers.append(caller)
        return caller

    def pause(self, agent: str, paused: bool = True, queue: str = "support") -> None:
        reply = self.observer.action("QueuePause", Queue=queue, Interface=f"Local/{agent}@agents/n",
                                     Paused="true" if paused else "false", Reason="test")
        assert reply[0].get("Response") == "Success", reply[0]

    def agi_commands(self, channel: str) -> list[AMIMessage]:
        """The AGI commands Asterisk ran for a channel (``AGIExecStart``), in order."""
        with self.observer._lock:
            return [e for e in self.observer.events if e.get("Event") == "AGIExecStart" and e.get("Channel") == channel]

    def commands_seen(self, caller: Caller) -> int:
        return len(self.agi_commands(caller.channel))

    def agi_result(self, channel: str, command_id: str) -> AMIMessage | None:
        return self.observer.find(lambda e: e.get("Event") == "AGIExecEnd" and e.get("Channel") == channel
                                  and e.get("CommandId") == command_id)

    def hangup_of(self, caller: Caller) -> AMIMessage:
        """Asterisk's own Hangup event of the caller's channel (cause and text as Asterisk saw them)."""
        return self.observer.wait_event(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == caller.channel,
                                        10, f"the Hangup of {caller.channel}", since=caller.mark)

    def _listening(self, channel: str, since: int) -> tuple[int, str, str] | None:
        """(index, CommandId, command) of the GET DATA / WAIT FOR DIGIT running now, if the newest of those
        since ``since`` has not ended."""
        commands = self.agi_commands(channel)
        for index in range(len(commands) - 1, since - 1, -1):
            start = commands[index]
            command = start.get("Command", "")
            if command.startswith(("GET DATA", "WAIT FOR DIGIT")):
                if self.agi_result(channel, start["CommandId"]) is None:
                    return index, start["CommandId"], command
                return None
        return None

    def _wait_listening(self, caller: Caller, since: int, timeout: float) -> tuple[int, str, str]:
        def settled() -> tuple[int, str, str] | None:
            # the same command still running a moment later: a missing prompt ends GET DATA at once
            first = self._listening(caller.channel, since)
            if first is None:
                return None
            time.sleep(0.15)
            return first if self._listening(caller.channel, since) == first else None

        return until(settled, timeout, f"the IVR to listen for keys on {caller.channel}")

    def wait_collecting(self, caller: Caller, timeout: float = 20.0, since: int | None = None) -> str:
        """Wait until the IVR listens for keys on the caller's channel (a GET DATA or WAIT FOR DIGIT running)
        with a command that came after the one that took the caller's last key (or from index ``since`` of
        :meth:`agi_commands`).  Returns the command line."""
        index, _, command = self._wait_listening(caller, caller.next_command if since is None else since, timeout)
        caller.listening = index
        return command

    def press(self, caller: Caller, digits: str, timeout: float = 20.0) -> None:
        """Key ``digits`` one at a time, each while the IVR listens: several into one GET DATA, or one per
        WAIT FOR DIGIT when the prompt is missing."""
        for digit in digits:
            index, _, _ = self._wait_listening(caller, caller.listening, timeout)
            caller.press(digit)
            caller.listening, caller.next_command = index, index + 1

    def cleanup(self) -> None:
        for caller in self.callers:
            caller.stop()
        self.asterisk.hangup_all()
        for phone in self.phones:
            phone.stop()
        self.phones.clear()
        self.callers.clear()
        for agent in AGENTS:
            self.pause(agent, False)
