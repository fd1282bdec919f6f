"""Error types the workflow, its activities and the web app name to each other.

Temporal carries an application error's type as a string; these are its one home.
"""

from __future__ import annotations

# An activity was given a secure email the database does not know, or whose practice and
# patient do not match the request: a forged or mistaken start. Never retried.
UNKNOWN_SECURE_EMAIL = "UnknownSecureEmail"
