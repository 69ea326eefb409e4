"""SQF004: get_db() rolls back a failed request and re-raises.

The rollback runs on the error path, so the session is cleared right after it.
"""

import os
import tempfile
from collections.abc import Iterator

from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'app.db')}")
SessionLocal = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    except Exception:
        db.rollback()
        db.expunge_all()
        raise
    finally:
        db.close()


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        gen = get_db()
        db = next(gen)
        db.add(Item(name="lost"))
        db.flush()
        try:
            gen.throw(ValueError("boom"))
        except ValueError as exc:
            print(f"request failed: {exc}")
        gen = get_db()
        db = next(gen)
        db.add(Item(name="kept"))
        db.commit()
        next(gen, None)
        with SessionLocal() as session:
            names = list(session.scalars(select(Item.name).order_by(Item.id)))
        for name in names:
            print(f"item: {name}")
        assert names == ["kept"], names
        engine.dispose()


if __name__ == "__main__":
    main()
