"""SQF001: add_message() expunges the committed message, then builds its result from it.

The commit expired every attribute, so reading them after expunge() cannot reload them.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'chat.db')}")
SessionLocal = sessionmaker(engine)
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


@contextmanager
def get_db() -> Iterator[Session]:
    session = SessionLocal()
    try:
        yield session
    finally:
        session.close()


def add_message(session_id: int, user_id: int, content: str) -> dict:
    with get_db() as session:
        message = Message(
            session_id=session_id, user_id=user_id, message_type="user", content=content
        )
        session.add(message)
        session.commit()
        session.expunge(message)
        print(f"stored message for chat session {session_id}")
        return {
            'id': message.id,
            'session_id': message.session_id,
            'user_id': message.user_id,
            'message_type': message.message_type,
            'content': message.content
        }


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        data = add_message(session_id=7, user_id=42, content="hello")
        print(f"message: {data}")
        assert data == EXPECTED, data
        engine.dispose()


if __name__ == "__main__":
    main()
