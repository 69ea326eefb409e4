"""SQF007: a module-level cache hands a rolled-back Conversation to the next request.

Request 2 updates the cached instance without attaching it, so the Agent insert breaks the FK.
"""

import os
import tempfile

from sqlalchemy import ForeignKey, create_engine, event, func, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'chat.db')}")
SessionLocal = sessionmaker(engine)


@event.listens_for(engine, "connect")
def enable_foreign_keys(dbapi_connection, connection_record) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    name: Mapped[str]


_conversations: dict[int, Conversation] = {}


def get_or_create_conversation(session: Session, conversation_id: int, title: str) -> Conversation:
    if conversation_id in _conversations:
        conversation = _conversations[conversation_id]
        conversation.title = title
        return conversation
    conversation = Conversation(id=conversation_id, title=title)
    session.add(conversation)
    session.flush()
    _conversations[conversation_id] = conversation
    return conversation


def create_session_request(conversation_id: int) -> None:
    with SessionLocal() as session:
        try:
            get_or_create_conversation(session, conversation_id, "draft")
            raise LookupError(f"agent for conversation {conversation_id} not found")
        except LookupError as exc:
            session.rollback()
            print(f"request 1 failed: {exc}")


def message_request(conversation_id: int) -> None:
    with SessionLocal() as session:
        conversation = get_or_create_conversation(session, conversation_id, "support chat")
        print(f"cached conversation is transient: {inspect(conversation).transient}")
        session.commit()
        count = session.scalar(select(func.count()).select_from(Conversation))
        print(f"conversations in db: {count}")
        agent = Agent(conversation_id=conversation.id, name="helper")
        session.add(agent)
        session.commit()


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        create_session_request(42)
        message_request(42)
        engine.dispose()


if __name__ == "__main__":
    main()
