"""Dependencies of the user service's routes."""

from typing import Annotated

from fastapi import Depends, Request

from ticketing.common.auth_deps import AdminUser, CurrentUser
from ticketing.common.resources import SessionDep
from ticketing.user.settings import UserSettings


def get_user_settings(request: Request) -> UserSettings:
    settings: UserSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[UserSettings, Depends(get_user_settings)]

__all__ = ["AdminUser", "CurrentUser", "SessionDep", "SettingsDep"]
