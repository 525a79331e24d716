"""The user table and the shapes the API accepts and returns."""

import re
import uuid
from datetime import datetime

from pydantic import field_validator
from sqlmodel import Column, Field, SQLModel

from ticketing.common.sqltypes import UtcDateTime, utcnow

# Enough to catch typos and keep junk out; the address is proven only by mail, which is out of scope.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class UserBase(SQLModel):
    email: str = Field(max_length=254, unique=True)

    @field_validator("email")
    @classmethod
    def _looks_like_an_address(cls, value: str) -> str:
        if not EMAIL.fullmatch(value):
            raise ValueError("not an email address")
        return value.lower()


class UserCreate(UserBase):
    password: str = Field(min_length=8, max_length=256)


class User(UserBase, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )


class UserPublic(UserBase):
    id: str
    is_admin: bool
    created_at: datetime


class LoginRequest(SQLModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class AccessToken(SQLModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
