"""sqla-fix: find and fix SQLAlchemy session-lifecycle bugs."""

__version__ = "0.1.0"
