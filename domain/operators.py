"""How long an operator's codec token lives: it opens every practice's histories, so it
always ends, 90 days after it is made unless asked otherwise."""

from __future__ import annotations

DEFAULT_TOKEN_DAYS = 90
# A year: long enough for any real need, short enough that a forgotten token still ends.
MAX_TOKEN_DAYS = 365
