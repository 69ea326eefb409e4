"""The project index: what the project's own code says about its sessions.

Built once per run, before any pass runs, from every Python file of the project whose bytes
mention SQLAlchemy (or FastAPI's ``Depends``, or a configured name). It uses the standard
library's ``ast`` (an order of magnitude faster than a libcst parse) and keeps plain, picklable
facts, so it can be built in worker processes and handed to the workers that run the passes.
The modules those files import from are read too when the scan left them out (a package
``__init__`` or a ``db.py`` that only re-exports models names no database library).

What it knows:
- session factories (``sessionmaker``, ``async_sessionmaker``, ``scoped_session``, ...) held by
  module globals, with ``expire_on_commit`` and whether they make ``AsyncSession`` objects;
- functions: FastAPI ``Depends`` parameters (directly or through ``Annotated`` aliases), whether
  they open, yield or return a session and whether that session is closed before they return,
  and call sites of project functions with where each argument came from;
- ``Annotated[..., Depends(...)]`` aliases.

Its parts:
- ``facts``: the records (plain data, picklable, cached between runs);
- ``parse``, ``astutil``: reading a module with ``ast``;
- ``extract``, ``body``: one module's source -> its facts;
- ``resolve``: which dotted name a file is imported as;
- ``queries``: :class:`ProjectIndex`, the questions the passes ask, composed of one layer per
  topic: ``lookup`` (state, name resolution), ``models``, ``sessions``, ``returns``,
  ``handoff``, ``scopes``, ``providers``, ``callers``, ``project_names``;
- ``describe``: what ``sqla-fix index`` prints.
"""

from __future__ import annotations

from ..names import WITH_VALUE
from .astutil import EAGER_LOADERS, dotted_name, load_root, strip_await
from .describe import describe, render_description
from .extract import INDEX_TRIGGERS, UNPARSABLE, ExtractionBug, extract
from .facts import (
                    MODULE_LEVEL,
                    Alias,
                    Attribute,
                    CallSite,
                    ClassFacts,
                    Factory,
                    Function,
                    HeldSession,
                    Holder,
                    Model,
                    ModuleFacts,
                    OpenedSession,
                    Origin,
                    Param,
                    Scope,
                    SessionDecorator,
                    SessionOrigin,
)
from .infer import Stage
from .parse import parse_for_index
from .queries import ProjectIndex, minimal_tokens
from .resolve import ModuleName, RootKind, module_name_for, module_names

__all__ = [
    "EAGER_LOADERS", "ExtractionBug", "INDEX_TRIGGERS", "MODULE_LEVEL", "UNPARSABLE", "WITH_VALUE", "Stage", "Alias", "Attribute", "CallSite", "ClassFacts", "Factory", "Function", "HeldSession", "Holder",
    "Model", "ModuleFacts", "OpenedSession", "Origin", "Param", "ProjectIndex", "Scope", "SessionDecorator",
    "SessionOrigin", "describe", "dotted_name", "extract", "load_root", "minimal_tokens", "module_name_for", "module_names", "ModuleName", "RootKind",
    "parse_for_index", "render_description", "strip_await",
]
