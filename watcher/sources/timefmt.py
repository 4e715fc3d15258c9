"""Time parsing for every job API: each API's own format -> aware UTC datetime. Pure, never raises.

The five APIs use four spellings of the same instant (huawei-job-apis.md §6):

==============  ============================  =============================================
API             example                        notes
==============  ============================  =============================================
workspace       ``2020-04-10 06:45:14``        space, no zone: documented as UTC, taken as UTC
workspaceapp    ``2022-03-07T10:40:43.858Z``   milliseconds, ``Z``
appjob          ``2023-06-06T02:30:06Z``       seconds, ``Z``
script          ``yyyy-MM-ddTHH:mm:ssZ``       seconds, ``Z``
evs             ``2016-03-08T07:40:13.219Z``   milliseconds, ``Z``; ``""`` while running
==============  ============================  =============================================

One lenient parser covers them all (plus ``±hh:mm`` offsets and epoch numbers, which no doc
promises but which cost nothing to accept). A time is descriptive, never load-bearing: a value
that cannot be read becomes ``None`` instead of failing the whole poll.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

#: What a time field may hold on the wire (strings per the docs; numbers tolerated).
RawTime = str | int | float | None

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)
_EPOCH_MS_ABOVE = 100_000_000_000  # an epoch number above this is milliseconds (year 5138 in seconds)


def parse_time(value: RawTime) -> datetime | None:
    """Any API's time (see the table above) as an aware UTC datetime; ``None`` if empty or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    match = _ISO.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=_zone(zone)
        )
    except ValueError:  # 2020-13-40 and friends
        return None
    return moment.astimezone(UTC)


def _zone(text: str | None) -> timezone:
    if text is None or text.upper() in ("Z", "UTC"):
        return UTC  # no zone at all (workspace): the APIs report UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _from_epoch(number: float) -> datetime | None:
    if number != number or number < 0:  # NaN or before 1970: not a job time
        return None
    if number > _EPOCH_MS_ABOVE:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
