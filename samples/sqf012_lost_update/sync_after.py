"""SQF012, fixed by hand: the job changed after its session closed is merged into the
session that commits.

`session.merge(job)` copies the detached job's state, the new status included, onto the
session's own instance of the row, so the commit saves it.
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


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    status: Mapped[str] = mapped_column(default="queued")


def finish(job_id: int) -> None:
    with SessionLocal() as session:
        job = session.get(Job, job_id)
    job.status = "done"
    with SessionLocal() as session:
        job = session.merge(job)
        session.commit()


def main() -> None:
    with DB_DIR:
        Base.metadata.create_all(engine)
        with SessionLocal() as session:
            session.add(Job(id=1, name="nightly report"))
            session.commit()
        finish(1)
        with SessionLocal() as session:
            status = session.scalar(select(Job.status).where(Job.id == 1))
        if status == "done":
            print(f"status: {status}")
        else:
            print(f"lost update: the row still says {status}")
        engine.dispose()


if __name__ == "__main__":
    main()
