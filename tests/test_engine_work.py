"""The engine does no work it does not need: these are behaviours (what is called), not
timings (those are in `make bench`)."""

from __future__ import annotations

from pathlib import Path

import libcst
import pytest
from snippets import BUGGY, FIXED

from codemods import engine
from codemods import index as index_mod
from codemods.config import Config
from codemods.passes import ALL_PASSES, Pass

# A pass example reported without a fix: the file is parsed and checked, and nothing changes.
REPORT_ONLY_PASS, REPORT_ONLY = next((p, ex) for p in ALL_PASSES for ex in p.examples if ex.fixed is None)


def counting_codegen(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = libcst.Module.code

    def code(self):
        calls.append(1)
        return original.fget(self)

    monkeypatch.setattr(libcst.Module, "code", property(code))
    return calls


def test_a_module_no_fix_changed_is_never_generated_again(monkeypatch):
    calls = counting_codegen(monkeypatch)
    result = engine.fix_text(REPORT_ONLY.source, project=REPORT_ONLY_PASS.example_project)
    assert result.findings and not any(f.fixable for f in result.findings)
    assert result.new_text is None
    assert calls == []


def test_a_fixed_module_is_generated(monkeypatch):
    # The other side: codegen does happen when a fix changed the module.
    calls = counting_codegen(monkeypatch)
    result = engine.fix_text(BUGGY)
    assert result.new_text == FIXED
    assert calls


def test_the_index_parses_only_files_whose_bytes_mention_a_trigger(tmp_path, monkeypatch):
    parsed: list[str] = []
    original = index_mod.extract

    def extract(path, source, module):
        parsed.append(path)
        return original(path, source, module)

    monkeypatch.setattr(index_mod, "extract", extract)
    (tmp_path / "db.py").write_text("from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker()\n")
    (tmp_path / "plain.py").write_text("def total(values):\n    return sum(values)\n")
    (tmp_path / "uses.py").write_text("from db import SessionLocal\n\n\ndef f():\n    return SessionLocal()\n")
    files = [str(tmp_path / n) for n in ("db.py", "plain.py", "uses.py")]
    idx = engine.build_index(files, Config(root=str(tmp_path)), jobs=1)
    assert sorted(parsed) == sorted([files[0], files[2]])  # uses.py: it mentions SessionLocal
    assert idx.module_for_path(files[1]) is None


def test_names_of_other_call_results_do_not_pull_files_into_the_index(tmp_path):
    # `T = TypeVar("T")` and `logger = get_logger()` in a module that uses SQLAlchemy are call
    # results, not session factories: a module that only mentions `T` or `logger` stays out.
    (tmp_path / "db.py").write_text(
        "import logging\nfrom typing import TypeVar\n\nfrom sqlalchemy.orm import sessionmaker\n\n"
        "T = TypeVar('T')\nlogger = logging.getLogger(__name__)\nSessionLocal = sessionmaker()\n")
    (tmp_path / "other.py").write_text("from db import T, logger\n\n\ndef f(x: T) -> T:\n    logger.info(x)\n    return x\n")
    (tmp_path / "uses.py").write_text("from db import SessionLocal\n\n\ndef g():\n    return SessionLocal()\n")
    files = [str(tmp_path / n) for n in ("db.py", "other.py", "uses.py")]
    idx = engine.build_index(files, Config(root=str(tmp_path)), jobs=1)
    assert idx.names() == {"SessionLocal"}
    assert idx.module_for_path(files[1]) is None
    assert idx.module_for_path(files[2]) is not None


def test_a_generator_yielding_a_builtins_result_is_no_session_provider(tmp_path):
    # A generator yielding a name bound to a call is a session provider candidate until the
    # index resolves the call; a builtin's result (`tuple(...)`) never is one, so a file that
    # only mentions such a generator stays a byte scan. A generator that yields what an
    # unresolved call made (an attribute of a parameter) stays a candidate, as does a module
    # that defines a function of a builtin's name.
    (tmp_path / "db.py").write_text(
        "import itertools\nfrom sqlalchemy.orm import sessionmaker\n\nSessionLocal = sessionmaker()\n\n\n"
        "def batched(items, size):\n    it = iter(items)\n    while True:\n"
        "        batch = tuple(itertools.islice(it, size))\n        if not batch:\n            return\n"
        "        yield batch\n\n\n"
        "def from_config(config):\n    session = config.session()\n    yield session\n")
    (tmp_path / "shadow.py").write_text(
        "from sqlalchemy.orm import sessionmaker\n\nMaker = sessionmaker()\n\n\n"
        "def iter():\n    return Maker()\n\n\ndef provide():\n    session = iter()\n    yield session\n")
    (tmp_path / "plain.py").write_text("from db import batched\n\n\ndef pairs(xs):\n    return list(batched(xs, 2))\n")
    files = [str(tmp_path / n) for n in ("db.py", "shadow.py", "plain.py")]
    idx = engine.build_index(files, Config(root=str(tmp_path)), jobs=1)
    assert {"from_config", "provide"} <= idx.names()
    assert "batched" not in idx.names()
    assert idx.module_for_path(files[2]) is None


def _sources() -> list[Path]:
    root = Path(__file__).resolve().parent.parent
    return sorted([*root.glob("tests/fixtures/**/*.py"), *root.glob("samples/**/*.py"), *root.glob("codemods/passes/*.py")])


def test_the_parent_and_position_maps_are_the_ones_libcst_gives():
    # The passes' parent map is read straight from the nodes' fields (libcst's provider visits
    # the tree twice, rebuilding every node), their positions computed without the extra walk
    # MetadataWrapper.resolve makes, or for the top-level statement of the node asked about
    # (passes/positions.py; asked in any order, from a fresh map or from one that has others
    # already): all must be the very same maps.
    import random

    from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

    from codemods.passes.base import is_layout, parents, positions
    from codemods.passes.positions import Positions

    compared = every = kept = 0
    for path in _sources():
        module = libcst.parse_module(path.read_text(encoding="utf-8"))
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        provided = wrapper.resolve(ParentNodeProvider)
        expected = {node: parent for node, parent in provided.items() if not is_layout(node)}
        every, kept = every + len(provided), kept + len(expected)
        got = parents(module)
        assert got.keys() == expected.keys(), path
        assert all(got[node] is parent for node, parent in expected.items()), path
        where = wrapper.resolve(PositionProvider)
        assert dict(positions(module)) == dict(where), path
        nodes = [node for node in where if not is_layout(node)]  # the passes ask about no layout
        random.Random(compared).shuffle(nodes)
        lazily = Positions(module, got.get)
        assert all(lazily[node] == where[node] for node in nodes), path
        for node in [module, *module.header[:1], *module.footer[:1], *nodes[:2]]:
            assert Positions(module, got.get)[node] == where[node], path
        compared += 1
    assert compared > 50
    assert kept < every / 2  # layout is most of a tree's nodes


def test_the_plain_namereferences_are_the_ones_a_libcst_visit_finds():
    # SQF006's callers look up every plain name of a module (not an attribute's); the map is
    # read from the nodes' fields: it must hold the very names a libcst visitor finds.
    from codemods.engine import _context
    from codemods.passes.loaded_callers import references

    class Names(libcst.CSTVisitor):
        def __init__(self) -> None:
            self.found: list[libcst.Name] = []

        def visit_Attribute(self, node: libcst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Name(self, node: libcst.Name) -> None:
            self.found.append(node)

    compared = 0
    for path in _sources():
        module = libcst.parse_module(path.read_text(encoding="utf-8"))
        ctx = _context(str(path), module, None, Config(root="."), "m", 0)
        visitor = Names()
        ctx.module.visit(visitor)
        got = references(ctx)
        assert sorted(map(id, visitor.found)) == sorted(id(r.name) for rs in got.values() for r in rs), path
        assert all(r.name.value == value for value, rs in got.items() for r in rs)
        for ref in (r for rs in got.values() for r in rs):  # its parent and function, as the parent map has them
            assert ref.parent is ctx.parent(ref.name)
            inner = next((a for a in ctx.ancestors(ref.name) if isinstance(a, libcst.FunctionDef)), None)
            assert ref.function is inner
        compared += 1
    assert compared > 50


class _Recorder(libcst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []
        self.layout = 0  # layout nodes entered

    def on_visit(self, node) -> bool:
        from codemods.passes.base import is_layout

        if is_layout(node):  # what the plain walk passes by (below it: only more layout)
            self.layout += 1
            return True
        self.calls.append(("visit", id(node)))
        return True

    def on_leave(self, original_node) -> None:
        from codemods.passes.base import is_layout

        if not is_layout(original_node):
            self.calls.append(("leave", id(original_node)))


def _example_sources() -> list[str]:
    return [ex.source for p in ALL_PASSES for ex in p.examples]


def test_the_plain_walk_visits_as_libcst_visits():
    # The passes' event walk goes straight through the nodes' fields, in the order libcst's
    # own visit takes (read from libcst): every node entered and left in the same order, and
    # every function's events the same, node for node, as a libcst visit gives.
    from codemods.passes import flow
    from codemods.passes.base import visit

    def key(ev):
        return (ev.kind, id(ev.node), tuple(id(n) for n in ev.path), ev.owner, ev.name, ev.args,
                id(ev.value) if ev.value is not None else None, ev.index)

    functions = layout = 0
    for source in [p.read_text(encoding="utf-8") for p in _sources()] + _example_sources():
        module = libcst.parse_module(source)
        theirs, ours = _Recorder(), _Recorder()
        module.visit(theirs)
        visit(module, ours)
        assert ours.calls == theirs.calls
        assert ours.layout == 0
        layout += theirs.layout
        for _, fn in flow.functions(module):
            assert [key(e) for e in flow.events(fn)] == [key(e) for e in flow.libcst_events(fn)]
            functions += 1
    assert functions > 500
    assert layout > 10_000  # passed by


def test_a_plain_visit_that_cannot_read_libcst_starts_again_with_a_new_visitor(monkeypatch):
    # visit_with: when libcst's source is not at hand (here: for one node type, met halfway
    # through the walk), libcst's own visit goes through with a new visitor, so that nothing
    # the first one noted before it stopped counts twice.
    import weakref

    from codemods.passes import base

    module = libcst.parse_module("def f(a):\n    x = a.b\n    return g(a, x)\n")
    made: list[_Recorder] = []

    def make() -> _Recorder:
        made.append(_Recorder())
        return made[-1]

    plain = base.visit_with(module, make)
    assert len(made) == 1 and plain.calls

    real = base._field_order

    def no_source(t):
        if t is libcst.Call:
            raise base.NoSource(t.__name__)
        return real(t)

    monkeypatch.setattr(base, "_field_order", no_source)
    monkeypatch.setattr(base, "_PLANS", weakref.WeakKeyDictionary())  # the plans made with the source
    made.clear()
    again = base.visit_with(module, make)
    assert len(made) == 2 and again is made[1]
    assert made[0].calls and len(made[0].calls) < len(again.calls)  # the first stopped at the call
    assert again.calls == plain.calls  # libcst's visit, layout aside: the same calls


def test_the_prefilter_reads_the_projects_names_only_for_a_file_that_mentions_none_of_sqlalchemys(monkeypatch):
    """Working out the project's session-related names reads every module's facts (again after
    each change of the index in the editor's server): a file that mentions a session needs no
    look at them; one that names only a project provider does, and is parsed."""
    from codemods.prefilter import relevant

    index = engine.index_for_sources({"app/deps.py": "from app.db import SessionLocal\n\n"
                                                     "def get_db():\n    with SessionLocal() as s:\n        yield s\n"},
                                     Config())
    asked: list[int] = []
    names = type(index).names
    monkeypatch.setattr(type(index), "names", lambda self: asked.append(1) or names(self))
    assert relevant(b"def f(session):\n    session.commit()\n", index)
    assert asked == []
    assert relevant(b"from app.deps import get_db\n", index)
    assert asked == [1]
    assert not relevant(b"def total(values):\n    return sum(values)\n", index)


GREETING = ("from sqlalchemy.ext.asyncio import AsyncSession\nfrom bot.services import User\n\n\n"
            "async def greet(db: AsyncSession, user: User) -> str:\n    return f'hello {user.name}'\n")
# a caller of greet() in another file; {between}: what it does with the session before the call
HANDLERS = ("from bot.greeting import greet\nfrom bot.services import User, session_pool\n\n\n"
            "async def start(user_id: int) -> str:\n    async with session_pool() as db:\n"
            "        user = await db.get(User, user_id)\n{between}        return await greet(db, user)\n")
COMMITS = "        await db.commit()\n"


def bot_files(root: Path, modules: dict[str, str]) -> list[str]:
    """A project of the package `bot`: its services (the example models and session pools)
    and ``modules`` (by file name); its files, from ``root``."""
    from codemods.passes.examples import BOT

    (root / "pyproject.toml").write_text('[project]\nname = "bot"\n')
    (root / "bot").mkdir(exist_ok=True)
    for name, text in {"__init__.py": "", "services.py": BOT, **modules}.items():
        (root / "bot" / name).write_text(text)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))


def bot_project(root: Path, handlers: str) -> list[str]:
    """A bot whose `greet()` (greeting.py) is called from handlers.py; its files, from ``root``."""
    return bot_files(root, {"greeting.py": GREETING, "handlers.py": handlers})


def parses_counted(monkeypatch) -> list[str]:
    """The texts libcst parses from now on in this test (the stores of trees included)."""
    from codemods import trees

    parsed: list[str] = []
    real = libcst.parse_module

    def counting(text, *args, **kwargs):
        parsed.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(libcst, "parse_module", counting)
    monkeypatch.setattr(trees, "cst", libcst)
    return parsed


def test_a_file_checked_and_read_as_a_callers_file_is_parsed_once(tmp_path, monkeypatch):
    """`greet` is handed `user` by a caller in another file: checking greeting.py walks
    handlers.py, which the run checks too. One libcst parse of each file serves both, and
    only while the text is the same."""
    from codemods import trees

    monkeypatch.setattr(trees, "_KEPT", trees.Kept(64))
    files = bot_project(tmp_path, HANDLERS.format(between=COMMITS))
    parsed = parses_counted(monkeypatch)
    monkeypatch.chdir(tmp_path)
    index = engine.build_index(files, Config(), jobs=1)
    results = engine.run_files(files, index, Config(), jobs=1)
    found = {(r.path, f.code) for r in results for f in r.findings}
    assert ("bot/greeting.py", "SQF010") in found  # reads the `user` a caller hands it expired
    for name in ("greeting.py", "handlers.py"):  # a fix's code is another text
        assert parsed.count((tmp_path / "bot" / name).read_text()) == 1
    # a file whose text changed is parsed again
    edited = (tmp_path / "bot" / "handlers.py").read_text() + "# edited\n"
    trees.parse("bot/handlers.py", edited)
    assert parsed[-1] == edited


def test_a_callers_walk_keeps_none_of_the_callers_nodes(tmp_path, monkeypatch):
    """What a caller's walk hands on (kept for the run, for the next callee it calls) holds no
    node of the caller's tree: once the stores of parsed trees let the caller's file go, none
    of its nodes stay in memory (a large project's callers would otherwise pile up)."""
    import gc

    from codemods import trees
    from codemods.passes import expiry_handoff

    for store in ("_TREES", "_OTHER_FILES", "_WALKED"):
        monkeypatch.setattr(expiry_handoff, store, trees.Kept(64))
    monkeypatch.setattr(trees, "_KEPT", trees.Kept(64))
    def callers() -> set[int]:
        gc.collect()
        return {id(o) for o in gc.get_objects() if isinstance(o, libcst.FunctionDef) and o.name.value == "start"}

    before = callers()  # other tests' trees, still in memory
    files = bot_project(tmp_path, HANDLERS.format(between=COMMITS))
    monkeypatch.chdir(tmp_path)
    index = engine.build_index(files, Config(), jobs=1)
    greeting = [f for f in files if f.endswith("greeting.py")]
    results = engine.run_files(greeting, index, Config(), jobs=1)
    assert [f.code for r in results for f in r.findings] == ["SQF010"]  # handed expired by start()
    assert len(expiry_handoff._WALKED) > 0  # the walk of start() is kept
    for store in (trees._KEPT, expiry_handoff._TREES, expiry_handoff._OTHER_FILES):
        store.clear()
    del results
    assert callers() - before == set()


def _two_callers_files(root: Path, functions: int) -> list[str]:
    """greeting.py with ``greet0()``... each called, with a committed (expired) user, from
    both ha.py and hb.py (padded to some size)."""
    greets = "".join(f"\n\nasync def greet{i}(db: AsyncSession, user: User) -> str:\n    return user.name\n"
                     for i in range(functions))
    modules = {"greeting.py": "from sqlalchemy.ext.asyncio import AsyncSession\nfrom bot.services import User\n" + greets}
    padding = "".join(f"\n\ndef pad{i}(x: int) -> int:\n    return x + {i}\n" for i in range(300))
    starts = "".join(f"\n\nasync def start{i}(user_id: int) -> str:\n    async with session_pool() as db:\n"
                     f"        user = await db.get(User, user_id)\n        await db.commit()\n"
                     f"        return await greeting.greet{i}(db, user)\n" for i in range(functions))
    for name in ("ha", "hb"):
        modules[f"{name}.py"] = (f"# {name}\nfrom bot import greeting\nfrom bot.services import User, session_pool\n"
                                 + starts + padding)
    return bot_files(root, modules)


@pytest.mark.parametrize("fit", [True, False])
def test_callers_files_that_fit_the_stores_are_parsed_once_per_check(tmp_path, monkeypatch, fit):
    """The checked file's functions are called from two files, turn by turn. While both fit
    the stores of parsed trees, each is parsed once; when they do not, each walk parses its
    file again (the price of a bounded memory), and every finding is still found."""
    from codemods import trees
    from codemods.passes import expiry_handoff

    files = _two_callers_files(tmp_path, 4)
    size = (tmp_path / "bot" / "ha.py").stat().st_size
    budget = int(size * (2.5 if fit else 1.5))
    for store in (trees._KEPT, expiry_handoff._TREES, expiry_handoff._OTHER_FILES):  # weighed as they are
        store.clear()
        monkeypatch.setattr(store, "budget", budget)
    monkeypatch.setattr(expiry_handoff, "_WALKED", trees.Kept(4096))
    parsed = parses_counted(monkeypatch)
    monkeypatch.chdir(tmp_path)
    index = engine.build_index(files, Config(select=("SQF010",)), jobs=1)
    greeting = [f for f in files if f.endswith("greeting.py")]
    results = engine.run_files(greeting, index, Config(select=("SQF010",)), jobs=1)
    assert sorted(f.line for r in results for f in r.findings) == [6, 10, 14, 18]
    callers = [parsed.count((tmp_path / "bot" / name).read_text()) for name in ("ha.py", "hb.py")]
    assert (callers == [1, 1]) if fit else (min(callers) > 1), callers


def test_only_the_passes_whose_facts_show_something_run_on_a_file_until_a_fix(monkeypatch):
    """A pass whose ast facts of the file show nothing it could match (``Pass.wants``) does
    not run on it, even when another pass's do; after a fix, the new code is every pass's."""
    from codemods.passes import base

    config = Config()
    index = engine.index_for_sources({"example.py": BUGGY}, config)
    facts = index.module_for_path(str(Path(config.root) / "example.py"))
    wanting = {p.code for p in ALL_PASSES if p.wants(index, facts)}
    assert "SQF002" in wanting and len(wanting) < len(ALL_PASSES)  # the example means something
    ran: dict[int, set[str]] = {}  # the tree of each round -> the passes run on it
    for p in ALL_PASSES:
        def run(self, ctx: base.FileContext, original=p.run):
            ran.setdefault(id(ctx.module), set()).add(self.code)
            return original(self, ctx)
        monkeypatch.setattr(p, "run", run)
    result = engine.fix_text(BUGGY)
    assert result.new_text == FIXED
    assert list(ran.values()) == [wanting, {p.code for p in ALL_PASSES}]


CAUGHT = '''\
from sqlalchemy import exc
from sqlalchemy.orm import Session


def save(db: Session, item) -> None:
    try:
        db.commit()
    except {caught}:
        log()
    db.add(item)
'''


@pytest.mark.parametrize(("caught", "wanted"), [
    ("ValueError", False), ("(KeyError, OSError)", False),
    ("exc.IntegrityError", True), ("(ValueError, exc.DBAPIError)", True), ("Exception", True), ("", True),
])
def test_a_file_whose_handlers_catch_no_database_error_is_not_read_for_a_failed_flush(caught, wanted):
    """SQF009 reports handlers that catch a database error: a file whose handlers catch none
    is not parsed for it (the index notes the classes every handler catches)."""
    from codemods.names import BARE_EXCEPT
    from codemods.passes.rollback_after_failed_flush import RollbackAfterFailedFlush

    source = CAUGHT.format(caught=caught).replace("except :", "except:")
    config = Config()
    index = engine.index_for_sources({"save.py": source}, config)
    facts = index.module_for_path(str(Path(config.root) / "save.py"))
    names = {n.strip().rsplit(".", 1)[-1] for n in caught.strip("()").split(",")} if caught else {BARE_EXCEPT}
    assert facts.all_caught == names
    assert RollbackAfterFailedFlush.wants(index, facts) is wanted
    found = [f.code for f in engine.fix_text(source).findings]
    assert ("SQF009" in found) is wanted


def test_no_collection_runs_while_the_command_analyses_a_file(monkeypatch):
    """The command's collector (``collect.one_file``): off while a file is analysed (its trees
    are freed by their reference counts once it is done), on again after; a program that
    embeds sqla-fix keeps its own settings."""
    import gc

    from codemods import collect, guard

    seen: list[bool] = []
    monkeypatch.setattr(engine, "process_source", lambda *args: seen.append(gc.isenabled()) or engine.FileResult(path=args[0]))
    monkeypatch.setattr(engine, "_WORKER", {"config": Config(), "index": None, "passes": [], "diffs": False,
                                            "explicit": frozenset()})
    assert gc.isenabled()
    engine._process_path(__file__)
    monkeypatch.setattr(collect, "_COMMAND", True)
    engine._process_path(__file__)
    assert seen == [True, False]
    assert gc.isenabled()

    def times_out(*args):
        raise guard.FileTimeout()

    monkeypatch.setattr(engine, "process_source", times_out)
    assert "file-timeout" in (engine._process_path(__file__).error or "")
    assert gc.isenabled()  # on again after a file that ran out of time


@pytest.mark.parametrize("made", [
    "session = Session(engine)",
    "Maker = sessionmaker(engine)\nsession = Maker()",
    "session = AsyncSession(engine)",
])
def test_a_module_level_session_is_read_for_sqf007_alone(made):
    """SQF007's finding of a module-level session shared by the module's functions, with only
    SQF007 selected: its `ast` facts (the module's `name = callee(...)`) say the file is one
    for it, however the session is made."""
    source = ("from sqlalchemy import create_engine\nfrom sqlalchemy.ext.asyncio import AsyncSession\n"
              "from sqlalchemy.orm import Session, sessionmaker\n\nengine = create_engine('sqlite://')\n"
              f"{made}\n\n\ndef count(model):\n    return session.query(model).count()\n")
    result = engine.fix_text(source, Config(select=("SQF007",)))
    assert [f.code for f in result.findings] == ["SQF007"]
    assert "module-level session `session`" in result.findings[0].message


def _all_sources() -> list:
    """Every example of every pass (before and after) and every case it leaves alone, with
    the project it is written against."""
    out = []
    for p in ALL_PASSES:
        texts = [ex.source for ex in p.examples] + [ex.fixed for ex in p.examples if ex.fixed is not None]
        out += [pytest.param(p.example_project, text, id=f"{p.code}-{i}") for i, text in
                enumerate(texts + [v.source for v in p.valid])]
    return out


@pytest.mark.parametrize(("project", "text"), _all_sources())
def test_a_pass_reports_nothing_in_a_file_its_facts_turn_away(monkeypatch, project, text):
    """``Pass.wants`` may say no only where the pass would find nothing: on every example of
    every pass, all the passes find what they find when each pass runs on every file."""
    def findings() -> list[tuple[int, str, str]]:
        result = engine.fix_text(text, Config(root="/project", unsafe_fixes=True), project=project,
                                 path="app/example.py")
        return [(f.line, f.code, f.message) for f in result.findings]

    gated = findings()
    for p in ALL_PASSES:
        monkeypatch.setattr(p, "wants", classmethod(lambda cls, index, facts: True))
    assert gated == findings()


PRODUCTS = {
    "app/__init__.py": "",
    "app/db.py": "from sqlalchemy.ext.asyncio import AsyncSession\n\nSession = AsyncSession\n",
    "app/models.py": '''\
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    roles: Mapped[list[Role]] = relationship()
''',
    "app/crud.py": '''\
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Product


async def create_product(db: AsyncSession, name: str) -> Product:
    product = Product(name=name)
    db.add(product)
    await db.commit()
    await db.refresh(product)
    return product
''',
}


def test_a_function_called_through_an_imported_module_is_read_for_sqf006_alone():
    """`crud.create_product(...)` returns an object it built and refreshed, with no
    relationship loaded: the facts of a module that calls it through the imported module's
    name (and names its session type through a project alias) say the file is one for SQF006."""
    source = '''\
from app import crud, db as database


async def add(db: database.Session, name: str) -> list[int]:
    product = await crud.create_product(db, name)
    await db.refresh(product)
    return [role.id for role in product.roles]
'''
    result = engine.fix_text(source, Config(root="/project", select=("SQF006",)), project=PRODUCTS,
                             path="app/use.py")
    assert [(f.line, f.code) for f in result.findings] == [(7, "SQF006")]
    assert "`product.roles`" in result.findings[0].message


def assert_gate(pass_: type[Pass], project: dict[str, str], path: str, source: str, wanted: bool) -> None:
    """``pass_``'s gate says ``wanted`` of the file ``path`` (``source``) of ``project``, and
    the check of the file finds what the gate let it look for; where the gate says no, the
    pass run with its gate open finds nothing either (the gate lost no finding)."""
    config = Config(root="/project")
    index = engine.index_for_sources({**project, path: source}, config)
    assert pass_.wants(index, index.module_for_path(f"/project/{path}")) is wanted
    found = [f.code for f in engine.fix_text(source, config, project=project, path=path).findings]
    assert (pass_.code in found) is wanted
    if not wanted:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pass_, "wants", classmethod(lambda cls, index, facts: True))
            opened = [f.code for f in engine.fix_text(source, config, project=project, path=path).findings]
        assert pass_.code not in opened


PROVIDERS = {
    "app/__init__.py": "",
    "app/db.py": '''\
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker(create_engine("sqlite://"))


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def numbers():
    yield from range(3)
''',
}


@pytest.mark.parametrize(("advanced", "wanted"), [
    ("next(get_db())", True), ("next(db_module.get_db())", True),
    ("next(numbers())", False), ("next(iter(rows))", False), ("next(self.rows())", False),
])
def test_a_file_that_advances_no_session_provider_is_not_read_for_a_dropped_one(advanced, wanted):
    """SQF011 reports a provider generator advanced once and dropped (`next(get_db())`): a
    file whose `next()` calls advance nothing the index knows as one is not read for it."""
    from codemods.passes.session_never_closed import SessionNeverClosed

    source = (f"from app import db as db_module\nfrom app.db import get_db, numbers\n\n\n"
              f"def first(self, rows):\n    value = {advanced}\n    return value.query(int).all()\n")
    assert_gate(SessionNeverClosed, PROVIDERS, "app/use.py", source, wanted)


USERS = {
    "app/__init__.py": "",
    "app/crud.py": '''\
from sqlalchemy.orm import Session


def create_user(db: Session, name: str) -> None:
    db.add(object())
    db.flush()
''',
}


@pytest.mark.parametrize(("call", "wanted"), [
    ("crud.create_user(db, name)", True), ("create_user(db, name)", True),
    ("client.create_user(db, name)", False), ("self.create_user(db, name)", False),
])
def test_a_call_named_like_a_flushing_function_is_read_for_a_failed_flush_only_when_it_is_one(call, wanted):
    """SQF009 follows a session handed to a project function that flushes it, found by the
    callee's qualified name: a client's method of the same name (`client.create_user`) is not
    that function, and a file calling only such methods is not read for it."""
    from codemods.passes.rollback_after_failed_flush import RollbackAfterFailedFlush

    source = ("from sqlalchemy.exc import IntegrityError\nfrom sqlalchemy.orm import Session\n\n"
              "from app import crud\nfrom app.crud import create_user\n\n\n"
              f"def register(self, client, db: Session, name: str) -> None:\n    try:\n        {call}\n"
              "    except IntegrityError:\n        pass\n    db.query(int).all()\n")
    assert_gate(RollbackAfterFailedFlush, USERS, "app/use.py", source, wanted)


KEEPER = '''\
from sqlalchemy.orm import Session

from app.models import User


class Hooks:
    def __init__(self) -> None:
        self._hooks = []

    def on_close(self, hook) -> None:
        self._hooks.append(hook)

    def greet(self, db: Session, user_id: int) -> None:
        user = db.get(User, user_id)
        {call}
'''


@pytest.mark.parametrize(("call", "wanted"), [
    ("self.on_close(lambda: print(user.name))", True), ("print(user.name)", False),
])
def test_a_module_whose_keepers_nobody_calls_is_not_read_for_kept_callbacks(call, wanted):
    """SQF007 reports a callback reading an ORM instance handed to a function of the module
    that keeps it (`self._hooks.append(hook)`): a module that never calls its keepers is not
    read for that."""
    from codemods.passes.instance_outlives_session import InstanceOutlivesSession

    models = {"app/__init__.py": "", "app/models.py": (
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n\nclass Base(DeclarativeBase):\n"
        "    pass\n\n\nclass User(Base):\n    __tablename__ = 'users'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n    name: Mapped[str]\n")}
    assert_gate(InstanceOutlivesSession, models, "app/hooks.py", KEEPER.format(call=call), wanted)


POSTS = {**PRODUCTS, "app/db.py": ("from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine\n\n"
                                  "AsyncMaker = async_sessionmaker(create_async_engine('sqlite+aiosqlite://'))\n")}


@pytest.mark.parametrize("opened", [
    "    session = AsyncMaker()\n",  # no `with` at all
    "    session = AsyncMaker()\n    async with session:\n",  # a value used as a context manager
])
def test_a_session_an_async_function_opens_is_read_for_lazy_loads(opened):
    """SQF006 reads the objects an async function loads or adds through a session it opens,
    whether or not a `with` holds it."""
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    indent = "        " if "async with" in opened else "    "
    body = "".join(indent + line + "\n" for line in (
        "product = Product(name='p')", "session.add(product)", "await session.flush()",
        "return [role.id for role in product.roles]"))
    source = f"from app.db import AsyncMaker\nfrom app.models import Product\n\n\nasync def create():\n{opened}{body}"
    assert_gate(LazyLoadOutsideSession, POSTS, "app/create.py", source, True)


HELPERS = {**POSTS, "app/helpers.py": '''\
def count_roles(p):
    return len(p.roles)


def describe(p):
    return count_roles(p)


def label(p):
    return p.name
'''}


@pytest.mark.parametrize("read,wanted", [
    ("product.roles", True),  # by name
    ('getattr(product, "roles", None)', True),
    ("describe(product)", True),  # a helper hands it to one that reads the relationship
    ("show_it(product)", True),  # the same helper, imported under another name
    ("product.name", False),  # a column: nothing here can load lazily
    ("label(product)", False),  # a helper that reads only a column
])
def test_lazy_loads_are_looked_for_where_a_lazy_attribute_can_be_read(read, wanted):
    """SQF006's every finding reads a model's relationship or deferred column, by name or in a
    project function the object is handed to: a module that can do neither is not parsed for
    it."""
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    source = ("from sqlalchemy.ext.asyncio import AsyncSession\n\nfrom app.helpers import describe, label\n"
              "from app.helpers import describe as show_it\n"
              "from app.models import Product\n\n\n"
              f"async def show(session: AsyncSession):\n    product = await session.get(Product, 1)\n    return {read}\n")
    assert_gate(LazyLoadOutsideSession, HELPERS, "app/show.py", source, wanted)


CACHED = '''\
from sqlalchemy.orm import Session

{imports}

_cache = {{}}


def remember(db: Session, user_id: int):
    user = db.get({model}, user_id)
    _cache[user_id] = user
    return _cache.get(user_id)
'''

USERS_REEXPORTED = {
    "app/__init__.py": "",
    "app/models.py": (
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n\nclass Base(DeclarativeBase):\n"
        "    pass\n\n\nclass User(Base):\n    __tablename__ = 'users'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n    name: Mapped[str]\n"),
    "app/db.py": "from app.models import User as Account\n",
    "app/schemas.py": "class Profile:\n    pass\n",
}


@pytest.mark.parametrize(("imports", "model", "wanted"), [
    ("from app.models import User", "User", True),
    ("from app.models import *", "User", True),  # a star import may bind any name
    ("from app import models", "models.User", True),  # a model reached as a module's attribute
    ("from app.db import Account", "Account", True),  # re-exported under another name
])
def test_a_module_that_names_no_model_is_not_read_for_kept_instances(imports, model, wanted):
    """SQF007's stores and kept callbacks report ORM instances the module's own code knows
    (a load, a constructor, an annotation naming a model): a module that names no model, under
    any name the project gives it, is not read for them."""
    from codemods.passes.instance_outlives_session import InstanceOutlivesSession

    source = CACHED.format(imports=imports, model=model)
    assert_gate(InstanceOutlivesSession, USERS_REEXPORTED, "app/cache.py", source, wanted)


TOUCH = '''\
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import get_current_user
from app.db import get_db
from app.models import User


async def touch(current_user: User = Depends(get_current_user), db: AsyncSession = Depends(get_db)):
    {body}
    await db.commit()
'''


@pytest.mark.parametrize(("body", "wanted"), [
    ("db.add(current_user)", True),
    ("db.add(User(name=current_user.name))", False),  # a new object: no other session holds it
    ("VISITORS.add(current_user)", False),  # a module's set, not a session
])
def test_a_module_that_adds_no_parameter_to_a_session_is_not_read_for_foreign_instances(body, wanted):
    """SQF002 reports `session.add(obj)` of a parameter `obj` another session loaded (a
    dependency's, or the callers'): a module none of whose functions hands a parameter of its
    own to a plausible session's `add()` is not read for it."""
    from codemods.passes.merge_foreign import MergeForeignInstance

    assert_gate(MergeForeignInstance, MergeForeignInstance.example_project, "app/touch.py", TOUCH.format(body=body),
                wanted)


GATHERED = '''\
import asyncio

from sqlalchemy.ext.asyncio import AsyncSession


async def load(db, n):
    return n


async def both({param}):
    return await asyncio.gather(load({arg}, 1), load({arg}, 2))
'''


@pytest.mark.parametrize(("param", "arg", "wanted"), [
    ("session: AsyncSession", "session", True),
    ("client", "client", False),  # no session here: nothing one session could be shared by
])
def test_a_module_that_holds_no_session_is_not_read_for_gathered_sessions(param, arg, wanted):
    """SQF007 reports one session handed to several coroutines of `asyncio.gather`: a module
    whose functions hold no session (no session scope, parameter, opened session or session
    decorator) is not read for it."""
    from codemods.passes.instance_outlives_session import InstanceOutlivesSession

    assert_gate(InstanceOutlivesSession, {"app/__init__.py": ""}, "app/both.py",
                GATHERED.format(param=param, arg=arg), wanted)


HANDED = '''\
from threading import Thread

from sqlalchemy.orm import Session

{imports}


def work(item):
    print(item.name)


def start(db: Session, key: int):
    item = db.get({model}, key)
    Thread(target=work, args=(item,)).start()
'''


@pytest.mark.parametrize(("imports", "model", "wanted"), [
    ("from app.models import User", "User", True),
])
def test_a_module_that_names_no_model_is_not_read_for_instances_handed_to_threads(imports, model, wanted):
    """SQF007 reports an ORM instance handed to another thread: one the module's code loads,
    builds or types with a model (the thread's function too is the module's own)."""
    from codemods.passes.instance_outlives_session import InstanceOutlivesSession

    assert_gate(InstanceOutlivesSession, USERS_REEXPORTED, "app/start.py", HANDED.format(imports=imports, model=model),
                wanted)


RENAME = '''\
from app.db import SessionLocal
from app.models import User


def rename(user_id: int, name: str{param}) -> User:
    {opened}
    with {value}:
        user = {load}
        user.name = name
        {commit}
        return user
'''
SESSION_DB = {**USERS_REEXPORTED, "app/db.py": (
    "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n\n"
    "SessionLocal = sessionmaker(create_engine('sqlite://'))\n")}


@pytest.mark.parametrize(("param", "opened", "value", "load", "commit", "wanted"), [
    # a session entered as a value: the block closes it, and the commit expired `user`
    ("", "session = SessionLocal()", "session", "session.get(User, user_id)", "session.commit()", True),
    # a lock: nothing here holds a session
    (", lock=None", "pass", "lock", "User(name=name)", "pass", False),
])
def test_a_value_entered_with_with_counts_as_a_scope_only_where_a_session_is_held(
        param, opened, value, load, commit, wanted):
    """`with session:` closes a session the function holds, and the passes that follow
    session scopes read it; `with lock:` in a module that holds no session opens nothing they
    could follow."""
    from codemods.passes.refresh_before_escape import RefreshBeforeEscape

    source = RENAME.format(param=param, opened=opened, value=value, load=load, commit=commit)
    assert_gate(RefreshBeforeEscape, SESSION_DB, "app/rename.py", source, wanted)


CLOSED = '''\
from app.db import SessionLocal, make_client
from app.models import User


def rename(user_id: int, name: str) -> None:
    {holder} = {opened}
    user = {holder}.get(User, user_id)
    {holder}.close()
    user.name = name
'''


@pytest.mark.parametrize(("holder", "opened", "wanted"), [
    ("session", "SessionLocal()", True),  # the change is lost: nothing saves it after the close
    ("client", "make_client()", False),  # no session in the module: its close() detaches nothing
])
def test_a_module_that_holds_no_session_is_not_read_for_changes_after_a_close(holder, opened, wanted):
    """SQF012 reports a column changed after the session let the instance go: by the end of a
    scope's block, or by `close()`/`expunge()` of a session a function holds. A module that calls
    `close()` but holds no session (a client, a file) is not read for it."""
    from codemods.passes.lost_update import LostUpdate

    project = {**SESSION_DB, "app/db.py": SESSION_DB["app/db.py"] + "\n\ndef make_client():\n    return object()\n"}
    assert_gate(LostUpdate, project, "app/rename.py", CLOSED.format(holder=holder, opened=opened), wanted)


def example_findings(pass_: type[Pass]) -> list[list[tuple[int, str]]]:
    """The findings (line, message) of ``pass_`` alone on each of its own examples."""
    config = Config(root="/project", select=(pass_.code,))
    return [sorted((f.line, f.message) for f in engine.fix_text(
        ex.source, config, project=pass_.example_project, path="app/example.py").findings)
        for ex in pass_.examples]


def test_callers_are_asked_what_they_hand_in_only_where_a_parameter_is_read_lazily(monkeypatch):
    """SQF006 asks the callers of an async function what they load into its parameters (a walk
    of each caller) only where it reads a lazy attribute of one: the findings on every example
    are those of asking everywhere, and one example's finding rests on what its callers hand
    in (asking nowhere loses it)."""
    from codemods.passes import lazy_load_outside_session as lazy
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    filtered = example_findings(LazyLoadOutsideSession)
    monkeypatch.setattr(lazy, "_reads_lazily_of_params", lambda ctx, qualname: True)
    assert example_findings(LazyLoadOutsideSession) == filtered
    monkeypatch.setattr(lazy, "_reads_lazily_of_params", lambda ctx, qualname: False)
    assert example_findings(LazyLoadOutsideSession) != filtered


def test_a_caller_that_cannot_expire_an_instance_is_not_walked(monkeypatch):
    """SQF010 walks a caller in another file (parsing it) for the instances it hands in
    expired only where something in that caller may expire one (a commit, a rollback, a
    `begin()` block, a function or service it hands its session to that may, however deep, or
    a caller of its own while callers are followed): the findings on every example and on the
    chains of callers of test_expiry_handoff are those of walking every caller, and walking
    none loses one example's finding."""
    from codemods.passes import expiry_handoff
    from codemods.passes.expired_read_in_async import ExpiredReadInAsync

    filtered = example_findings(ExpiredReadInAsync)
    monkeypatch.setattr(expiry_handoff, "may_hand_expired", lambda *args: True)
    assert example_findings(ExpiredReadInAsync) == filtered
    monkeypatch.setattr(expiry_handoff, "may_hand_expired", lambda *args: False)
    assert example_findings(ExpiredReadInAsync) != filtered


BUILT_BY_A_SERVICE = '''\
import asyncio

from app.models import Product


class Service:
    def __init__(self, session):
        self.session = session
        self._lock = asyncio.Lock()

    async def create(self):
        async with self._lock:
            pass
        product = Product(name="p")
        self.session.add(product)
        await self.session.flush()
        return [role.id for role in product.roles]
'''


def test_an_object_built_added_and_flushed_through_any_session_is_read_for_lazy_loads():
    """SQF006 follows an object built in async code, added and flushed through whatever
    session the code names (an untyped `self.session` too): its collections were never loaded.
    A lock's `async with` beside it changes nothing."""
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    assert_gate(LazyLoadOutsideSession, POSTS, "app/service.py", BUILT_BY_A_SERVICE, True)


FLASK_APP = {
    "app/__init__.py": "",
    "app/extensions.py": "from flask_sqlalchemy import SQLAlchemy\n\ndb = SQLAlchemy()\n",
    "app/models.py": ("from app.extensions import db\n\n\nclass User(db.Model):\n"
                      "    id = db.Column(db.Integer, primary_key=True)\n    name = db.Column(db.String)\n"),
}


def test_a_registry_imported_from_a_module_that_re_exports_it_holds_a_session():
    """SQF012 reads a module whose only session is Flask-SQLAlchemy's `db.session`, imported
    from the models module that re-exports `db`."""
    from codemods.passes.lost_update import LostUpdate

    source = ("from app.models import User, db\n\n\ndef rename(user_id: int, name: str) -> None:\n"
              "    user = db.session.get(User, user_id)\n    db.session.expunge(user)\n    user.name = name\n")
    assert_gate(LostUpdate, FLASK_APP, "app/rename.py", source, True)


TOUCH_TWICE = '''\
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import get_current_user
from app.db import get_db
from app.models import User

if FAST:
    async def touch(current_user: User = Depends(get_current_user), db: AsyncSession = Depends(get_db)):
        db.add(current_user)
        await db.commit()
else:
    async def touch(current_user: User = Depends(get_current_user), db: AsyncSession = Depends(get_db)):
        db.add(User(name=current_user.name))
        await db.commit()
'''


def test_a_function_defined_twice_is_read_for_either_definitions_add():
    """SQF002's gate asks whether a function hands a parameter to `add()`: a function defined
    in both branches of an `if` counts with what either definition adds."""
    from codemods.passes.merge_foreign import MergeForeignInstance

    assert_gate(MergeForeignInstance, MergeForeignInstance.example_project, "app/touch.py", TOUCH_TWICE, True)


@pytest.mark.parametrize("source", [
    # a model annotated through a dotted module import
    "from sqlalchemy.orm import Session\nimport app.models\n\n_cache = {}\n\n\n"
    "def remember(user_id: int):\n    user: app.models.User = fetch(user_id)\n"
    "    _cache[user_id] = user\n    return _cache.get(user_id)\n",
    # a model's name bound otherwise than by an import: model_for takes it for the model
    "from sqlalchemy.orm import Session\n\nfrom app import registry\n\nUser = registry.lookup('User')\n_cache = {}\n\n\n"
    "def remember(db: Session, user_id: int):\n    user = db.get(User, user_id)\n    _cache[user_id] = user\n"
    "    return _cache.get(user_id)\n",
])
def test_instances_named_through_a_dotted_import_or_a_bare_name_are_read_for_stores(source):
    """Second review: SQF007's gate follows `import app.models` then `app.models.User`, and a
    model's name however the module binds it, where a session of the module may load it."""
    from codemods.passes.instance_outlives_session import InstanceOutlivesSession

    project = {**USERS_REEXPORTED, "app/registry.py": "def lookup(name):\n    return name\n"}
    assert_gate(InstanceOutlivesSession, project, "app/cache.py", source, True)


def test_a_helper_returning_a_dict_of_loaded_instances_is_a_loader():
    """Second review: SQF006 follows `prep = await prepare(...)`, then `prep["product"].roles`,
    where `prepare` returns a dict of what its query loaded."""
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    project = {**POSTS, "app/prep.py": (
        "from sqlalchemy import select\n\nfrom app.models import Product\n\n\nasync def prepare(db, pid):\n"
        "    product = (await db.execute(select(Product).where(Product.id == pid))).scalar_one()\n"
        "    return {'product': product, 'n': 0}\n")}
    source = ("from app.prep import prepare\n\n\nasync def show(session, pid):\n    prep = await prepare(session, pid)\n"
              "    roles = prep['product'].roles\n    return roles\n")
    assert_gate(LazyLoadOutsideSession, project, "app/show.py", source, True)


def test_a_factory_kept_on_self_opens_a_scope_with_begin():
    """Second review: `with self.maker.begin() as session:` opens a scope of the factory the
    class keeps, as `with self.maker() as session:` does; SQF012 reads the module."""
    from codemods.passes.lost_update import LostUpdate

    source = ("from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n\nfrom app.models import User\n\n\n"
              "class Renamer:\n    def __init__(self) -> None:\n        self.maker = sessionmaker(create_engine('sqlite://'))\n\n"
              "    def rename(self, user_id: int, name: str) -> None:\n        with self.maker.begin() as session:\n"
              "            user = session.get(User, user_id)\n        user.name = name\n")
    assert_gate(LostUpdate, SESSION_DB, "app/rename.py", source, True)


@pytest.mark.parametrize("source", [
    "from sqlalchemy import text\n\nfrom app.schemas import Profile\n\n_cache = {}\n\n\n"
    "def remember(key: int):\n    profile = Profile()\n    _cache[key] = profile\n    return _cache.get(key)\n",
    "from threading import Thread\n\nfrom sqlalchemy import text\n\nfrom app.schemas import Profile\n\n\n"
    "def work(item):\n    print(item)\n\n\ndef start():\n    Thread(target=work, args=(Profile(),)).start()\n",
])
def test_a_module_that_names_no_model_and_holds_no_session_is_not_read_for_instances(source):
    """SQF007's stores and thread hand-offs need an ORM instance the module's code knows: a
    module that builds only a plain class, types nothing with a model and holds no session
    (through which a model named any way could be loaded) is not read for them."""
    from codemods.passes.instance_outlives_session import InstanceOutlivesSession

    assert_gate(InstanceOutlivesSession, USERS_REEXPORTED, "app/cache.py", source, False)
