"""SQF005: add_message() returns a message out of a get_db() block that commits on exit.

The exit commit expires the message again and close() detaches it, so the caller cannot read it.
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


class Base(DeclarativeBase):
    pass


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int]
    content: Mapped[str]


@contextmanager
def get_db() -> Iterator[Session]:
    session = SessionLocal()
    try:
        yield session
        session.commit()
    finally:
        session.close()


def add_message(session_id: int, content: str) -> Message:
    with get_db() as session:
        message = Message(session_id=session_id, content=content)
        session.add(message)
        session.commit()
        session.refresh(message)
        return message


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        message = add_message(session_id=7, content="hello")
        print(f"id: {message.id}")
        print(f"content: {message.content}")
        assert (message.id, message.content) == (1, "hello")
        engine.dispose()


if __name__ == "__main__":
    main()
