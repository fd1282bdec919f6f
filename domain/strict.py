"""What ``/api/v1`` takes exactly as its OpenAPI document says, and no more.

JSON bodies are validated strictly (``STRICT_BODY``): no number for a string, no boolean
for a number, no string for a boolean. Dates and times are the one exception, since JSON
has no type for them: they come as ISO 8601 text (``IsoDate``, ``IsoDateTime``), and a
number is refused rather than read as a Unix time. The office's forms send text for
every field, so a page validates the same models with ``strict=False``. A whole number
may come as ``15.0`` (``WHOLE``): JSON Schema's ``integer`` counts it as one.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field

STRICT_BODY = ConfigDict(extra="forbid", strict=True)

NOT_ISO_DATE = "Give a date as ISO 8601 text, such as 2026-12-01"
NOT_ISO_TIME = "Give a time as ISO 8601 text with its zone, such as 2026-12-01T09:30:00-05:00"

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _text_not_a_number(message: str) -> BeforeValidator:
    def refuse_numbers(value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(message)
        if isinstance(value, str) and _NUMBER.fullmatch(value):
            raise ValueError(message)
        return value

    return BeforeValidator(refuse_numbers)


def _whole_float(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A whole number as JSON Schema's integer counts them, 15.0 too (never a boolean): last
# in an ``Annotated[int, Field(...), WHOLE]``, after the limits, so the schema keeps them.
WHOLE = BeforeValidator(_whole_float)

# Field(strict=False): text is what JSON and query strings carry, parsed as ISO 8601.
IsoDate = Annotated[date, _text_not_a_number(NOT_ISO_DATE), Field(strict=False)]
IsoDateTime = Annotated[datetime, _text_not_a_number(NOT_ISO_TIME), Field(strict=False)]
