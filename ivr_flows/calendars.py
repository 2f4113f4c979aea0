"""Business hours and holidays, evaluated at an aware ``now``.

A :class:`Calendar` holds opening ranges per weekday and per holiday date in
one IANA time zone (a ``tzinfo`` built by the loader).  ``now`` is turned
into that zone's local time first, so a daylight-saving change moves the
opening hours in UTC, not in local time.  Pure: no clock is read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

#: (start, end) in minutes after local midnight; end is exclusive, up to 1440.
Range = tuple[int, int]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Holiday:
    name: str
    #: Opening ranges on that day; empty means closed all day.
    hours: tuple[Range, ...] = ()


@dataclass(frozen=True)
class Calendar:
    name: str
    tz: tzinfo
    tz_name: str
    hours: Mapping[int, tuple[Range, ...]]  # weekday (0 = Monday) -> ranges
    holidays: Mapping[date, Holiday] = field(default_factory=dict)

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("calendar times must be timezone-aware")
        return now.astimezone(self.tz)

    def ranges_on(self, day: date) -> tuple[Range, ...]:
        holiday = self.holidays.get(day)
        if holiday is not None:
            return holiday.hours
        return self.hours.get(day.weekday(), ())

    def is_open(self, now: datetime) -> bool:
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.ranges_on(local.date()))

    def holiday(self, now: datetime) -> Holiday | None:
        return self.holidays.get(self.local(now).date())


def parse_range(text: str) -> Range:
    """``"08:30-17:00"`` -> (510, 1020); raises ValueError with a plain reason."""
    try:
        start_text, end_text = text.split("-")
        start, end = _minutes(start_text), _minutes(end_text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time range like 08:00-17:30") from None
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts (split ranges that cross midnight)")
    return start, end


def _minutes(text: str) -> int:
    hours, minutes = text.strip().split(":")
    if len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(text)
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(text)
    return value


def parse_weekdays(text: str) -> list[int]:
    """``"mon-fri"`` -> [0..4], ``"sat"`` -> [5]; raises ValueError."""
    parts = text.strip().lower().split("-")
    if len(parts) == 1 and parts[0] in WEEKDAYS:
        return [WEEKDAYS.index(parts[0])]
    if len(parts) == 2 and parts[0] in WEEKDAYS and parts[1] in WEEKDAYS:
        first, last = WEEKDAYS.index(parts[0]), WEEKDAYS.index(parts[1])
        if first <= last:
            return list(range(first, last + 1))
    raise ValueError(f"{text!r} is not a weekday or a range like mon-fri")
