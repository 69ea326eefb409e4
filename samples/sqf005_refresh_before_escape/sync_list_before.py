"""SQF005: rename_all() returns the users it committed out of its session block.

The commit expired every user and leaving the block detached them, so the caller cannot read them.
"""

import os
import tempfile

from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'app.db')}")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def rename_all(prefix: str) -> list[User]:
    with Session(engine) as session:
        users = session.scalars(select(User).order_by(User.id)).all()
        for u in users:
            u.name = f"{prefix}{u.name}"
        session.commit()
        return users


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([User(name="alice"), User(name="bob")])
            session.commit()
        users = rename_all("team-")
        names = [user.name for user in users]
        for name in names:
            print(f"name: {name}")
        assert names == ["team-alice", "team-bob"], names
        engine.dispose()


if __name__ == "__main__":
    main()
