"""Scripts: a module one process runs once, and the functions it runs a bounded number of times.

A module with an `if __name__ == "__main__":` block (or whose own statements run it, with no
function a framework registers) that no other module of the project imports and that starts no
thread or task is a script: its module-level session serves that one run
(SQF007), and a session a function of it leaves open is not one of many piling up in a pool
when the script's own code, outside any loop, is all that calls the function (SQF011).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .flow import function_named, qualname_of
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst

    from .base import FileContext
else:
    cst = lazy("libcst")

# Calls that run a function in another thread, by their last name.
HANDOFF_NAMES = frozenset({"Thread", "Timer", "to_thread", "submit", "run_in_executor"})
# What starts another thread or task (a module that calls none runs its code in one thread).
CONCURRENT = HANDOFF_NAMES | {"gather", "create_task", "ensure_future", "TaskGroup", "ThreadPoolExecutor",
                              "ProcessPoolExecutor", "start_new_thread"}


def single_run_script(ctx: FileContext) -> bool:
    """Is this module a script that one process runs once, in one thread: it has an `if
    __name__ == "__main__":` block (or runs itself: :func:`_runs_itself`), no other module of
    the project imports it, and it starts no thread or task? A module-level session there
    serves that one run, not requests."""
    def compute() -> bool:
        from .loaded_callers import imported_elsewhere

        module = ctx.facts.module if ctx.facts is not None else None
        if not module or not (any(isinstance(s, cst.If) and is_main_test(s.test) for s in ctx.module.body)
                              or _runs_itself(ctx)):
            return False
        if any(q == module or q.startswith(module + ".") for q in imported_elsewhere(ctx)):
            return False
        return not any((dotted(c.func) or "").rsplit(".", 1)[-1] in CONCURRENT  # type: ignore[attr-defined]
                       for c in m.findall(ctx.module, m.Call()))

    return ctx.cached("single-run-script", compute)


# `asyncio.run(main())`: the event loops' entry points, by their dotted name.
_RUNNERS = frozenset({"asyncio.run", "anyio.run", "trio.run"})


def _runs_itself(ctx: FileContext) -> bool:
    """A script without an `if __name__ == "__main__":` block: a statement of the module
    itself runs it (`asyncio.run(main())`, `print(copy_rows(args.source))`: it calls a
    function the module defines), and every function of the module is only ever called: none
    is decorated (commands aside) or handed on as a value (`add_url_rule(view_func=users)`,
    `dp.message.register(start)`): a handler a framework registers is code a server runs many
    times."""
    from .loaded_callers import references

    module = ctx.module
    defined = {s.name.value for s in module.body if isinstance(s, cst.FunctionDef)}
    if any(s.decorators and not is_command(s) for s in module.body if isinstance(s, cst.FunctionDef)):
        return False
    refs = references(ctx)
    for name in defined:
        for ref in refs.get(name, ()):
            if not (ref.defines or ref.calls):
                return False  # handed on: registered, kept or passed somewhere
    return any(dotted(call.func) in _RUNNERS or dotted(call.func) in defined  # type: ignore[attr-defined]
               for stmt in module.body if not isinstance(stmt, (cst.FunctionDef, cst.ClassDef))
               for call in m.findall(stmt, m.Call()))


def is_main_test(test: cst.BaseExpression) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1 \
            or not isinstance(test.comparisons[0].operator, cst.Equal):
        return False
    sides = (test.left, test.comparisons[0].comparator)
    return any(isinstance(s, cst.Name) and s.value == "__name__" for s in sides) \
        and any(isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__" for s in sides)


def runs_once(ctx: FileContext, qualname: str) -> bool:
    """Does the module-level function ``qualname`` of a single-run script run a bounded number
    of times per process: its name is used only to call it (never handed on, stored or
    imported, nor decorated), by the module's own statements outside any loop or
    comprehension, or by another function of the script that runs so? A `main()` the
    `__main__` block calls, and the steps `main()` calls, run once; a handler registered as a
    callback, or by a decorator (a scheduled job, a task), does not."""
    return ctx.cached(("runs-once", qualname), lambda: _runs_once(ctx, qualname, frozenset()))


def _runs_once(ctx: FileContext, name: str, seen: frozenset[str]) -> bool:
    from .loaded_callers import references

    if "." in name or name in seen or not single_run_script(ctx):
        return False
    fn = function_named(ctx, name)
    if fn is None or fn.decorators and not is_command(fn):
        return False  # a decorator may register it to run any number of times (a task, a scheduled job)
    calls = 0
    for ref in references(ctx).get(name, ()):
        if ref.defines:
            continue
        if not ref.calls or _repeated(ctx, ref.parent):
            return False
        if ref.function is not None:
            caller = qualname_of(ctx, ref.function)
            if caller is None or not _runs_once(ctx, caller, seen | {name}):
                return False
        calls += 1
    return calls > 0


# A command-line entry point's decorators (`@cli.command()`, `@click.group()`, `@app.callback()`):
# the command runs once per process.
_COMMANDS = frozenset({"command", "group", "callback"})


def is_command(fn: cst.FunctionDef) -> bool:
    """Is ``fn`` a command-line entry point, run once per process (`@cli.command()`)?"""
    for deco in fn.decorators:
        target = deco.decorator.func if isinstance(deco.decorator, cst.Call) else deco.decorator
        if isinstance(target, cst.Attribute) and target.attr.value in _COMMANDS:
            return True
    return False


def _repeated(ctx: FileContext, call: cst.CSTNode) -> bool:
    """Is ``call`` inside a loop, a comprehension or a lambda of the code it belongs to?"""
    for node in ctx.ancestors(call):
        if isinstance(node, (cst.FunctionDef, cst.Module)):
            return False
        if isinstance(node, (cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp,
                             cst.Lambda)):
            return True
    return False
