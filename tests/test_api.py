"""The Python API for tools that embed sqla-fix."""

from __future__ import annotations

import pytest
from snippets import BUGGY, FIXED

from codemods.api import Config, SourceProblem, check_source, fix_source, load_config

PROVIDERS = '''\
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
SessionLocal = async_sessionmaker(engine)
AuthSession = async_sessionmaker(engine)


async def get_db():
    async with SessionLocal() as session:
        yield session


async def get_auth_db():
    async with AuthSession() as session:
        yield session


async def get_current_user(db: AsyncSession = Depends(get_auth_db)):
    return await db.get(User, 1)
'''

ENDPOINT = '''\
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import get_current_user, get_db


async def visit(user=Depends(get_current_user), db: AsyncSession = Depends(get_db)):
    db.add(user)
    await db.commit()
'''


def test_check_source_reports_findings_under_the_given_path():
    (finding,) = check_source(BUGGY, "app/visits.py")
    assert (finding.path, finding.line, finding.col, finding.code) == ("app/visits.py", 6, 5, "SQF002")
    assert finding.fixable and finding.fix_applies
    assert check_source(BUGGY, config=Config(ignore=("SQF002",))) == []


def test_fix_source_returns_the_fixed_text_or_the_source_itself():
    assert fix_source(BUGGY) == FIXED
    assert fix_source(FIXED) == FIXED
    assert fix_source(BUGGY, config=Config(select=("SQF001",))) == BUGGY


def test_the_project_argument_makes_other_modules_known():
    assert check_source(ENDPOINT, "app/routes.py") == []  # the providers are unknown
    (finding,) = check_source(ENDPOINT, "app/routes.py", project={"app/deps.py": PROVIDERS})
    assert finding.code == "SQF002"
    fixed = fix_source(ENDPOINT, "app/routes.py", project={"app/deps.py": PROVIDERS})
    assert "user = await db.merge(user)" in fixed


def test_source_that_does_not_parse_raises():
    with pytest.raises(SourceProblem, match=r"example\.py:2:5: syntax error"):
        check_source("from sqlalchemy.orm import Session\nif (:\n    db.add(x)\n")


def test_load_config_reads_the_file_that_applies(tmp_path):
    (tmp_path / "sqla-fix.toml").write_text('ignore = ["SQF002"]\n')
    config = load_config(str(tmp_path / "app.py"))
    assert config.ignore == ("SQF002",)
    assert check_source(BUGGY, config=config) == []
