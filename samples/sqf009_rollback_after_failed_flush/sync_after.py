"""SQF009: an import skips the names that are already taken.

The handler catches the duplicate's IntegrityError but leaves the failed transaction in the
session, so the next round's commit raises PendingRollbackError.
"""

import os
import tempfile

from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'app.db')}")
SessionLocal = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)


def import_users(names: list[str]) -> int:
    with SessionLocal() as session:
        for name in names:
            session.add(User(name=name))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                session.expunge_all()
                print(f"skipped {name}: already taken")
        return session.scalar(select(func.count(User.id)))


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        count = import_users(["alice", "bob", "alice", "carol"])
        print(f"users: {count}")
        engine.dispose()


if __name__ == "__main__":
    main()
