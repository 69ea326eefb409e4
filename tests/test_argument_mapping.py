"""Which parameter a call's argument fills: one mapping (``index.lookup``) for the index's
session hand-offs, SQF010's callers and SQF002's callers. A method's ``self`` is filled by the
object it is called on, except when an instance method is called through its class."""

from __future__ import annotations

import textwrap

from codemods.config import Config
from codemods.engine import fix_text
from codemods.index import CallSite, Function, Origin, Param
from codemods.index.lookup import argument_for, param_at, positional_params
from codemods.passes.merge_foreign import MergeForeignInstance


def _fn(qualname: str, *params: str, decorators: tuple[str, ...] = ()) -> Function:
    return Function(qualname=qualname, line=1, is_async=False, is_generator=False,
                    params=[Param(name=p) for p in params], returns=None, decorators=list(decorators))


def _site(*names: str, **keywords: str) -> CallSite:
    return CallSite(callee="app.f", line=3, args=[Origin("loaded", via=n) for n in names],
                    kwargs={k: Origin("loaded", via=v) for k, v in keywords.items()},
                    arg_names=list(names), kwarg_names=dict(keywords))


def test_a_method_called_on_an_object_skips_self():
    method = _fn("Repo.save", "self", "db", "obj")
    assert positional_params(method, bound=True) == ["db", "obj"]
    assert param_at(method, 0, bound=True) == "db"
    assert argument_for(method, _site("session", "user"), "obj", bound=True)[1] == "user"


def test_an_instance_method_called_through_its_class_takes_self_first():
    method = _fn("Repo.save", "self", "db", "obj")
    assert positional_params(method, bound=False) == ["self", "db", "obj"]
    assert param_at(method, 1, bound=False) == "db"
    assert argument_for(method, _site("repo", "session", "user"), "obj", bound=False)[1] == "user"


def test_a_classmethod_binds_cls_however_it_is_called():
    method = _fn("Repo.create", "cls", "db", "obj", decorators=("classmethod",))
    assert positional_params(method, bound=False) == ["db", "obj"]
    assert argument_for(method, _site("session", "user"), "obj", bound=False)[1] == "user"


def test_a_function_keeps_every_parameter_and_keywords_win():
    fn = _fn("save", "db", "obj")
    assert positional_params(fn, bound=True) == positional_params(fn, bound=False) == ["db", "obj"]
    assert argument_for(fn, _site("session", obj="user"), "obj", bound=True)[1] == "user"
    assert argument_for(fn, _site("session"), "obj", bound=True) == (None, None)  # not passed
    assert argument_for(fn, _site("session"), "other", bound=True) == (None, None)  # no such parameter


_CALLERS = '''
from sqlalchemy.orm import Session, sessionmaker


class Visits:
    {decorator}
    def record(self_or_cls, user, db: Session) -> None:
        user.visits += 1
        db.add(user)
        db.commit()


def handle(SessionLocal: sessionmaker, user_id: int) -> None:
    auth = SessionLocal()
    user = auth.get(User, user_id)
    with SessionLocal() as db:
        Visits.record({receiver}user, db)
'''


def _sqf002(decorator: str, receiver: str, first: str) -> list[str]:
    source = textwrap.dedent(_CALLERS).format(decorator=decorator, receiver=receiver).replace("self_or_cls", first)
    result = fix_text(source, Config(root="/project", select=("SQF002",)),
                      project=MergeForeignInstance.example_project, path="app/example.py")
    assert result.error is None
    return [f.message for f in result.findings]


def test_sqf002_asks_the_callers_of_a_method():
    # a classmethod called through its class, and an instance method called through its class
    # with the instance first: both hand `record` an object loaded through `auth`
    for decorator, receiver, first in (("@classmethod", "", "cls"), ("", "Visits(), ", "self")):
        found = _sqf002(decorator, receiver, first)
        assert len(found) == 1 and "passes an object loaded through `auth`" in found[0], (decorator, found)


def test_sqf002_maps_an_instance_methods_arguments_past_its_self():
    # without the instance, `user` fills `self` and `db` fills `user`: nothing is loaded there
    assert _sqf002("", "", "self") == []


def test_the_slot_an_argument_of_a_parsed_call_fills():
    """The passes' side (libcst): one answer for SQF010's hand-offs, SQF009's scopes and
    SQF006's callee reads. After ``*args`` a positional argument's slot is unknown."""
    import libcst as cst

    from codemods.passes.helpers import argument_position

    call = cst.parse_expression("f(a, b, *rest, d, key=c, **more)")
    assert isinstance(call, cst.Call)
    slots = [argument_position(call, arg) for arg in call.args]
    assert slots == [0, 1, None, None, "key", None]
    call = cst.parse_expression("f(a, *xs, key=b)")
    assert isinstance(call, cst.Call)
    assert [argument_position(call, arg) for arg in call.args] == [0, None, "key"]


_REPO = '''
from sqlalchemy.ext.asyncio import AsyncSession
from bot.services import User, quiet_pool


class Repo:
    async def save(self, db: AsyncSession, user: User) -> None:
        await db.commit()

    async def again(self, db: AsyncSession, user: User) -> None:
        await self.save(db, user)


async def by_class(repo: Repo, user: User) -> None:
    async with quiet_pool() as db:
        await Repo.save(repo, db, user)


async def by_local(user: User) -> None:
    repo = Repo()
    async with quiet_pool() as db:
        await repo.save(db, user)
'''


def test_the_index_says_which_call_sites_bind_self():
    from codemods.engine import index_for_sources
    from codemods.passes.examples import BOT

    index = index_for_sources({"bot/__init__.py": "", "bot/services.py": BOT, "bot/jobs.py": _REPO},
                              Config(root="/p"))
    rows = index.call_sites("bot.jobs.Repo.save") + index.receiver_call_sites("bot.jobs.Repo.save")
    bound = {caller.qualname: index.binds_self(site) for _mod, caller, site in rows}
    assert bound == {"by_class": False, "Repo.again": True, "by_local": True}


def test_a_hand_off_of_the_session_records_whether_the_call_binds_self():
    from codemods.index import extract

    source = '''
from sqlalchemy.orm import Session


class Record:
    def save(self, db: Session) -> None:
        db.commit()


def keep(record: Record, db: Session) -> None:
    record.save(db)
    Record.save(record, db)
'''
    facts = extract("app/keep.py", source, "app.keep")
    ends = [(end.callee, end.passed, end.binds_self) for end in facts.functions["keep"].session_ends]
    assert ends == [("app.keep.Record.save", 0, True), ("app.keep.Record.save", 1, False)]
    # and both calls reach the commit, each through the right parameter
    from codemods.index import ProjectIndex

    index = ProjectIndex([facts])
    assert [index.session_ends(c, p, binds_self=b) for c, p, b in ends] == [{"commit"}, {"commit"}]
    assert index.session_ends("app.keep.Record.save", 0, binds_self=False) == frozenset()  # `record` is no session
