"""SQF008: a profile object rebuilt from a cached payload is merged, then renamed.

merge() returns the session's own copy of the row; the rename goes to the object that stays
outside the session, and the commit saves nothing.
"""

import os
import tempfile

from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'app.db')}")
SessionLocal = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def save_profile(user: User, name: str) -> None:
    with SessionLocal() as session:
        user = session.merge(user)
        user.name = name
        session.commit()


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        with SessionLocal() as session:
            session.add(User(id=1, name="alice"))
            session.commit()
        cached = User(id=1, name="alice")  # e.g. rebuilt from a JSON cache
        save_profile(cached, "alicia")
        with SessionLocal() as session:
            name = session.scalar(select(User.name).where(User.id == 1))
        if name == "alicia":
            print(f"saved: {name}")
        else:
            print(f"lost update: the row still says {name}")
        engine.dispose()


if __name__ == "__main__":
    main()
