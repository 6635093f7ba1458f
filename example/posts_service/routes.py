"""The posts and comments API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posts_service.database import get_read_session, get_session
from posts_service.models import Comment, Post
from posts_service.schemas import MAX_ID, CommentCreate, CommentRead, PostCreate, PostRead, PostUpdate, Problem

router = APIRouter(prefix="/posts", tags=["posts"])

Session = Annotated[AsyncSession, Depends(get_session)]
ReadSession = Annotated[AsyncSession, Depends(get_read_session)]
PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="Id of the post.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"model": Problem, "description": "No post with this id."}
}
# Malformed JSON is a 422 ("JSON decode error", documented by FastAPI itself); FastAPI (0.110 and 0.165 checked)
# answers 400 with a plain detail when the body cannot be parsed at all: bytes that are not UTF-8, or
# nesting deeper than the JSON parser allows.
BAD_BODY: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: {
        "model": Problem,
        "description": "The body could not be parsed (not UTF-8, or nested too deeply).",
    }
}


async def post_or_404(session: AsyncSession, post_id: int) -> Post:
    post = await session.get(Post, post_id)
    if post is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Post {post_id} not found.")
    return post


@router.get("", response_model=list[PostRead])
async def list_posts(
    session: ReadSession,
    skip: Annotated[int, Query(ge=0, le=MAX_ID, description="Posts to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Posts to return.")] = 10,
) -> Sequence[Post]:
    result = await session.scalars(select(Post).order_by(Post.id).offset(skip).limit(limit))
    return result.all()


@router.post("", response_model=PostRead, status_code=status.HTTP_201_CREATED, responses=BAD_BODY)
async def create_post(body: PostCreate, session: Session) -> Post:
    post = Post(**body.model_dump(exclude_none=True))
    session.add(post)
    await session.commit()
    await session.refresh(post)
    return post


@router.get("/{post_id}", response_model=PostRead, responses=NOT_FOUND)
async def get_post(post_id: PostId, session: ReadSession) -> Post:
    return await post_or_404(session, post_id)


@router.patch("/{post_id}", response_model=PostRead, responses={**NOT_FOUND, **BAD_BODY})
async def update_post(post_id: PostId, body: PostUpdate, session: Session) -> Post:
    post = await post_or_404(session, post_id)
    for name, value in body.model_dump(exclude_unset=True).items():
        setattr(post, name, value)
    await session.commit()
    await session.refresh(post)
    return post


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_post(post_id: PostId, session: Session) -> Response:
    post = await post_or_404(session, post_id)
    await session.delete(post)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{post_id}/comments",
    response_model=CommentRead,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **BAD_BODY},
)
async def create_comment(post_id: PostId, body: CommentCreate, session: Session) -> Comment:
    await post_or_404(session, post_id)
    comment = Comment(post_id=post_id, **body.model_dump(exclude_none=True))
    session.add(comment)
    await session.commit()
    await session.refresh(comment)
    return comment


@router.get("/{post_id}/comments", response_model=list[CommentRead], responses=NOT_FOUND)
async def list_comments(post_id: PostId, session: ReadSession) -> Sequence[Comment]:
    await post_or_404(session, post_id)
    result = await session.scalars(select(Comment).where(Comment.post_id == post_id).order_by(Comment.id))
    return result.all()
