"""The project index: every module's facts, and the questions the passes ask of them.

:class:`ProjectIndex` is one class composed of topic layers, one module each, every layer
small enough to read at once:

- :mod:`.lookup`: the state (modules, caches) and name resolution; every layer stands on it;
- :mod:`.models`: mapped classes and what they map;
- :mod:`.sessions`: what opens a session, its settings, what holds one;
- :mod:`.returns`: what a function returns (annotation, else inferred from its body);
- :mod:`.handoff`: what a callee does to the session a caller hands it;
- :mod:`.scopes`: what a ``with`` opens and does on exit; session decorators;
- :mod:`.providers`: FastAPI dependencies that provide sessions;
- :mod:`.callers`: call sites across modules;
- :mod:`.project_names`: the project's session-related names, for the prefilter.

Why mixins rather than a class delegating to modules of functions: the passes ask
``index.scope(...)``, ``index.returned(...)`` and the layers ask each other the same way
(``self.opens_session(...)``), so every method reads as it did in one class and there is no
second, forwarding copy of the API. Each layer inherits exactly the layers whose questions it
asks, so the bases of a class say what it depends on (and mypy checks that it asks nothing
else); no method is defined twice, so the order of the bases changes no answer.
"""

from __future__ import annotations

from ..prefilter import minimal_tokens  # noqa: F401  (minimal_tokens re-exported)
from .callers import CallerQueries
from .project_names import NameQueries
from .providers import ProviderQueries


class ProjectIndex(NameQueries, ProviderQueries, CallerQueries):
    """Every question the passes ask of the project's facts (see the module docstring)."""
