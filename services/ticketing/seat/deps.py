"""Dependencies of the seat service's routes."""

from typing import Annotated

import httpx
from fastapi import Depends, Request

from ticketing.common.auth_deps import AdminUser, SaleManager
from ticketing.common.resources import RedisDep, SessionDep
from ticketing.seat.settings import SeatSettings


def get_seat_settings(request: Request) -> SeatSettings:
    settings: SeatSettings = request.app.state.settings
    return settings


def get_event_client(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.event_client
    return client


SettingsDep = Annotated[SeatSettings, Depends(get_seat_settings)]
EventClientDep = Annotated[httpx.AsyncClient, Depends(get_event_client)]

__all__ = ["AdminUser", "EventClientDep", "RedisDep", "SaleManager", "SessionDep", "SettingsDep"]
