"""Words other modules hand to portal pages, marked here so the catalog has them.

They are written where they belong (``web.errors``, ``web.csrf``, ``web.uploads``,
``web.body_limits``, FastAPI's own 404), in English, and the portal shows them through
its catalog (``web.templating`` for shared pages, each portal page for its refusals).
pybabel reads only literal strings, so each is copied here;
``tests/web/test_portal_language.py`` holds every copy equal to its source.
"""

from __future__ import annotations

from web.languages import N_

BORROWED = (
    # web.errors
    N_("Secure Email is unavailable right now. Please try again in a few minutes."),
    N_("Files cannot be downloaded right now. Please try again in a few minutes."),
    N_("This file cannot be opened. Please contact the office."),
    N_("Secure Email is busy right now. Please try again in a few seconds."),
    N_("Your secure session has ended."),
    # web.csrf
    N_(
        "This form has expired or did not come from this site. Go back, reload the page and "
        "try again."
    ),
    # web.uploads
    N_("At most 10 files can be sent in one message. Choose 10 or fewer and send again."),
    N_("This form has more than 20 fields and was not read."),
    N_("This form could not be read. Reload the page and try again."),
    # web.body_limits, for the portal's forms
    N_(
        "This is larger than Secure Email accepts: at most 10 files of 20 MB each in one "
        "message. Nothing was sent. Go back, choose fewer or smaller files and try again."
    ),
    N_(
        "This form is larger than 64 KB and was not read; nothing was saved. Go back, "
        "reload the page and try again."
    ),
    N_(
        "This form is larger than 1 MB and was not read; nothing was saved. Go back, "
        "reload the page and try again."
    ),
    # FastAPI, for a portal path that is no page
    N_("Not Found"),
    N_("Method Not Allowed"),
)
