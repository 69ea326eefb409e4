"""SQF011: report() opens a session for a read and never closes it.

The read begins a transaction, so the session keeps its pooled connection checked out until
the garbage collector collects it. With a pool of one connection, the next call waits for a
connection that never comes back: TimeoutError.
"""

import os
import tempfile

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'app.db')}",
                       pool_size=1, max_overflow=0, pool_timeout=1)
SessionLocal = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def report(day: int) -> None:
    with SessionLocal() as session:
        total = session.scalar(select(func.count()).select_from(User))
        print(f"day {day}: {total} users")


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        with SessionLocal() as session:
            session.add_all([User(name="alice"), User(name="bob")])
            session.commit()
        for day in range(1, 4):
            report(day)
        engine.dispose()


if __name__ == "__main__":
    main()
