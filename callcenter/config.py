"""The daemon's configuration: one TOML file, validated all at once.

The keys are a public contract, documented in README.md and in
``callcenter.example.toml``.  ``load_config`` returns a frozen ``Config`` or
raises ``ConfigError`` carrying *every* problem found (file, key, reason).

Secrets may come from the environment instead of the file; the environment
wins.  Relative paths (sqlite files, journal, flows) are taken relative to
the directory of the config file, so a config works from any working
directory; unset IVR paths mean the flows installed with the package.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import jsonschema

#: Environment variables that override a config key.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "CALLCENTER_AMI_SECRET": ("asterisk", "ami_secret"),
    "CALLCENTER_AMI_USER": ("asterisk", "ami_user"),
    "CALLCENTER_CRM_URL": ("crm", "url"),
    "CALLCENTER_REDIS_URL": ("redis", "url"),
}

_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_HOST = {"type": "string", "minLength": 1}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "asterisk": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ami_host": _HOST,
                "ami_port": _PORT,
                "ami_user": {"type": "string", "minLength": 1},
                "ami_secret": {"type": "string"},
                "ami_tls": {"type": "boolean"},
                "agi_bind": _HOST,
                "agi_port": _PORT,
                "agi_allowed_peers": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
        },
        "crm": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "journal": {"type": "string", "minLength": 1},
                "default_region": {"type": "string", "pattern": "^[A-Z]{2}$"},
            },
        },
        "redis": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"url": {"type": "string"}},
        },
        "desktop": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "bind": _HOST,
                "port": _PORT,
                "allowed_origins": {"type": "array", "items": {"type": "string"}},
                "session_minutes": {"type": "number", "exclusiveMinimum": 0},
                "session_recheck_seconds": {"type": "number", "exclusiveMinimum": 0},
                "heartbeat_seconds": {"type": "number", "minimum": 0},
                "ping_interval": {"type": "number", "minimum": 0},
                "ping_timeout": {"type": "number", "minimum": 0},
                "send_queue": {"type": "integer", "minimum": 1},
                "frame_rate": {"type": "number", "exclusiveMinimum": 0},
                "frame_burst": {"type": "integer", "minimum": 1},
                "login_failures_per_minute": {"type": "integer", "minimum": 1},
                "api_enabled": {"type": "boolean"},
                "api_bind": _HOST,
                "api_port": {"type": "integer", "minimum": 0, "maximum": 65535},
            },
        },
        "acd": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "control_socket": {"type": "string", "minLength": 1},
                "state_file": {"type": "string", "minLength": 1},
            },
        },
        "ivr": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "flows_dir": {"type": "string", "minLength": 1},
                "routes": {"type": "string", "minLength": 1},
            },
        },
        "log": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "level": {"enum": ["debug", "info", "warning", "error", "critical"]},
                "format": {"enum": ["text", "json"]},
            },
        },
    },
}

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean (true or false)",
    "array": "an array",
    "object": "a table",
    "number": "a number",
}


@dataclass(frozen=True)
class AsteriskConfig:
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "cti"
    ami_secret: str = field(default="", repr=False)
    ami_tls: bool = False
    agi_bind: str = "127.0.0.1"
    agi_port: int = 4573
    #: IP addresses or networks of the Asterisk servers allowed to open FastAGI sessions.
    agi_allowed_peers: tuple[str, ...] = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class CrmConfig:
    url: str = "sqlite:///callcenter.db"
    journal: str = "callcenter.journal"
    #: ISO 3166 region for numbers dialled without a country code (phonenumbers).
    default_region: str = "CN"


@dataclass(frozen=True)
class RedisConfig:
    url: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class DesktopConfig:
    bind: str = "127.0.0.1"
    port: int = 8080
    allowed_origins: tuple[str, ...] = ()
    #: A login's session (token and cookie) lasts this long.
    session_minutes: float = 480
    #: With Redis: how often a daemon checks its cached sessions against Redis, closing the websockets
    #: of those logged out on another daemon.
    session_recheck_seconds: float = 15
    #: An agent logged in to the ACD whose desktops are all gone this long is set not ready (desktop-lost).
    heartbeat_seconds: float = 60
    #: Websocket keepalive pings (0: none); a desktop that does not answer within ping_timeout is closed.
    ping_interval: float = 20
    ping_timeout: float = 20
    #: Frames queued to one desktop; a desktop that lets it fill up is dropped (close code 1013).
    send_queue: int = 256
    #: Frames a desktop may send: ``frame_rate`` a second, bursts of ``frame_burst``.
    frame_rate: float = 20
    frame_burst: int = 40
    #: Failed logins per username and per address in a minute before logins are refused (429).
    login_failures_per_minute: int = 5
    #: The JSON REST API for integrations (``agent_desktop.rest``): off unless enabled, on its own port
    #: (0: any free port, for tests); its clients log in on the desktop port and send the token.
    api_enabled: bool = False
    api_bind: str = "127.0.0.1"
    api_port: int = 8081


@dataclass(frozen=True)
class AcdSettings:
    #: UNIX socket of the operators' CLI (``callcenter agents ...``), relative to the config file; empty: none.
    control_socket: str = ""
    #: Without Redis: where the ACD keeps agents' states across a restart, relative to the config file;
    #: empty: kept in memory only.
    state_file: str = ""


@dataclass(frozen=True)
class IvrConfig:
    #: Empty: the flows installed with the package (``ivr_flows/flows``).
    flows_dir: str = ""
    #: Empty: ``routes.yaml`` in ``flows_dir``.
    routes: str = ""


def packaged_flows_dir() -> str:
    """The example flows installed with the package, used when no ``ivr.flows_dir`` is configured."""
    import ivr_flows

    return str(Path(ivr_flows.__file__).resolve().parent / "flows")


def _ivr_paths(ivr: IvrConfig, base: Path | None) -> IvrConfig:
    """Configured paths relative to the config file; unset ones default to the packaged flows."""
    def resolve(value: str) -> str:
        return _resolve(base, value) if base is not None else value

    flows_dir = resolve(ivr.flows_dir) if ivr.flows_dir else packaged_flows_dir()
    routes = resolve(ivr.routes) if ivr.routes else str(Path(flows_dir) / "routes.yaml")
    return IvrConfig(flows_dir=flows_dir, routes=routes)


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True)
class Config:
    asterisk: AsteriskConfig = AsteriskConfig()
    crm: CrmConfig = CrmConfig()
    redis: RedisConfig = RedisConfig()
    desktop: DesktopConfig = DesktopConfig()
    ivr: IvrConfig = IvrConfig()
    log: LogConfig = LogConfig()
    acd: AcdSettings = AcdSettings()
    source: str = "<defaults>"

    def replace(self, **sections: Any) -> "Config":
        """A copy with some sections replaced (used by tests and the demo)."""
        return dataclasses.replace(self, **sections)


_SECTIONS = {
    "asterisk": AsteriskConfig,
    "crm": CrmConfig,
    "redis": RedisConfig,
    "desktop": DesktopConfig,
    "ivr": IvrConfig,
    "log": LogConfig,
    "acd": AcdSettings,
}


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}" if self.key else f"{self.file}: {self.reason}"


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists every reason."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _describe(value: Any) -> str:
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{kind} {shown}" if kind not in ("table", "array") else kind


def _schema_problems(file: str, doc: Mapping[str, Any]) -> list[ConfigProblem]:
    problems = []
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        path = [str(p) for p in err.absolute_path if not isinstance(p, int)]
        key = ".".join(path) + "".join(f"[{p}]" for p in err.absolute_path if isinstance(p, int))
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            for name in extra:
                full = ".".join(path + [name])
                where = "section" if not path else "key"
                problems.append(ConfigProblem(file, full, f"unknown {where}; expected one of: {', '.join(allowed)}"))
            continue
        if err.validator == "type":
            want = _TYPE_NAMES.get(err.validator_value, err.validator_value)
            reason = f"expected {want}, got {_describe(err.instance)}"
        elif err.validator == "enum":
            reason = f"expected one of {', '.join(map(str, err.validator_value))}, got {_describe(err.instance)}"
        elif err.validator in ("minimum", "maximum"):
            schema = err.schema
            reason = f"expected an integer from {schema.get('minimum')} to {schema.get('maximum')}, got {err.instance!r}"
        elif err.validator == "minLength":
            reason = "must not be empty"
        elif err.validator == "pattern" and key == "crm.default_region":
            reason = f"expected a two-letter ISO 3166 region code such as CN or US, got {err.instance!r}"
        else:
            reason = err.message
        problems.append(ConfigProblem(file, key, reason))
    return problems


def _semantic_problems(file: str, cfg: Config) -> list[ConfigProblem]:
    problems = []
    add = lambda key, reason: problems.append(ConfigProblem(file, key, reason))  # noqa: E731
    try:
        from sqlalchemy.engine import make_url

        url = make_url(cfg.crm.url)
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            add("crm.url", f"unsupported database {url.get_backend_name()!r}; expected sqlite or postgresql")
    except Exception as exc:  # sqlalchemy raises ArgumentError with a plain reason
        add("crm.url", f"not a SQLAlchemy URL: {exc}")
    if cfg.redis.url:
        scheme = urlsplit(cfg.redis.url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            add("redis.url", f"expected a redis://, rediss:// or unix:// URL, got scheme {scheme!r}")
    for i, origin in enumerate(cfg.desktop.allowed_origins):
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            add(f"desktop.allowed_origins[{i}]", f"expected an origin like https://desk.example.com, got {origin!r}")
    if not cfg.asterisk.ami_secret:
        add("asterisk.ami_secret", "missing; set it in the file or in CALLCENTER_AMI_SECRET")
    for key in ("ami_secret", "ami_user", "ami_host"):
        value = getattr(cfg.asterisk, key)
        if any(c in value for c in "\r\n\0"):
            add(f"asterisk.{key}", "must not contain CR, LF or NUL")
    if not cfg.asterisk.agi_allowed_peers:
        add("asterisk.agi_allowed_peers", "must list at least one address; an empty list refuses every Asterisk")
    for i, peer in enumerate(cfg.asterisk.agi_allowed_peers):
        reason = _peer_problem(peer)
        if reason:
            add(f"asterisk.agi_allowed_peers[{i}]", reason)
    if cfg.asterisk.agi_port == cfg.desktop.port and cfg.asterisk.agi_bind == cfg.desktop.bind:
        add("desktop.port", f"same address as asterisk.agi_port ({cfg.desktop.port})")
    if cfg.desktop.api_enabled and cfg.desktop.api_port:
        for key, bind, port in (("desktop.port", cfg.desktop.bind, cfg.desktop.port),
                                ("asterisk.agi_port", cfg.asterisk.agi_bind, cfg.asterisk.agi_port)):
            if port == cfg.desktop.api_port and _overlap(bind, cfg.desktop.api_bind):
                add("desktop.api_port", f"same address as {key} ({port})")
    return problems


def _overlap(bind: str, other: str) -> bool:
    """Whether listeners on ``bind`` and ``other`` (same port) would collide: the same or a wildcard address."""
    return bind == other or bool({bind, other} & {"0.0.0.0", "::", ""})


def _peer_problem(entry: str) -> str:
    """Why ``entry`` is not an IP address or network, or ``""``."""
    if "%" in entry:
        return f"a zone index (%...) is not supported; give the address without it, got {entry!r}"
    try:
        ipaddress.ip_network(entry)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            return f"{entry!r} has host bits set; the network is {ipaddress.ip_network(entry, strict=False)}"
        return f"expected an IP address or network such as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32, got {entry!r}"
    return ""


def _resolve(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path))


def _resolve_paths(cfg: Config, base: Path) -> Config:
    crm_url = cfg.crm.url
    prefix = "sqlite:///"
    if crm_url.startswith(prefix) and crm_url != "sqlite:///:memory:":
        rest = crm_url[len(prefix):]
        db, sep, query = rest.partition("?")
        if db and not db.startswith("/") and db != ":memory:":
            crm_url = prefix + _resolve(base, db) + sep + query
    return cfg.replace(crm=dataclasses.replace(cfg.crm, url=crm_url, journal=_resolve(base, cfg.crm.journal)),
                       acd=dataclasses.replace(
                           cfg.acd, control_socket=cfg.acd.control_socket and _resolve(base, cfg.acd.control_socket),
                           state_file=cfg.acd.state_file and _resolve(base, cfg.acd.state_file)))


def build_config(doc: Mapping[str, Any], *, source: str = "<config>", base: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed document (plus environment overrides) into a Config."""
    environ = os.environ if environ is None else environ
    doc = {k: dict(v) if isinstance(v, Mapping) else v for k, v in doc.items()}
    for var, (section, key) in ENV_OVERRIDES.items():
        if var in environ:
            target = doc.setdefault(section, {})
            if isinstance(target, dict):
                target[key] = environ[var]
    problems = _schema_problems(source, doc)
    # Keep checking the well-typed rest, so that every problem is reported at once.
    bad = {p.key.split("[")[0] for p in problems}
    sections = {}
    for name, cls in _SECTIONS.items():
        given = doc.get(name, {})
        if not isinstance(given, Mapping):
            given = {}
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in given.items() if k in known and f"{name}.{k}" not in bad}
        for key in ("allowed_origins", "agi_allowed_peers"):
            if key in values:
                values[key] = tuple(values[key])
        sections[name] = cls(**values)
    cfg = Config(source=source, **sections)
    problems += [p for p in _semantic_problems(source, cfg) if p.key.split("[")[0] not in bad]
    if problems:
        raise ConfigError(problems)
    cfg = cfg.replace(ivr=_ivr_paths(cfg.ivr, base))
    return _resolve_paths(cfg, base) if base is not None else cfg


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the config at ``path`` (ConfigError lists every problem)."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(file, "", f"not UTF-8 text (line {line})")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", f"TOML syntax error: {exc}")]) from None
    return build_config(doc, source=file, base=Path(path).resolve().parent, environ=environ)
