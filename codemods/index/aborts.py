"""Failed statements that abort the transaction.

On PostgreSQL any statement that fails inside a transaction aborts it: the server refuses
every later statement of that transaction (``current transaction is aborted, commands ignored
until end of transaction block``) and answers its COMMIT with a rollback. SQLAlchemy's
Session does not know: unlike a failed flush, a failed ``execute()`` leaves the session
usable, and only the database refuses. So whether a caught, failed query poisons the session
depends on the database, which the code names in its engine URLs.

The queries here take the project index: :func:`aborting_database` (every engine URL the
project's code names is a PostgreSQL one) and :func:`runs_statements_on` (a project function
sends statements through the session handed to it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import names

if TYPE_CHECKING:
    from .queries import ProjectIndex

# A database URL or a driver name as code writes it: "postgresql+asyncpg://...",
# f"sqlite:///{path}", URL.create("postgresql+psycopg", ...)
_URL = re.compile(r"(postgresql|postgres|sqlite|mysql|mariadb|oracle|mssql|cockroachdb|duckdb)(?:\+\w+$|(?:\+\w+)?://)")
AUTOCOMMIT = "AUTOCOMMIT"


def database_named(text: str) -> str | None:
    """The database a string constant names as an engine URL or a driver name (the URL's
    scheme without its driver: "postgresql"), else None."""
    found = _URL.match(text)
    return None if found is None else "postgresql" if found.group(1) == "postgres" else found.group(1)


def aborting_database(index: ProjectIndex) -> bool:
    """Does the project run on PostgreSQL only? True when the engine URLs (and driver names)
    its code outside tests names are all PostgreSQL's, at least one, and no code names the
    AUTOCOMMIT isolation level (where each statement is its own transaction)."""
    def compute() -> bool:
        named: set[str] = set()
        autocommit = False
        for module in index.modules.values():
            if not names.is_test_module(module.module):
                named |= module.databases
                autocommit = autocommit or module.autocommit
        return named == {"postgresql"} and not autocommit

    return index.remember(("aborting-database",), compute)


def runs_statements_on(index: ProjectIndex, qualified: str | None, position: int | None, keyword: str | None) -> bool:
    """Calling the project function ``qualified`` with a session at ``position`` (or
    ``keyword``): does it send statements through that session (``session.execute(...)``,
    ``session.get(...)``, ``session.connection()``), with no rollback of its own anywhere?"""
    from .lookup import param_at

    fn = index.function(qualified)
    passed = keyword if keyword is not None else position
    if fn is None or passed is None or not fn.param_statements or "rollback" in fn.methods:
        return False
    name = param_at(fn, passed, bound=False)
    param = next((p for p in fn.params if p.name == name), None)
    return param is not None and not param.depends and param.name in fn.param_statements \
        and index.session_class(param.annotation) is not None


def statement_function_names(index: ProjectIndex) -> frozenset[str]:
    """The short names of the project functions that run statements on a session parameter:
    a function calling none of them (and no session method) needs no closer look."""
    return index.remember(("statement-functions",), lambda: frozenset(
        q.rsplit(".", 1)[-1] for mod in index.modules.values() for q, fn in mod.functions.items() if fn.param_statements))
