"""The tables of every service in one SQLModel metadata, what migrations are written against."""

import importlib

from sqlalchemy import MetaData
from sqlmodel import SQLModel

# Every module that declares table models; add yours so autogenerate and the drift test see it.
MODEL_MODULES = (
    "ticketing.user.models",
    "ticketing.event.models",
    "ticketing.seat.models",
    "ticketing.reservation.models",
    "ticketing.payment.models",
)


def all_tables() -> MetaData:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return SQLModel.metadata
