"""Load the recorded Asterisk 22 transcripts in tests/fixtures/asterisk-22/.

Three kinds of file (see README.txt and more/README.txt there):

* raw streams (``ami_*.txt``): the bytes Asterisk sent on one AMI connection,
  or on several concatenated (``ami_actions.raw_recv.txt``);
* visible sessions (``*.session.txt`` and ``ami_actions.txt``): both
  directions, one timestamped block per read or write, ``\\r`` and ``\\n``
  written out as text, optionally a ``[label]`` naming the connection;
* sequences (``*.sequence.txt``): one line per message of a raw stream.

Everything returned is bytes exactly as Asterisk sent them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "asterisk-22"
BANNER = b"Asterisk Call Manager/"

_VISIBLE_FILES = ("ami_actions.txt",)
_BLOCK_START = re.compile(r"^ *\+\d+\.\d+s (A->C|C->A|----) (?:\[(\w+)\] )?")
_VISIBLE_ESCAPE = re.compile(rb"\\([rn])")


def fixture(name: str) -> Path:
    """Path of a fixture, e.g. ``fixture("more/ami_robustness.txt")``."""
    return FIXTURES / name


def name_of(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def raw_ami_streams() -> list[Path]:
    """Every raw AMI stream (not the sequence, session or visible files)."""
    found = sorted(FIXTURES.glob("ami_*.txt")) + sorted(FIXTURES.glob("more/ami_*.txt"))
    return [
        path for path in found
        if not path.name.endswith((".sequence.txt", ".session.txt"))
        and path.name not in _VISIBLE_FILES
    ]


def session_files() -> list[Path]:
    """Every visible both-directions transcript of AMI connections."""
    found = sorted(FIXTURES.glob("*.session.txt")) + sorted(FIXTURES.glob("more/*.session.txt"))
    return found + [FIXTURES / name for name in _VISIBLE_FILES]


def split_connections(data: bytes) -> list[bytes]:
    """Split concatenated connections where a banner starts a message."""
    starts = [0] + [m.start() + 4 for m in re.finditer(rb"\r\n\r\n" + re.escape(BANNER), data)]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def raw_connections(path: Path) -> list[bytes]:
    """The raw stream of each connection in a raw file."""
    return split_connections(path.read_bytes())


def sequence_file(raw: Path) -> Path | None:
    """The ``.sequence.txt`` listing the messages of a raw stream, if there is one."""
    candidate = raw.with_name(raw.name[: -len(".txt")] + ".sequence.txt")
    return candidate if candidate.exists() else None


def sequence_entries(path: Path) -> list[tuple[str, str]]:
    """The (kind, name) of each line: ('BANNER', 'Asterisk Call Manager/11.0.0'),
    ('RESPONSE', 'Success'), ('EVENT', 'Newchannel'); SEND and NOTE lines left out."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or line.startswith("#"):
            continue
        if words[0].startswith("+"):
            words = words[1:]
        if words[0] == "BANNER":
            entries.append(("BANNER", line.split("BANNER", 1)[1].strip()))
        elif words[0] in ("RESPONSE", "EVENT"):
            entries.append((words[0], words[1]))
        elif words[0] not in ("SEND", "NOTE"):
            raise ValueError(f"{path.name}: unexpected sequence line {line!r}")
    return entries


@dataclass
class Connection:
    """One AMI connection of a visible session: its reads and writes as bytes."""

    label: str
    received: list[bytes] = field(default_factory=list)  # A->C, one item per read
    sent: list[bytes] = field(default_factory=list)  # C->A, one item per write

    @property
    def received_bytes(self) -> bytes:
        return b"".join(self.received)


def session_connections(path: Path) -> list[Connection]:
    """Rebuild the bytes of each connection from a visible transcript.

    A block is a timestamp line plus the lines indented to its text column;
    each visible line ends with a written-out ``\\n`` and only ``\\r`` and
    ``\\n`` are written out.  Connections are told apart by their ``[label]``
    or, without labels, by the banner that opens each.
    """
    connections: dict[str, Connection] = {}
    unlabelled = 0
    block: list[bytes] | None = None
    column = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        start = _BLOCK_START.match(line)
        if start:
            direction, label = start.group(1), start.group(2)
            column = start.end()
            text = line[column:]
            if direction == "----":
                block = None
                continue
            if label is None:
                if direction == "A->C" and text.startswith(BANNER.decode()):
                    unlabelled += 1
                label = str(unlabelled)
            connection = connections.setdefault(label, Connection(label))
            block = connection.received if direction == "A->C" else connection.sent
            block.append(_visible_bytes(text, path, number))
        elif block is not None and line[:column].isspace() and len(line) > column:
            block[-1] += _visible_bytes(line[column:], path, number)
        else:
            block = None
    return list(connections.values())


def _visible_bytes(text: str, path: Path, number: int) -> bytes:
    if not text.endswith("\\n"):
        raise ValueError(f"{path.name}:{number}: visible line does not end with \\n: {text[-40:]!r}")
    if "\ufffd" in text:
        raise ValueError(f"{path.name}:{number}: undecodable bytes were replaced; not byte-exact")
    return _VISIBLE_ESCAPE.sub(lambda m: b"\r" if m.group(1) == b"r" else b"\n", text.encode())


def raw_for_session(path: Path) -> list[bytes]:
    """The raw captures of the connections of a visible session, in the same order."""
    if path.name == "ami_actions.txt":
        return raw_connections(fixture("ami_actions.raw_recv.txt"))
    base = path.name[: -len(".session.txt")]
    labels = [connection.label for connection in session_connections(path)]
    if labels == ["1"]:
        return [path.with_name(base + ".txt").read_bytes()]
    return [path.with_name(f"{base}.{label}.txt").read_bytes() for label in labels]
