"""SQF002: a user loaded by another still-open session is add()-ed to the request session.

record_visit() never loads the user through ``db``; the instance still belongs to the auth session.
"""

import os
import tempfile

from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    visits: Mapped[int] = mapped_column(default=0)


def load_current_user(auth_session: Session, user_id: int) -> User:
    """Auth helper: resolves the current user with the auth session."""
    user = auth_session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    return user


def record_visit(user: User, db: Session) -> None:
    user.visits += 1
    db.add(user)
    db.commit()


def handle_request(SessionLocal: sessionmaker[Session], user_id: int) -> None:
    auth_session = SessionLocal()  # stays open for the whole request
    try:
        user = load_current_user(auth_session, user_id)
        with SessionLocal() as db:
            record_visit(user, db)
    finally:
        auth_session.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{os.path.join(tmp, 'app.db')}")
        Base.metadata.create_all(engine)
        SessionLocal = sessionmaker(engine)
        with SessionLocal() as session:
            session.add(User(id=1, name="alice", visits=0))
            session.commit()

        handle_request(SessionLocal, user_id=1)

        with SessionLocal() as session:
            visits = session.execute(select(User.visits).where(User.id == 1)).scalar_one()
        print(f"visits: {visits}")
        assert visits == 1, visits
        engine.dispose()


if __name__ == "__main__":
    main()
