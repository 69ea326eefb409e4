"""sqla-fix: find and fix SQLAlchemy session-lifecycle bugs.

For tools that embed sqla-fix, :mod:`codemods.api` has ``check_source`` and ``fix_source``.
"""

__version__ = "0.1.0"
#: What `sqla-fix --version` prints.
VERSION_LINE = f"sqla-fix, version {__version__}"
#: The project's home (also in pyproject.toml's [project.urls]); rule help links point here.
HOMEPAGE = "https://github.com/sqla-fix/sqla-fix"
