"""SQF010, a loop's round and a call together: the element of a loop over instances loaded
before it, handed with the session to a project function, arrives expired from the second
round on when something later in the round before committed or rolled the session back; the
function's first reads of it are reported there, naming the caller's loop and what expired it."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from codemods.cli import cli
from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes.examples import BOT
from codemods.passes.expired_read_in_async_examples import charge_loop


def findings(source: str) -> list[tuple[int, str]]:
    result = fix_text(textwrap.dedent(source).lstrip("\n"), Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT}, path="bot/jobs.py")
    return [(f.line, f.message) for f in result.findings]


def test_a_rollback_in_the_round_before_expires_what_the_next_round_hands_in():
    found = findings(charge_loop())
    assert [line for line, _ in found] == [6]
    message = found[0][1]
    assert message.startswith("`user.visits` read here, but `charge_all()` (bot/jobs.py:19) calls this with `user` "
                              "at the start of a round of the loop `for user in users` (line 18): in the round "
                              "before, `charge(...)` (line 19), which may roll back `db`, expired every instance "
                              "`db` holds, and `user` is the next element of a collection loaded before the loop")
    assert "MissingGreenlet" in message


def test_a_commit_counts_when_the_session_expires_on_commit():
    found = findings(charge_loop(pool="session_pool", on_short="pass"))
    assert [line for line, _ in found] == [6]
    assert "`charge(...)` (line 19), which may commit `db`" in found[0][1]


@pytest.mark.parametrize("top", [
    "await db.refresh(user)",  # the callee refreshes before it reads
    "await db.execute(select(User))",  # or loads its model again
])
def test_a_callee_that_reloads_before_reading_is_left_alone(top):
    assert findings(charge_loop(top=top)) == []


def test_a_loop_that_refreshes_its_element_is_left_alone():
    assert findings(charge_loop(round_top="await db.refresh(user)")) == []


def test_a_loop_that_loads_each_element_again_is_left_alone():
    source = charge_loop(round_top="user = await db.get(User, user_id)").replace(
        "for user in users:", "for user_id in [u.id for u in users]:")
    assert "for user_id in" in source
    assert findings(source) == []


def test_a_round_that_only_commits_under_expire_on_commit_false_is_left_alone():
    assert findings(charge_loop(on_short="pass")) == []


def test_a_round_that_neither_commits_nor_rolls_back_is_left_alone():
    source = charge_loop(on_short="await db.flush()", on_charge="await db.flush()")
    assert findings(source) == []


def test_another_session_handed_in_is_left_alone():
    source = charge_loop(session="other").replace("async with quiet_pool() as db:",
                                                  "async with quiet_pool() as db, quiet_pool() as other:")
    assert "as other" in source
    assert findings(source) == []


def test_a_round_that_leaves_the_loop_after_the_call_is_left_alone():
    source = charge_loop().replace("                charged += 1", "                charged += 1\n            return charged")
    assert source.count("return charged") == 2
    assert findings(source) == []


def test_a_read_by_the_loop_first_is_the_one_reported():
    found = findings(charge_loop(round_top="print(user.name)"))
    assert [line for line, _ in found] == [19]
    assert "`user.name` read at the start of a round of the loop" in found[0][1]


CHAIN = '''
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from bot.services import User, session_pool


async def _bill(db: AsyncSession, user) -> None:
    print(user.visits)


async def charge(db: AsyncSession, user) -> None:
    await _bill(db, user)
    await db.commit()


async def charge_all() -> None:
    async with session_pool() as db:
        users = (await db.scalars(select(User))).all()
        for user in users:
            await charge(db, user)
'''


def test_an_element_handed_on_is_reported_where_it_is_first_read():
    found = findings(CHAIN)
    # charge()'s own finding is the read one call away, at its call of _bill() (line 11)
    assert [line for line, _ in found] == [7, 11]
    assert ("`charge()` (bot/jobs.py:11) calls this with `user` (handed on from `charge_all()` (bot/jobs.py:19)) "
            "at the start of a round of the loop `for user in users` (line 18)") in found[0][1]


def test_the_caller_in_another_file_is_named_with_its_path(tmp_path):
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "services.py").write_text(BOT)
    source = charge_loop().lstrip("\n")
    split = source.index("async def charge_all")
    (tmp_path / "bot" / "billing.py").write_text(source[:split])
    (tmp_path / "bot" / "jobs.py").write_text("from bot.billing import charge\n" + source[split:].replace(
        "async def charge_all", "from sqlalchemy import select\nfrom bot.services import User, quiet_pool\n\n\n"
        "async def charge_all"))
    result = CliRunner().invoke(cli, ["check", "--no-cache", "--no-progress", "--select", "SQF010", str(tmp_path)])
    assert "billing.py:6:" in result.output, result.output
    assert "`charge_all()` (bot/jobs.py:11) calls this with `user` at the start of a round of the loop" \
        in result.output
