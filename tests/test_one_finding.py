"""One bug, one finding: when two rules describe the same object in the same function, the
engine keeps one (the more specific rule's, unless only the other can fix it). Each rule still
reports alone when it is the only one selected."""

from __future__ import annotations

import pytest

from codemods.config import Config
from codemods.engine import fix_text

DB = "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n" \
     "engine = create_engine('sqlite://')\nSessionLocal = sessionmaker(engine)\n"
MODELS = '''
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
class Base(DeclarativeBase):
    pass
class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
'''
READ_AFTER = '''from app.db import SessionLocal
from app.models import User


def rename(user_id: int, name: str) -> str:
    with SessionLocal() as session:
        user = session.get(User, user_id)
        user.name = name
        session.commit()
    return user.name
'''
EXPUNGED_AND_RETURNED = '''from app.db import SessionLocal
from app.models import User


def snapshot(user_id: int):
    with SessionLocal() as session:
        user = session.get(User, user_id)
        user.name = "x"
        session.commit()
        session.expunge(user)
    print(user.name)
    return user
'''


def codes(source: str, select: tuple[str, ...]) -> list[tuple[str, bool]]:
    result = fix_text(source, Config(root="/p", select=select, unsafe_fixes=True),
                      project={"app/db.py": DB, "app/models.py": MODELS}, path="app/jobs.py")
    return [(f.code, f.fixable) for f in result.findings]


@pytest.mark.parametrize("source,everything,alone", [
    # read after the scope: SQF003 (capture inside) is more specific than SQF005 (refresh)
    (READ_AFTER, [("SQF003", True)], {"SQF005": [("SQF005", True)], "SQF003": [("SQF003", True)]}),
    # expunged after a commit, then read and returned: SQF005's refresh before the expunge
    # covers the reads (SQF001); SQF003 cannot fix an object that is returned, SQF005 can
    (EXPUNGED_AND_RETURNED, [("SQF005", True)],
     {"SQF001": [("SQF001", True)], "SQF003": [("SQF003", False)], "SQF005": [("SQF005", True)]}),
])
def test_one_finding_per_object(source, everything, alone):
    assert codes(source, ("SQF",)) == everything
    for code, expected in alone.items():
        assert codes(source, (code,)) == expected
