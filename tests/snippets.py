"""Source snippets shared by the tests."""

from __future__ import annotations

# SQF002, sync: record_visit receives the user and the session separately; its caller loads
# the user through another session that is still open.
BUGGY = '''\
from sqlalchemy.orm import Session, sessionmaker


def record_visit(user, db: Session) -> None:
    user.visits += 1
    db.add(user)
    db.commit()


def handle(SessionLocal: sessionmaker, user_id: int) -> None:
    with SessionLocal() as auth:
        user = auth.get(User, user_id)
        with SessionLocal() as db:
            record_visit(user, db)
'''
BUG_LINE = "    db.add(user)"
FIXED_LINE = "    user = db.merge(user)"
FIXED = BUGGY.replace(BUG_LINE, FIXED_LINE)
assert FIXED != BUGGY
