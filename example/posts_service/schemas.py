"""Request and response bodies (Pydantic v2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

# Integer columns are 32-bit on PostgreSQL: larger ids can only be 404s, so they are refused up front.
MAX_ID = 2_147_483_647


def _encodable(value: str) -> str:
    # No database driver can encode a lone surrogate (JSON allows "\ud800").
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _iso_text(value: object) -> object:
    # Pydantic would also take a number as a Unix time; the schema promises an ISO 8601 string.
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 date-time string with a UTC offset")
    return value


def _as_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


# PostgreSQL text cannot hold NUL: part of the schema, so clients (and schemathesis) know it.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(pattern=NO_NUL), AfterValidator(_encodable)]
Title = Annotated[str, Field(min_length=1, max_length=255, pattern=NO_NUL), AfterValidator(_encodable)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_as_utc)]


class PostCreate(BaseModel):
    title: Title
    content: Text
    publication_date: Timestamp | None = Field(default=None, description="Defaults to now.")


class PostUpdate(BaseModel):
    """Partial update: only the fields sent are changed; null is refused (every column is required)."""

    title: Annotated[Title, Field(default=None)]
    content: Annotated[Text, Field(default=None)]
    publication_date: Annotated[Timestamp, Field(default=None)]


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    publication_date: datetime
    title: str
    content: str


class CommentCreate(BaseModel):
    content: Annotated[Text, Field(min_length=1)]
    publication_date: Timestamp | None = Field(default=None, description="Defaults to now.")


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    post_id: int
    publication_date: datetime
    content: str


class Problem(BaseModel):
    detail: str
