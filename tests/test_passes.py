"""Pass examples, generated from each pass's own examples (as Fixit does).

For every pass: each example is found, rewritten to exactly its ``after`` (or reported without
a change when it has none), and the rewrite is a fixed point; each ``valid`` case from the
traps is left alone.
"""

from __future__ import annotations

import pytest

from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes import ALL_PASSES

EXAMPLES = [
    pytest.param(p, i, ex, id=f"{p.code}-example{i}") for p in ALL_PASSES for i, ex in enumerate(p.examples)
]
FIXED = [pytest.param(p, i, ex, id=f"{p.code}-example{i}") for p in ALL_PASSES
         for i, ex in enumerate(p.examples) if ex.fixed is not None]
VALID = [pytest.param(p, v, id=f"{p.code}-valid{i}") for p in ALL_PASSES for i, v in enumerate(p.valid)]


def _run(p, source: str):
    # Examples show every fix, unsafe ones included (test_cli checks they wait for the flag).
    return fix_text(source, Config(root="/project", select=(p.code,), unsafe_fixes=True),
                    project=p.example_project, path="app/example.py")


@pytest.mark.parametrize("p,i,ex", EXAMPLES)
def test_example_is_found_and_fixed(p, i, ex):
    result = _run(p, ex.source)
    assert result.error is None
    codes = [f.code for f in result.findings]
    assert p.code in codes, f"{p.code} example {i} not found"
    if ex.fixed is None:
        assert not result.changed
        assert all(not f.fixable for f in result.findings if f.code == p.code)
    else:
        assert result.new_text == ex.fixed


@pytest.mark.parametrize("p,i,ex", FIXED)
def test_fix_is_a_fixed_point(p, i, ex):
    again = _run(p, ex.fixed)
    assert again.error is None
    assert not again.changed
    assert [f for f in again.findings if f.fixable] == []


@pytest.mark.parametrize("p,v", VALID)
def test_valid_code_is_left_alone(p, v):
    result = _run(p, v.source)
    assert result.error is None
    assert [f.message for f in result.findings] == [], v.why
    assert not result.changed


@pytest.mark.parametrize("p", ALL_PASSES, ids=lambda p: p.code)
def test_every_pass_is_documented(p):
    page = p.explain()
    for heading in ("## What it does", "## Why is this bad?", "## The fix", "## Fix safety"):
        assert heading in page
    assert p.examples and p.valid
    assert p.triggers


def test_codes_are_unique_and_ordered():
    codes = [p.code for p in ALL_PASSES]
    assert codes == sorted(set(codes))


LOADED_CHANGED_READ_AFTER = '''\
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

session_maker = async_sessionmaker()


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


async def rename(user_id: int, name: str) -> str:
    async with session_maker() as session:
        user = await session.get(User, user_id)
        user.name = name.title()
        await session.commit()
    return f"renamed to {user.name}"
'''


def test_one_bug_one_finding_sqf003_and_sqf005():
    """Loaded in a scope, changed, committed, read after it: SQF003's capture, not also SQF005's
    refresh; with SQF003 off, SQF005 takes it."""
    both = fix_text(LOADED_CHANGED_READ_AFTER, Config(root="/p"))
    assert [f.code for f in both.findings] == ["SQF003"]
    assert "        user.name = name.title()\n        user_name = user.name\n        await session.commit()\n" in both.new_text
    alone = fix_text(LOADED_CHANGED_READ_AFTER, Config(root="/p", ignore=("SQF003",)))
    assert [f.code for f in alone.findings] == ["SQF005"]


def test_sqf009_rollback_then_sqf004_expunge_is_a_fixed_point():
    """SQF009 inserts a rollback into a handler that goes on; SQF004 then offers expunge_all()
    after it, an unsafe fix there: `apply` leaves it out, `--unsafe-fixes` adds it, and both
    results are fixed points."""
    from codemods.passes.rollback_after_failed_flush import RollbackAfterFailedFlush as P

    source = P.examples[0].source
    rollback = "            except IntegrityError:\n                session.rollback()\n"

    def run(text, unsafe):
        return fix_text(text, Config(root="/project", unsafe_fixes=unsafe), project=P.example_project,
                        path="app/example.py")

    safe = run(source, False)
    assert rollback in safe.new_text and "expunge_all" not in safe.new_text
    again = run(safe.new_text, False)
    assert not again.changed
    assert [(f.code, f.fixable, f.fix_safe) for f in again.findings] == [("SQF004", True, False)]

    unsafe = run(source, True)
    assert rollback + "                session.expunge_all()\n" in unsafe.new_text
    again = run(unsafe.new_text, True)
    assert not again.changed and again.findings == []


FALLS_THROUGH = '''\
from sqlalchemy.exc import IntegrityError

from app.db import SessionLocal, User


def create(name: str) -> int:
    with SessionLocal() as session:
        session.add(User(name=name))
        try:
            session.commit()
        except IntegrityError:
            print("taken")
        else:
            session.refresh(user)
        return session.scalar(count_users())
'''


def test_sqf009_names_the_next_use_after_the_handler():
    """The handler falls through to the code after the try (the try's `else` does not run
    after a handler); the message names the first later use of the session."""
    from codemods.passes.rollback_after_failed_flush import RollbackAfterFailedFlush as P

    result = fix_text(FALLS_THROUGH, Config(root="/project", select=("SQF009",)), project=P.example_project,
                      path="app/example.py")
    assert [f.code for f in result.findings] == ["SQF009"]
    assert "`session.scalar()` runs next (line 15)" in result.findings[0].message
    assert "        except IntegrityError:\n            session.rollback()\n            print(\"taken\")\n" in result.new_text
    without_later_use = FALLS_THROUGH.replace("        return session.scalar(count_users())\n", "")
    left = fix_text(without_later_use, Config(root="/project", select=("SQF009",)), project=P.example_project,
                    path="app/example.py")
    assert left.findings == []


def test_sqf009_names_the_caller_that_goes_on_with_the_session():
    """A helper that swallows a failed commit of the session it was handed: the caller whose
    loop comes round with the same session is named; a caller that opens a session each round
    is not a use."""
    from codemods.passes.rollback_after_failed_flush import RollbackAfterFailedFlush as P

    example = next(e for e in P.examples if e.title.startswith("a helper swallows"))
    config = Config(root="/project", select=("SQF009",))
    result = fix_text(example.source, config, project=P.example_project, path="app/example.py")
    assert [f.code for f in result.findings] == ["SQF009"]
    assert "`touch_all()` (line 17) goes on using it" in result.findings[0].message
    reopened = example.source.replace("    with SessionLocal() as session:\n        for user_id in user_ids:\n            touch",
                                      "    for user_id in user_ids:\n        with SessionLocal() as session:\n            touch")
    assert reopened != example.source
    assert fix_text(reopened, config, project=P.example_project, path="app/example.py").findings == []


MERGED_THEN_RETURNED = '''\
from app.db import SessionLocal, User


def save(user: User, name: str) -> User:
    with SessionLocal() as session:
        session.merge(user)
        user.name = name
        session.commit()
    return user
'''


def test_sqf008_rebinding_lets_sqf005_refresh_what_leaves_the_scope():
    """Once `user` is the merged instance, the commit expires it and the scope closes before it
    is returned: the next round's SQF005 refreshes it, and the result is a fixed point."""
    from codemods.passes.merge_result_discarded import MergeResultDiscarded as P

    def run(text):
        return fix_text(text, Config(root="/project"), project=P.example_project, path="app/example.py")

    first = run(MERGED_THEN_RETURNED)
    assert [f.code for f in first.findings] == ["SQF008"]
    assert ("        user = session.merge(user)\n        user.name = name\n        session.commit()\n"
            "        session.refresh(user)\n    return user\n") in first.new_text
    again = run(first.new_text)
    assert not again.changed and again.findings == []
