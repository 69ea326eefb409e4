"""SQF011 across files: a session kept in a request's holder (`context["db_session"]`,
`g.db`) is owned only when some code of the project reads it back and closes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemods import engine
from codemods.cli import cli
from codemods.config import load
from codemods.discovery import discover
from codemods.index import Holder

PROJECT = Path(__file__).parent / "fixtures" / "projects" / "request_holders"


@pytest.fixture(scope="module")
def index():
    config = load(str(PROJECT))
    return engine.build_index(discover([str(PROJECT)], config.root, ()), config, 1)


def test_the_index_knows_which_holders_are_closed(index):
    assert index.holder_closed(Holder("g", "db"))  # popped and closed in a file naming no database library
    assert index.holder_closed(Holder("context", "audit_session"))
    assert index.holder_closed(Holder("ctx", "audit_session"))  # the same key under another name
    # a short key closed under another holder's name (`req.db`), in a file naming no database library
    assert index.holder_closed(Holder("request", "db"))
    # closed only through a job's own **kwargs dict: what its caller passed by keyword
    assert not index.holder_closed(Holder("context", "db_session"))


def test_the_index_knows_what_a_function_keeps_in_a_holder(index):
    fn = index.function("webapp.middleware.tenant_middleware")
    assert fn is not None
    assert [(h.holder, h.factory) for h in fn.held] == [(Holder("context", "db_session"), "webapp.db.tenant_session")]


def test_only_the_holder_nothing_closes_is_reported(monkeypatch):
    monkeypatch.chdir(PROJECT)
    res = CliRunner().invoke(cli, ["check", "--format", "json", "--no-cache", "--no-progress", "."],
                             catch_exceptions=False)
    findings = json.loads(res.output)["findings"]
    assert [(Path(f["path"]).name, f["line"], f["code"]) for f in findings] == [("middleware.py", 8, "SQF011")]
    assert 'kept in `context["db_session"]` is never closed' in findings[0]["message"]


def test_a_kwargs_dict_counts_only_in_the_function_that_packs_it():
    """A `**context` parameter of one function does not turn another function's
    `context["db_session"].close()` (a middleware's own holder) into a keyword close."""
    import ast

    from codemods.index.astutil import walk
    from codemods.index.holders import KWARGS, closed_holders

    tree = ast.parse(
        "def job(func, **context):\n"
        "    try:\n        return func(**context)\n"
        "    finally:\n        context['audit'].close()\n"
        "        def later():\n            context['nested'].close()\n"
        "def middleware(context, next):\n"
        "    try:\n        next()\n"
        "    finally:\n        context['db_session'].close()\n"
    )
    assert closed_holders(walk(tree)) == [Holder(KWARGS, "audit"), Holder(KWARGS, "nested"),
                                    Holder("context", "db_session")]
