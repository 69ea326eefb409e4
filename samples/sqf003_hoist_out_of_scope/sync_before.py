"""SQF003: rename_and_report() reads the user after the repository block has closed.

Leaving user_repository() commits, which expires the user, and closes the session, which
detaches it, so user.id and user.name cannot be read after the block.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'app.db')}")
SessionLocal = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, pk: int) -> User:
        user = self.session.get(User, pk)
        if user is None:
            raise LookupError(f"no user with id {pk}")
        return user

    def rename(self, user: User, name: str) -> None:
        user.name = name


@contextmanager
def user_repository() -> Iterator[UserRepository]:
    with SessionLocal() as session:
        yield UserRepository(session)
        session.commit()


def rename_and_report(pk: int, name: str) -> str:
    with user_repository() as repo:
        user = repo.get(pk)
        repo.rename(user, name)
    return f"renamed {user.id} to {user.name}"


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        with SessionLocal() as session:
            session.add(User(name="alice"))
            session.commit()
        report = rename_and_report(1, "bob")
        print(f"report: {report}")
        assert report == "renamed 1 to bob", report
        engine.dispose()


if __name__ == "__main__":
    main()
