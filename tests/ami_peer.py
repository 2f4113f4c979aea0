"""A scripted AMI peer for client tests: the recorded reply formats, under test control.

Only what the client's own tests need (login, CoreStatus, the three resync
lists, Ping, pushing arbitrary bytes, going silent, closing).  Whole-call
behaviour is the simulator's job (callcenter/sim).
"""

from __future__ import annotations

import asyncio

from callcenter.asterisk.ami_codec import AMIDecoder

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def msg(*pairs: tuple[str, str]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode("utf-8", "surrogateescape") for k, v in pairs) + b"\r\n"


class AMIPeer:
    def __init__(self, secret: str = "s"):
        self.secret = secret
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.actions: list[tuple[str, dict[str, str]]] = []
        self.answer_pings = True
        self.startup_time = "16:32:01"
        self.uptime = 20
        self.channels: list[list[tuple[str, str]]] = []
        self.after_login: list[bytes] = []
        self.hold_lists = False

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port or self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop_clients()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def drop_clients(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()

    def push(self, data: bytes) -> None:
        for w in self.writers:
            w.write(data)

    def logins(self) -> int:
        return sum(1 for name, _ in self.actions if name == "Login")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(BANNER)
        decoder = AMIDecoder()
        decoder.feed(BANNER)  # the decoder expects a banner first
        try:
            while data := await reader.read(65536):
                for action in decoder.feed(data):
                    fields = {k: v for k, v in action.headers}
                    self.actions.append((fields.get("Action", ""), fields))
                    writer.write(self._answer(fields))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if writer in self.writers:
                self.writers.remove(writer)
            writer.close()

    def _answer(self, f: dict[str, str]) -> bytes:
        name, aid = f.get("Action", ""), f.get("ActionID", "")
        if name == "Login":
            if f.get("Secret") != self.secret:
                return msg(("Response", "Error"), ("ActionID", aid), ("Message", "Authentication failed"))
            return (msg(("Response", "Success"), ("ActionID", aid), ("Message", "Authentication accepted"))
                    + msg(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", str(self.uptime)),
                          ("LastReload", "0"), ("Status", "Fully Booted"))
                    + b"".join(self.after_login))
        if name == "Ping":
            if not self.answer_pings:
                return b""
            return msg(("Response", "Success"), ("ActionID", aid), ("Ping", "Pong"),
                       ("Timestamp", "1795535456.828121"))
        if name == "CoreStatus":
            return msg(("Response", "Success"), ("ActionID", aid), ("CoreStartupDate", "2026-11-24"),
                       ("CoreStartupTime", self.startup_time), ("CoreReloadDate", "2026-11-24"),
                       ("CoreReloadTime", self.startup_time), ("CoreCurrentCalls", str(len(self.channels))),
                       ("CoreProcessedCalls", "0"))
        if name in ("CoreShowChannels", "QueueStatus", "Status"):
            items = self.channels if name != "QueueStatus" else []
            event = {"CoreShowChannels": "CoreShowChannel", "Status": "Status"}.get(name, "QueueParams")
            done = {"CoreShowChannels": "CoreShowChannelsComplete", "Status": "StatusComplete"}.get(
                name, "QueueStatusComplete")
            out = msg(("Response", "Success"), ("ActionID", aid), ("EventList", "start"),
                      ("Message", "Channels will follow"))
            for item in items:
                out += msg(("Event", event), ("ActionID", aid), *item)
            out += msg(("Event", done), ("ActionID", aid), ("EventList", "Complete"), ("ListItems", str(len(items))))
            return out
        if name == "Logoff":
            return msg(("Response", "Goodbye"), ("ActionID", aid), ("Message", "Thanks for all the fish."))
        if name == "Hangup":
            return msg(("Response", "Error"), ("ActionID", aid), ("Message", "No such channel"))
        if name == "Originate":
            return msg(("Response", "Success"), ("ActionID", aid), ("Message", "Originate successfully queued"))
        if name == "Silent":
            return b""
        return msg(("Response", "Error"), ("ActionID", aid),
                   ("Message", f"Invalid/unknown command: {name}. Use Action: ListCommands to show available "
                               "commands."))
