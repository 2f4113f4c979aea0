"""The routes file: dialed number (DNIS) -> flow, with business hours and holidays.

::

    timezone: Asia/Shanghai
    holidays:
      cn-public: [2026-01-01, {from: 2026-10-01, to: 2026-10-07, name: National Day}]
    calendars:
      hotline: {hours: {mon-fri: ["08:00-20:00"], sat: ["09:00-17:00"]}, holidays: [cn-public]}
    transfers:
      allow: [_6XXX]
    routes:
      "4000": {flow: hotline, calendar: hotline, closed: after_hours}
      "4010": {flow: hotline, trusted_callerid: true}

Calendars are evaluated in their IANA time zone (``zoneinfo``), so a
daylight-saving change shifts the opening hours in UTC and not in local time.

``trusted_callerid`` (default false) says the trunk behind a number vouches
for the caller's number (a carrier that verifies it, an internal line);
flows read it as ``route.trusted_callerid``.  Caller ID from anywhere else
can be set by the caller and proves nothing.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from ivr_flows.calendars import Calendar, Holiday, Range, parse_range, parse_weekdays
from ivr_flows.model import FlowError, Position
from ivr_flows.schemacheck import schema_problems, suggest
from ivr_flows.yamlpos import Document, load

MAX_HOLIDAY_SPAN = 366


@dataclass(frozen=True)
class Route:
    dnis: str
    flow: str
    calendar: str | None = None
    closed: str | None = None
    trusted_callerid: bool = False


@dataclass(frozen=True)
class RouteDecision:
    """Which flow answers a call, and why."""

    dnis: str
    flow: str
    route: Route
    open: bool | None = None  # None: the route has no calendar
    holiday: str | None = None


@dataclass(frozen=True)
class Routes:
    file: str
    timezone: str
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    routes: Mapping[str, Route] = field(default_factory=dict)
    default: Route | None = None
    transfer_allow: tuple[str, ...] = ()
    #: (flow name, where it is named), checked against the flow files.
    flow_refs: tuple[tuple[str, Position], ...] = ()

    def resolve(self, dnis: str, now: datetime) -> RouteDecision | None:
        """The flow for ``dnis`` at ``now`` (aware); None when nothing matches."""
        route = self.routes.get(dnis, self.default)
        if route is None:
            return None
        if route.calendar is None:
            return RouteDecision(dnis, route.flow, route)
        calendar = self.calendars[route.calendar]
        is_open = calendar.is_open(now)
        holiday = calendar.holiday(now)
        flow = route.flow if is_open else (route.closed or route.flow)
        return RouteDecision(dnis, flow, route, is_open, holiday.name if holiday else None)

    def route_for(self, dnis: str) -> Route | None:
        """The route of ``dnis`` (or the default), whatever the time."""
        return self.routes.get(dnis, self.default)

    def flow_for_dnis(self) -> dict[str, str]:
        return {dnis: route.flow for dnis, route in self.routes.items()}


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def load_routes(path: str | Path) -> tuple[Routes | None, list[FlowError]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(str(path), 1, 1, f"cannot read the routes file: {exc}")]
    return load_routes_text(text, str(path))


def load_routes_text(text: str, file: str) -> tuple[Routes | None, list[FlowError]]:
    doc, problems = load(text, file)
    errors = [FlowError(file, p.line, p.column, p.message) for p in problems]
    if doc is None:
        return None, errors
    if not isinstance(doc.data, dict):
        return None, errors + [FlowError(file, 1, 1, "a routes file is a mapping with 'timezone' and 'routes'")]
    schema = [error for _, error in schema_problems(doc, "routes.schema.json")]
    if schema:
        return None, sorted(set(errors + schema))
    builder = _RoutesBuilder(doc)
    routes = builder.build()
    errors = sorted(set(errors + builder.errors))
    return (routes if not errors else None), errors


class _RoutesBuilder:
    def __init__(self, doc: Document) -> None:
        self.doc, self.data = doc, doc.data
        self.errors: list[FlowError] = []

    def pos(self, path: tuple, *, key: bool = False) -> Position:
        return Position(self.doc.file, *self.doc.where(path, key=key))

    def error(self, path: tuple, message: str, *, key: bool = False) -> None:
        self.errors.append(FlowError.at(self.pos(path, key=key), message))

    def zone(self, path: tuple, name: str) -> Any:
        try:
            return _zone(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            self.error(path, f"unknown time zone {name!r}{suggest(name, zoneinfo.available_timezones())}")
            return None

    def build(self) -> Routes:
        tz_name = self.data["timezone"]
        self.zone(("timezone",), tz_name)
        holidays = {name: self.holidays(("holidays", name), entries)
                    for name, entries in (self.data.get("holidays") or {}).items()}
        calendars = {}
        for name, raw in (self.data.get("calendars") or {}).items():
            calendar = self.calendar(("calendars", name), name, raw, tz_name, holidays)
            if calendar is not None:
                calendars[name] = calendar
        routes = {dnis: self.route(("routes", dnis), dnis, raw) for dnis, raw in self.data["routes"].items()}
        default = self.route(("default",), "", self.data["default"]) if "default" in self.data else None
        refs = []
        for path, raw in [(("routes", d), r) for d, r in self.data["routes"].items()] + (
                [(("default",), self.data["default"])] if default else []):
            refs.append((raw["flow"], self.pos(path + ("flow",))))
            if "closed" in raw:
                refs.append((raw["closed"], self.pos(path + ("closed",))))
        return Routes(self.doc.file, tz_name, calendars, routes, default,
                      tuple((self.data.get("transfers") or {}).get("allow", ["_6XXX"])), tuple(refs))

    def route(self, path: tuple, dnis: str, raw: dict) -> Route:
        calendar = raw.get("calendar")
        if calendar is not None and calendar not in (self.data.get("calendars") or {}):
            self.error(path + ("calendar",),
                       f"unknown calendar {calendar!r}{suggest(calendar, self.data.get('calendars') or {})}")
        return Route(dnis, raw["flow"], calendar, raw.get("closed"), raw.get("trusted_callerid", False))

    def ranges(self, path: tuple, texts: list[str]) -> tuple[Range, ...]:
        result = []
        for index, text in enumerate(texts):
            try:
                result.append(parse_range(text))
            except ValueError as exc:
                self.error(path + (index,), str(exc))
        return tuple(sorted(result))

    def day(self, path: tuple, text: str) -> date | None:
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.error(path, f"{text!r} is not a date of the calendar")
            return None

    def holidays(self, path: tuple, entries: list[Any]) -> dict[date, Holiday]:
        days: dict[date, Holiday] = {}
        for index, entry in enumerate(entries):
            where = path + (index,)
            raw = {"date": entry} if isinstance(entry, str) else entry
            holiday = Holiday(raw.get("name", "holiday"), self.ranges(where + ("hours",), raw.get("hours", [])))
            if "date" in raw:
                first = last = self.day(where + ("date",) if isinstance(entry, dict) else where, raw["date"])
            else:
                first, last = self.day(where + ("from",), raw["from"]), self.day(where + ("to",), raw["to"])
            if first is None or last is None:
                continue
            if not 0 <= (last - first).days < MAX_HOLIDAY_SPAN:
                self.error(where, f"holiday span {first}..{last} must run forward and be shorter than a year")
                continue
            for offset in range((last - first).days + 1):
                days[first + timedelta(days=offset)] = holiday
        return days

    def calendar(self, path: tuple, name: str, raw: dict, default_tz: str,
                 holidays: Mapping[str, dict[date, Holiday]]) -> Calendar | None:
        tz_name = raw.get("timezone", default_tz)
        tz = self.zone(path + ("timezone",), tz_name) if "timezone" in raw else self.zone(("timezone",), tz_name)
        hours: dict[int, tuple[Range, ...]] = {}
        for key, texts in raw["hours"].items():
            try:
                days = parse_weekdays(key)
            except ValueError as exc:
                self.error(path + ("hours", key), str(exc), key=True)
                continue
            for weekday in days:
                if weekday in hours:
                    self.error(path + ("hours", key), f"{key!r}: this weekday has hours twice", key=True)
                hours[weekday] = self.ranges(path + ("hours", key), texts)
        days_off: dict[date, Holiday] = {}
        for index, list_name in enumerate(raw.get("holidays", [])):
            if list_name not in holidays:
                self.error(path + ("holidays", index), f"unknown holiday list {list_name!r}{suggest(list_name, holidays)}")
            else:
                days_off.update(holidays[list_name])
        if tz is None:
            return None
        return Calendar(name, tz, tz_name, hours, days_off)
