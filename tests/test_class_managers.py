"""What the index reads of a class-based context manager: what its exit does to the session
it holds when the block ended without an error, the class a function hands out, and the class
a typed name stands for (codemods/index/managers.py)."""

from __future__ import annotations

import ast
import textwrap

import pytest

from codemods.index.managers import annotation_class, exit_ends, receiver_class, returned_class


def _fn(src: str) -> ast.FunctionDef:
    node = ast.parse(textwrap.dedent(src)).body[0]
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    return node  # type: ignore[return-value]


def _ends(src: str) -> set[tuple[str, str, bool]]:
    return {(e.attr, e.method, e.certain) for e in exit_ends(_fn(src))}


def test_the_error_branch_is_skipped_and_what_follows_it_is_certain():
    assert _ends("""
        def __exit__(self, exc_type, exc, tb):
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
            self.session.close()
    """) == {("session", "commit", True), ("session", "close", True)}
    assert _ends("""
        async def __aexit__(self, exc_type, exc, tb):
            try:
                if exc:
                    await self.s.rollback()
                else:
                    await self.s.commit()
            finally:
                await self.s.__aexit__(exc_type, exc, tb)
    """) == {("s", "commit", True), ("s", "close", True)}


def test_a_test_of_the_error_s_type_is_the_error_branch():
    assert _ends("""
        def __exit__(self, exc_type, exc_value, traceback):
            if isinstance(exc_value, SQLAlchemyError):
                self.db.rollback()
            self.db.close()
    """) == {("db", "close", True)}


def test_finally_runs_after_a_return():
    assert _ends("""
        def __exit__(self, exc_type, exc, tb):
            try:
                if not self.owner:
                    return
                self.session.commit()
            finally:
                self.session.close()
    """) == {("session", "commit", False), ("session", "close", True)}


def test_an_exit_handing_over_to_the_session_s_own():
    assert _ends("""
        async def __aexit__(self, *exc):
            return await self.session.__aexit__(*exc)
    """) == {("session", "close", True)}


def test_a_rollback_on_every_path_counts():
    assert _ends("""
        def __exit__(self, *exc):
            self.session.rollback()
            self.session.close()
    """) == {("session", "rollback", True), ("session", "close", True)}


def test_an_early_return_under_a_condition_makes_the_rest_uncertain():
    """A scope that joins an enclosing one ends the session only when it opened it."""
    assert _ends("""
        async def __aexit__(self, exc_type, exc, tb):
            if not self.new_tx:
                return
            if exc_type is None:
                await self.session.commit()
            await self.session.close()
    """) == {("session", "commit", False), ("session", "close", False)}


def test_another_condition_or_a_loop_is_uncertain_and_other_receivers_do_not_count():
    assert _ends("""
        def __exit__(self, exc_type, exc, tb):
            if self.autocommit:
                self.session.commit()
            for s in self.others:
                s.close()
            self.lock.release()
            self.conn.close()
    """) == {("session", "commit", False), ("conn", "close", True)}


@pytest.mark.parametrize(("src", "expected"), [
    ("def f(db):\n    class Tx:\n        pass\n    return Tx()\n", ("Tx", True)),
    ("def f():\n    return UnitOfWork(engine)\n", ("UnitOfWork", False)),
    ("def f(flag):\n    if flag:\n        return A()\n    return B()\n", None),
    ("def f():\n    return make_scope()\n", None),
    ("def f():\n    yield Tx()\n", None),
    ("def f():\n    def g():\n        return Tx()\n    return None\n", None),
])
def test_the_class_a_function_hands_out(src, expected):
    found = returned_class(_fn(src))
    assert (None if found is None else (found[0], found[1] is not None)) == expected


def _qualify(name: str) -> str:
    return {"Optional": "typing.Optional", "Union": "typing.Union", "Callable": "typing.Callable",
            "Database": "app.db.Database", "Other": "app.db.Other"}.get(name, name)


def _typed(annotation: str):
    return annotation_class(ast.parse(annotation, mode="eval").body, _qualify)


def test_the_class_an_annotation_names():
    both = _typed("Union[Database, Callable[[], Database]]")
    assert both is not None and (both.cls, both.direct, both.called) == ("app.db.Database", True, True)
    maker = _typed("Callable[[], Database]")
    assert maker is not None and (maker.direct, maker.called) == (False, True)
    plain = _typed("Optional[Database]")
    assert plain is not None and (plain.direct, plain.called) == (True, False)
    assert _typed("Database | None") == plain
    assert _typed("Union[Database, Other]") is None
    assert _typed("list[Database]") is None


def test_the_receiver_of_a_method_call():
    typed = {"db": _typed("Union[Database, Callable[[], Database]]"), "maker": _typed("Callable[[], Database]"),
             "plain": _typed("Database")}

    def receiver(src: str) -> str | None:
        return receiver_class(ast.parse(src, mode="eval").body, typed)  # type: ignore[arg-type]

    assert receiver("db() if callable(db) else db") == "app.db.Database"
    assert receiver("maker()") == "app.db.Database"
    assert receiver("maker") is None  # the callable itself, not what it makes
    assert receiver("plain()") is None  # calling an instance gives something else
    assert receiver("plain if x else other") is None
