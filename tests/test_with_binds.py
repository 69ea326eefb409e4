"""helpers.with_binds: the name a with-item binds, plain or dotted as each caller needs."""

from __future__ import annotations

import libcst as cst

from codemods.passes.helpers import with_binds

SOURCE = "with a() as s, b() as self.t, c() as (x, y), d(), e() as box[0]:\n    pass\n"


def items() -> list[cst.WithItem]:
    stmt = cst.parse_module(SOURCE).body[0]
    assert isinstance(stmt, cst.With)
    return list(stmt.items)


def test_a_plain_name_only_by_default():
    assert [with_binds(i) for i in items()] == ["s", None, None, None, None]


def test_a_dotted_target_when_asked():
    assert [with_binds(i, dotted_target=True) for i in items()] == ["s", "self.t", None, None, None]
