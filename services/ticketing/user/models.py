"""The user table and the shapes the API accepts and returns."""

import uuid
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from pydantic import field_validator
from sqlmodel import Column, Field, SQLModel

from ticketing.common.sqltypes import UtcDateTime, utcnow


class UserBase(SQLModel):
    email: str = Field(max_length=254, unique=True)

    @field_validator("email")
    @classmethod
    def _is_an_address(cls, value: str) -> str:
        """An address by the e-mail standards (email-validator, without asking DNS): control
        characters, spaces and reserved domains are refused with the validator's reason. The
        address is proven only by mail, which is out of scope."""
        try:
            checked = validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"not an email address: {exc}") from exc
        return checked.normalized.lower()


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
