"""The tables of every service in one SQLModel metadata, what migrations are written against."""

from sqlalchemy import MetaData
from sqlmodel import SQLModel

import ticketing.event.models
import ticketing.payment.models
import ticketing.reservation.models
import ticketing.seat.models
import ticketing.user.models

# Every module that declares table models: importing it registers its tables with SQLModel's
# metadata. Add yours here so autogenerate and the drift test (tests/core/test_migrations.py) see it.
MODEL_MODULES = (
    ticketing.user.models,
    ticketing.event.models,
    ticketing.seat.models,
    ticketing.reservation.models,
    ticketing.payment.models,
)


def all_tables() -> MetaData:
    return SQLModel.metadata
