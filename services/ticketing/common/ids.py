"""Short readable ids for events and venues, safe inside a Redis hash tag and a Kubernetes name,
and the pattern names follow."""

import re
import secrets
from typing import Annotated

from pydantic import StringConstraints

# A Kubernetes object name (lowercase, digits, '-', '.') of at most 63 characters, so a
# TicketEvent's name is its event id and fits every table that records an event id.
SLUG_PATTERN = r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=63)]

# What people read (titles, venue, section and tier names): any text without control characters
# (C0, DEL, C1), which no name needs and which would reach logs, terminals and other systems.
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def new_slug(title: str) -> str:
    """`spring-concert-4f9a1c` from `Spring Concert!`: readable, and unique by its random tail."""
    stem = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:50].strip("-")
    tail = secrets.token_hex(3)
    return f"{stem}-{tail}" if stem else tail
