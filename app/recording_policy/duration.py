"""ISO-8601 date durations (retention periods) and calendar arithmetic on them."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

# Date parts only: retention is counted in calendar days, never hours.
_DURATION = re.compile(r"P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?")

# A policy typo such as P1000Y must be refused when the file is loaded, not
# when the first recording completes and its date no longer fits a datetime.
_MAX_MONTHS = 100 * 12
_MAX_DAYS = 100 * 366


@dataclass(frozen=True)
class IsoDuration:
    years: int = 0
    months: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        if min(self.years, self.months, self.days) < 0:
            raise ValueError("a duration cannot be negative")

    def __str__(self) -> str:
        parts = [(self.years, "Y"), (self.months, "M"), (self.days, "D")]
        text = "".join(f"{n}{unit}" for n, unit in parts if n)
        return f"P{text or '0D'}"


def parse_duration(text: str) -> IsoDuration:
    """Parse ``PnYnMnWnD``; weeks become 7 days. Raises ValueError naming the text."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as P130D or P2Y130D")
    years, months, weeks, days = (int(g or 0) for g in match.groups())
    duration = IsoDuration(years=years, months=months, days=weeks * 7 + days)
    if years * 12 + months > _MAX_MONTHS or duration.days > _MAX_DAYS:
        raise ValueError(f"{text!r} is longer than 100 years")
    return duration


def add_duration(moment: datetime, duration: IsoDuration) -> datetime:
    """Years and months first (clamping to the month's last day), then days; keeps tzinfo."""
    month_index = moment.month - 1 + duration.months + 12 * duration.years
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day) + timedelta(days=duration.days)
