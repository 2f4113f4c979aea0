"""Routes, business hours and holidays, in a time zone, across daylight-saving changes."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr_flows.routes import Routes, load_routes_text

# Europe/Berlin: CET (UTC+1) until 2026-03-29 02:00, then CEST (UTC+2) until 2026-10-25 03:00.
BERLIN = textwrap.dedent("""\
    timezone: Europe/Berlin
    holidays:
      cn: ["2026-10-01"]
      de:
        - {date: "2026-04-03", name: Good Friday}
        - {from: "2026-12-24", to: "2026-12-26", name: Christmas}
        - {date: "2026-12-31", name: New Year's Eve, hours: ["08:00-12:00"]}
    calendars:
      office:
        hours:
          mon-fri: ["08:00-20:00"]
          sat: ["09:00-12:00", "13:00-16:00"]
          sun: ["02:00-03:00"]
        holidays: [de]
      shanghai:
        timezone: Asia/Shanghai
        hours: {mon-sun: ["00:00-24:00"]}
        holidays: [cn]
    routes:
      "4000": {flow: hotline, calendar: office, closed: after_hours}
      "4100": {flow: china, calendar: shanghai, closed: china_closed}
      "4200": {flow: always}
    """)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def routes() -> Routes:
    loaded, errors = load_routes_text(BERLIN, "routes.yaml")
    assert errors == []
    return loaded


@pytest.mark.parametrize("moment, is_open", [
    (utc(2026, 3, 27, 6, 30), False),   # Friday 07:30 CET: not yet
    (utc(2026, 3, 27, 7, 30), True),    # Friday 08:30 CET
    (utc(2026, 3, 27, 18, 30), True),   # Friday 19:30 CET
    (utc(2026, 3, 27, 19, 0), False),   # Friday 20:00 CET: closed
    (utc(2026, 3, 30, 6, 30), True),    # Monday 08:30 CEST: the same UTC time is now open
    (utc(2026, 3, 30, 18, 30), False),  # Monday 20:30 CEST: and this one closed
    (utc(2026, 10, 26, 6, 30), False),  # Monday 07:30 CET again after the autumn change
    (utc(2026, 10, 26, 7, 0), True),    # Monday 08:00 CET
])
def test_opening_hours_follow_local_time_across_dst(routes, moment, is_open):
    """Hours are local: the UTC times of opening move by an hour at each change."""
    assert routes.calendars["office"].is_open(moment) is is_open


def test_the_skipped_spring_hour_is_never_open(routes):
    """02:00-03:00 does not exist on 2026-03-29 in Berlin; a week before it does."""
    office = routes.calendars["office"]
    assert office.is_open(utc(2026, 3, 22, 1, 30))  # 02:30 CET
    assert not office.is_open(utc(2026, 3, 29, 0, 59))  # 01:59 CET
    assert not office.is_open(utc(2026, 3, 29, 1, 0))  # 03:00 CEST, right after the jump


def test_the_repeated_autumn_hour_is_open_twice(routes):
    """02:00-03:00 happens twice on 2026-10-25: both are open."""
    office = routes.calendars["office"]
    assert office.is_open(utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    assert office.is_open(utc(2026, 10, 25, 1, 30))  # 02:30 CET
    assert not office.is_open(utc(2026, 10, 25, 2, 0))  # 03:00 CET


def test_saturday_has_a_lunch_break(routes):
    """Several ranges a day: closed between them."""
    office = routes.calendars["office"]
    assert office.is_open(utc(2026, 3, 28, 10, 0))  # 11:00
    assert not office.is_open(utc(2026, 3, 28, 11, 30))  # 12:30
    assert office.is_open(utc(2026, 3, 28, 12, 0))  # 13:00


@pytest.mark.parametrize("moment, is_open, holiday", [
    (utc(2026, 4, 3, 10, 0), False, "Good Friday"),      # a Friday, closed all day
    (utc(2026, 12, 25, 10, 0), False, "Christmas"),      # inside the span
    (utc(2026, 12, 27, 10, 0), False, None),             # a Sunday after the span: Sunday hours
    (utc(2026, 12, 28, 10, 0), True, None),              # Monday: ordinary hours
    (utc(2026, 12, 31, 9, 0), True, "New Year's Eve"),   # 10:00 CET on a short day
    (utc(2026, 12, 31, 12, 0), False, "New Year's Eve"), # 13:00 CET: the short day is over
])
def test_holidays_close_the_day_or_shorten_it(routes, moment, is_open, holiday):
    """Holiday dates replace the weekday's hours: none, or their own."""
    office = routes.calendars["office"]
    assert office.is_open(moment) is is_open
    assert (office.holiday(moment).name if office.holiday(moment) else None) == holiday


def test_holiday_dates_are_local_dates(routes):
    """A holiday starts at local midnight, not UTC midnight."""
    shanghai = routes.calendars["shanghai"]
    assert not shanghai.is_open(utc(2026, 9, 30, 16, 30))  # 00:30 on 1 October in Shanghai
    assert shanghai.is_open(utc(2026, 9, 30, 15, 30))      # 23:30 on 30 September


def test_routes_pick_the_flow_by_number_and_time(routes):
    """Open: the route's flow; closed: its closed flow; no calendar: always the flow."""
    decision = routes.resolve("4000", utc(2026, 3, 30, 8, 0))
    assert (decision.flow, decision.open, decision.holiday) == ("hotline", True, None)
    decision = routes.resolve("4000", utc(2026, 4, 3, 8, 0))
    assert (decision.flow, decision.open, decision.holiday) == ("after_hours", False, "Good Friday")
    assert routes.resolve("4200", utc(2026, 4, 3, 3, 0)).flow == "always"
    assert routes.resolve("4100", utc(2026, 9, 30, 16, 30)).flow == "china_closed"


def test_unknown_number_takes_the_default_route_or_none(routes):
    """Without a default route an unknown DNIS has no flow."""
    assert routes.resolve("9999", utc(2026, 3, 30, 8, 0)) is None
    with_default, _ = load_routes_text(BERLIN + "default: {flow: hotline}\n", "r.yaml")
    assert with_default.resolve("9999", utc(2026, 3, 30, 8, 0)).flow == "hotline"


def test_naive_times_are_refused(routes):
    """A time without a zone is a programming error, not a guess."""
    with pytest.raises(ValueError, match="timezone-aware"):
        routes.calendars["office"].is_open(datetime(2026, 3, 30, 8, 0))


def test_the_shipped_routes_file():
    """ivr_flows/flows/routes.yaml: Shanghai hours, Chinese holidays, the transfer allow-list."""
    text = (Path(__file__).resolve().parent.parent / "ivr_flows" / "flows" / "routes.yaml").read_text()
    shipped, errors = load_routes_text(text, "routes.yaml")
    assert errors == []
    assert shipped.transfer_allow == ("_6XXX",)
    assert shipped.resolve("4000", utc(2026, 3, 2, 2, 0)).flow == "hotline"      # Monday 10:00 CST
    assert shipped.resolve("4000", utc(2026, 3, 2, 13, 0)).flow == "after_hours"  # Monday 21:00 CST
    assert shipped.resolve("4001", utc(2026, 10, 5, 2, 0)).holiday == "National Day"
    assert shipped.resolve("4050", utc(2026, 3, 2, 2, 0)).flow == "hotline"       # service line: default
