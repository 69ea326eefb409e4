"""The passes, one module each. ``ALL_PASSES`` is in rule-code order."""

from __future__ import annotations

from .base import Pass
from .expired_read_in_async import ExpiredReadInAsync
from .expunge_after_rollback import ExpungeAfterRollback
from .hoist_out_of_scope import HoistOutOfScope
from .instance_outlives_session import InstanceOutlivesSession
from .lazy_load_outside_session import LazyLoadOutsideSession
from .lost_update import LostUpdate
from .merge_foreign import MergeForeignInstance
from .merge_result_discarded import MergeResultDiscarded
from .refresh_before_escape import RefreshBeforeEscape
from .rollback_after_failed_flush import RollbackAfterFailedFlush
from .session_never_closed import SessionNeverClosed
from .snapshot_before_expunge import SnapshotBeforeExpunge

ALL_PASSES: tuple[type[Pass], ...] = (
    SnapshotBeforeExpunge, MergeForeignInstance, HoistOutOfScope, ExpungeAfterRollback,
    RefreshBeforeEscape, LazyLoadOutsideSession, InstanceOutlivesSession, MergeResultDiscarded,
    RollbackAfterFailedFlush, ExpiredReadInAsync, SessionNeverClosed, LostUpdate,
)
BY_CODE: dict[str, type[Pass]] = {p.code: p for p in ALL_PASSES}

__all__ = ["ALL_PASSES", "BY_CODE", "Pass"]
