"""SQF004: create_post() rolls back a duplicate title on a scoped session.

The rollback runs in an except handler, so the session is cleared right after it.
"""

import os
import tempfile

from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker

DB_DIR = tempfile.TemporaryDirectory()
engine = create_engine(f"sqlite:///{os.path.join(DB_DIR.name, 'blog.db')}")
Session = scoped_session(sessionmaker(bind=engine))


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(unique=True)


def create_post(title: str) -> None:
    try:
        Session.add(Post(title=title))
        Session.commit()
    except IntegrityError:
        Session.rollback()
        Session.expunge_all()
        print("duplicate title", title)


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        for title in ["a", "a", "b"]:
            create_post(title)
        titles = list(Session.scalars(select(Post.title).order_by(Post.id)))
        for title in titles:
            print(f"post: {title}")
        assert titles == ["a", "b"], titles
        Session.remove()
        engine.dispose()


if __name__ == "__main__":
    main()
