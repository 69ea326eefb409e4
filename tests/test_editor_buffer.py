"""An editor's buffer (`check - --stdin-filename F`) that differs from the file on disk: what it
reports is exactly what `check F` reports once the buffer is written to F, whatever the
caches kept from earlier runs (the index's facts, the callers' walks that handed nothing)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemods import cache, handoffs
from codemods.cli import cli
from codemods.passes import expiry_handoff
from codemods.passes.examples import BOT

GREETING = '''
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import User, engine

pool = async_sessionmaker(engine, expire_on_commit=False)


async def greet(db: AsyncSession, user: User) -> str:
    if user.name == "admin":
        return "hello boss"
    return f"hello {user.id}"
'''

HANDLERS = '''
from bot.greeting import greet, pool
from bot.services import User


async def start(user_id: int) -> str:
    async with pool() as db:
        user = await db.get(User, user_id)
        await db.commit()
        return await greet(db, user)
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """A project whose `greet` is called from another file with an instance the caller's
    commit expires only when `greeting.pool` expires on commit (it does not, on disk)."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "bot"\n')
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "services.py").write_text(BOT)
    (tmp_path / "bot" / "greeting.py").write_text(textwrap.dedent(GREETING))
    (tmp_path / "bot" / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    monkeypatch.chdir(tmp_path)
    check()  # a first run fills the caches, as an editor's project has them
    return tmp_path


def check(*args: str, buffer: bytes | None = None) -> str:
    result = CliRunner().invoke(cli, ["check", "--no-progress", *args], input=buffer, catch_exceptions=False)
    return result.output


def from_editor(path: str, buffer: bytes) -> str:
    return check("-", "--stdin-filename", path, buffer=buffer)


def written(root: Path, path: str, buffer: bytes, *options: str) -> str:
    """What `check F` prints with the buffer written to F (the file is put back after)."""
    target = root / path
    before = target.read_bytes()
    target.write_bytes(buffer)
    try:
        return check(*options, path)
    finally:
        target.write_bytes(before)


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The callers' files parsed for SQF010's hand-offs, in order."""
    seen: list[str] = []
    real = expiry_handoff._parse

    def counting(path):
        seen.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(expiry_handoff, "_parse", counting)
    return seen


def test_an_edit_that_changes_no_fact_of_the_index_reports_what_the_written_file_does(project, parses):
    buffer = textwrap.dedent(GREETING).replace("async def greet", "# greets\n\n\nasync def greet").encode()
    first = from_editor("bot/greeting.py", buffer)
    assert parses == ["handlers.py"]  # the caller's walk, made once and kept: it handed nothing
    again = from_editor("bot/greeting.py", buffer + b"\n# typing on\n")
    assert parses == ["handlers.py"]  # kept: no caller's file parsed again
    assert first == written(project, "bot/greeting.py", buffer)
    assert again == written(project, "bot/greeting.py", buffer + b"\n# typing on\n")
    assert "No findings in 1 file." in again


def test_an_edit_that_changes_what_another_file_resolves_to_reports_what_the_written_file_does(project, parses):
    """The pool in the buffer now expires on commit: the caller in handlers.py hands `user`
    expired. The walk kept while it did not must not serve."""
    unchanged = textwrap.dedent(GREETING).replace("async def greet", "# greets\nasync def greet").encode()
    assert "No findings" in from_editor("bot/greeting.py", unchanged)
    buffer = textwrap.dedent(GREETING).replace("expire_on_commit=False", "expire_on_commit=True").encode()
    found = from_editor("bot/greeting.py", buffer)
    assert "bot/greeting.py:10:8: SQF010" in found
    assert "`start()` (bot/handlers.py:10) calls this with `user` after `db.commit()` expired it" in found
    assert parses == ["handlers.py", "handlers.py"]  # walked again for the new state of the index
    assert found == written(project, "bot/greeting.py", buffer)
    # and back: the walk that handed nothing is not the one of the expiring pool
    assert from_editor("bot/greeting.py", unchanged) == written(project, "bot/greeting.py", unchanged)


def test_a_change_to_a_callers_file_makes_its_kept_walk_unusable(project, parses):
    buffer = textwrap.dedent(GREETING).replace("async def greet", "# greets\nasync def greet").encode()
    from_editor("bot/greeting.py", buffer)
    kept = handoffs.Store(str(project), next(iter_keys(project)))
    caller = str(project / "bot" / "handlers.py")
    assert kept.nothing_handed(caller, "start", 1) == {caller: cache.file_digest(caller)}
    (project / "bot" / "handlers.py").write_text(textwrap.dedent(HANDLERS) + "\n# changed\n")
    assert kept.nothing_handed(caller, "start", 1) is None
    assert handoffs.Store(str(project), "another state of the index").nothing_handed(caller, "start", 1) is None


def test_a_walk_that_hands_an_expired_instance_is_not_kept(project):
    (project / "bot" / "greeting.py").write_text(textwrap.dedent(GREETING).replace("expire_on_commit=False", ""))
    buffer = (project / "bot" / "greeting.py").read_bytes() + b"\n# edited\n"
    assert "SQF010" in from_editor("bot/greeting.py", buffer)
    assert list(iter_keys(project)) == [] or not handoffs.Store(str(project), next(iter_keys(project))).walks


def test_a_damaged_store_is_ignored(project):
    buffer = textwrap.dedent(GREETING).replace("async def greet", "# greets\nasync def greet").encode()
    from_editor("bot/greeting.py", buffer)
    store = project / ".sqla-fix-cache" / "handoffs.json"
    store.write_text(store.read_text().replace('"files":{', '"files":{"x":1,'))
    assert from_editor("bot/greeting.py", buffer) == written(project, "bot/greeting.py", buffer)


def iter_keys(root: Path):
    """The state of the index the store was last filled for (none if it was never written)."""
    import json

    file = root / ".sqla-fix-cache" / "handoffs.json"
    if file.exists():
        yield json.loads(file.read_text())["key"]


def test_only_the_command_sets_the_garbage_collector(project, monkeypatch):
    """The command collects less (none at all for an editor's buffer); a program that embeds
    sqla-fix (the suite's CliRunner is one) keeps its own settings."""
    import gc

    from codemods import collect

    before = gc.get_threshold(), gc.isenabled()
    from_editor("bot/greeting.py", textwrap.dedent(GREETING).encode())
    assert (gc.get_threshold(), gc.isenabled()) == before
    monkeypatch.setattr(collect, "_COMMAND", False)
    try:
        collect.for_command()
        assert gc.get_threshold()[0] > before[0][0] and gc.isenabled()
        from_editor("bot/greeting.py", textwrap.dedent(GREETING).encode())
        assert not gc.isenabled()
    finally:
        gc.set_threshold(*before[0])
        gc.enable() if before[1] else gc.disable()


def written_report(root: Path, path: str, buffer: bytes) -> list[tuple[int, int, str, str]]:
    """The findings `check --format json F` reports with the buffer written to F: line,
    column, code, message."""
    import json

    out = json.loads(written(root, path, buffer, "--format", "json"))
    return [(f["line"], f["column"], f["code"], f["message"]) for f in out["findings"]]


def test_the_server_follows_an_edit_that_changes_what_a_callers_walk_finds(project, parses):
    """In the editor's server each edit that changes a fact starts a new state of the index:
    the callers' walks are made again for it (the pool now expires on commit, so the caller in
    handlers.py hands `user` expired; then a line moves; then back), while the caller's file,
    unchanged, is parsed once. What the server reports is what `check F` reports with the
    buffer written to F."""
    from codemods.server import Workspace

    path = project / "bot" / "greeting.py"
    on_disk = textwrap.dedent(GREETING)
    expiring = on_disk.replace("expire_on_commit=False", "expire_on_commit=True")
    work = Workspace()
    index = work.project_for(str(path)).index
    texts = [on_disk.replace("async def greet", "# greets\nasync def greet"), expiring, "# moved\n" + expiring, on_disk]
    served = []
    for text in texts:
        before = index.generation
        served.append([(f.line, f.col, f.code, f.message) for f in work.check(path.as_uri(), str(path), text).findings])
        assert index.generation > before  # each edit changed the file's facts
    assert parses == ["handlers.py"]
    assert [[f[:3] for f in found] for found in served] == [[], [(10, 8, "SQF010")], [(11, 8, "SQF010")], []]
    assert served == [written_report(project, "bot/greeting.py", text.encode()) for text in texts]
