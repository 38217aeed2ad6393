"""ISO-8601 retention durations and their calendar arithmetic (R1)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.recording_policy import IsoDuration, add_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P130D", IsoDuration(days=130)),
        ("P2Y130D", IsoDuration(years=2, days=130)),
        ("P1Y", IsoDuration(years=1)),
        ("P6M", IsoDuration(months=6)),
        ("P1Y2M3D", IsoDuration(years=1, months=2, days=3)),
        ("P2W", IsoDuration(days=14)),
        ("P1W3D", IsoDuration(days=10)),
        ("P0D", IsoDuration()),
        ("P007D", IsoDuration(days=7)),
    ],
)
def test_parses_date_durations(text: str, expected: IsoDuration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "P13OD",  # letter O, not zero
        "130D",
        "p130d",
        "P-1D",
        "P1.5Y",
        "PT1H",
        "P1DT12H",
        "P1D ",
        " P1D",
        "P1D1Y",  # parts out of order
        "P1Y1Y",
        "P\u0661\u0663\u0660D",  # Arabic-Indic digits
        "P1000Y",
        "P40000D",
    ],
)
def test_rejects_non_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"is (not an ISO-8601 duration|longer than 100 years)"):
        parse_duration(text)


def test_message_names_the_text_and_gives_examples() -> None:
    with pytest.raises(ValueError, match="P13OD") as caught:
        parse_duration("P13OD")
    assert str(caught.value) == "'P13OD' is not an ISO-8601 duration such as P130D or P2Y130D"


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (IsoDuration(years=2, days=130), "P2Y130D"),
        (IsoDuration(days=130), "P130D"),
        (IsoDuration(years=1, months=6), "P1Y6M"),
        (IsoDuration(), "P0D"),
    ],
)
def test_str_is_canonical(duration: IsoDuration, text: str) -> None:
    assert str(duration) == text


def test_negative_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        IsoDuration(days=-1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        # Revenues and Benefits from a leap day: 2026-02-28, then 130 days
        # (Mar 31 + Apr 30 + May 31 + Jun 30 = 122, so 8 July).
        (utc(2024, 2, 29, 10), "P2Y130D", utc(2026, 7, 8, 10)),
        (utc(2024, 2, 29, 10), "P1Y", utc(2025, 2, 28, 10)),
        (utc(2024, 2, 29, 10), "P4Y", utc(2028, 2, 29, 10)),
        (utc(2024, 1, 31), "P1M", utc(2024, 2, 29)),
        (utc(2023, 1, 31), "P1M", utc(2023, 2, 28)),
        (utc(2024, 3, 31), "P1M", utc(2024, 4, 30)),
        (utc(2024, 12, 31), "P2M", utc(2025, 2, 28)),
        (utc(2024, 11, 15), "P14M", utc(2026, 1, 15)),
        (utc(2024, 1, 1), "P130D", utc(2024, 5, 10)),  # 2024 is a leap year
        (utc(2023, 1, 1), "P130D", utc(2023, 5, 11)),
        (utc(2024, 12, 31, 23, 59), "P1D", utc(2025, 1, 1, 23, 59)),
        # Days are added after the months, so the clamp happens first.
        (utc(2024, 1, 31), "P1M1D", utc(2024, 3, 1)),
    ],
)
def test_calendar_arithmetic(start: datetime, duration: str, expected: datetime) -> None:
    assert add_duration(start, parse_duration(duration)) == expected


def test_keeps_timezone() -> None:
    london_summer = timezone(timedelta(hours=1))
    start = datetime(2024, 6, 1, 9, 30, tzinfo=london_summer)
    result = add_duration(start, parse_duration("P130D"))
    assert result.tzinfo is london_summer
    assert (result.hour, result.minute) == (9, 30)


durations = st.builds(
    IsoDuration,
    years=st.integers(0, 10),
    months=st.integers(0, 24),
    days=st.integers(0, 1000),
)


@given(durations)
def test_str_round_trips(duration: IsoDuration) -> None:
    assert parse_duration(str(duration)) == duration


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)), durations)
def test_never_earlier_and_days_are_exact(start: datetime, duration: IsoDuration) -> None:
    result = add_duration(start, duration)
    assert result >= start
    months_only = add_duration(start, IsoDuration(duration.years, duration.months))
    assert result - months_only == timedelta(days=duration.days)
    assert months_only.time() == start.time()
    assert (months_only.year - start.year) * 12 + months_only.month - start.month == (
        duration.years * 12 + duration.months
    )
    # The day is kept unless the target month is too short for it.
    clamped = start.day >= 29 and months_only.day < start.day
    assert months_only.day == start.day or clamped
