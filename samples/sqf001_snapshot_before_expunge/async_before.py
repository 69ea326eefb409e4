"""SQF001 (async): add_message() expunges the committed message, then builds its result from it.

The commit expired every attribute, so reading them after expunge() cannot reload them.
"""

import asyncio
import os
import tempfile

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DB_DIR = tempfile.TemporaryDirectory()
engine = create_async_engine(f"sqlite+aiosqlite:///{os.path.join(DB_DIR.name, 'chat.db')}")
SessionLocal = async_sessionmaker(engine)
EXPECTED = {'id': 1, 'session_id': 7, 'user_id': 42, 'message_type': 'user', 'content': 'hello'}


class Base(DeclarativeBase):
    pass


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int]
    user_id: Mapped[int]
    message_type: Mapped[str]
    content: Mapped[str]


async def add_message(session_id: int, user_id: int, content: str) -> dict:
    async with SessionLocal() as session:
        message = Message(
            session_id=session_id, user_id=user_id, message_type="user", content=content
        )
        session.add(message)
        await session.commit()
        session.expunge(message)
        print(f"stored message for chat session {session_id}")
        return {
            'id': message.id,
            'session_id': message.session_id,
            'user_id': message.user_id,
            'message_type': message.message_type,
            'content': message.content
        }


async def run() -> dict:
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        return await add_message(session_id=7, user_id=42, content="hello")
    finally:
        await engine.dispose()


def main() -> None:
    with DB_DIR:
        data = asyncio.run(run())
        print(f"message: {data}")
        assert data == EXPECTED, data


if __name__ == "__main__":
    main()
