"""The user service's settings: the common ones plus who is an administrator."""

from functools import lru_cache
from typing import Annotated

from pydantic import field_validator
from pydantic_settings import NoDecode

from ticketing.common.settings import CommonSettings


class UserSettings(CommonSettings):
    # TICKETING_ADMIN_EMAILS="ops@example.org,lead@example.org": these users log in as admins.
    admin_emails: Annotated[frozenset[str], NoDecode] = frozenset()

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _split_and_normalise(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple | set | frozenset):
            return frozenset(str(email).strip().lower() for email in value if str(email).strip())
        return value

    def is_admin(self, email: str) -> bool:
        return email.lower() in self.admin_emails


@lru_cache
def get_settings() -> UserSettings:
    return UserSettings()
