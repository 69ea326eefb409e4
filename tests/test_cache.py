"""The facts cache: unchanged files are not read again, changed ones are, and the cache never
changes a result or shows up in git."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_cli
from snippets import BUGGY

from codemods import engine
from codemods import index as index_mod
from codemods.cache import CACHE_DIR
from codemods.config import load
from codemods.index import describe

DB = "from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker(expire_on_commit=False)\n"


def _project(root: Path) -> None:
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n")
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "db.py").write_text(DB)
    (root / "app" / "visits.py").write_text(BUGGY)


def _build(root: Path, monkeypatch, calls: list[str]):
    real = index_mod.extract

    def counting(path, source, module):
        calls.append(Path(path).name)
        return real(path, source, module)

    monkeypatch.setattr(index_mod, "extract", counting)
    config = load(str(root))
    files = [str(p) for p in sorted(root.rglob("*.py")) if CACHE_DIR not in str(p)]
    return engine.build_index(files, config, 1, use_cache=True)


def test_unchanged_files_come_from_the_cache(tmp_path, monkeypatch):
    _project(tmp_path)
    first_calls: list[str] = []
    first = _build(tmp_path, monkeypatch, first_calls)
    assert sorted(first_calls) == ["db.py", "visits.py"]
    assert (tmp_path / CACHE_DIR / ".gitignore").read_text().strip().endswith("*")

    again_calls: list[str] = []
    again = _build(tmp_path, monkeypatch, again_calls)
    assert again_calls == []
    assert describe(again) == describe(first)

    time.sleep(0.01)
    (tmp_path / "app" / "db.py").write_text(DB.replace("False", "True"))
    changed_calls: list[str] = []
    changed = _build(tmp_path, monkeypatch, changed_calls)
    assert changed_calls == ["db.py"]
    assert changed.expire_on_commit("app.db.SessionLocal") is True


def test_a_broken_cache_is_ignored(tmp_path, monkeypatch):
    _project(tmp_path)
    (tmp_path / CACHE_DIR).mkdir()
    (tmp_path / CACHE_DIR / "index.json").write_bytes(b"not json")
    calls: list[str] = []
    idx = _build(tmp_path, monkeypatch, calls)
    assert sorted(calls) == ["db.py", "visits.py"]
    assert idx.expire_on_commit("app.db.SessionLocal") is False


def test_cli_uses_the_cache_and_no_cache_writes_none(tmp_path):
    _project(tmp_path)
    off = run_cli("check", "--no-cache", ".", cwd=tmp_path)
    assert off.returncode == 1 and not (tmp_path / CACHE_DIR).exists()
    first = run_cli("check", ".", cwd=tmp_path)
    second = run_cli("check", ".", cwd=tmp_path)
    assert (tmp_path / CACHE_DIR / "index.json").exists()
    assert first.stdout == second.stdout == off.stdout


def test_git_does_not_see_the_cache(tmp_path):
    _project(tmp_path)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    git = lambda *a: subprocess.run(["git", "-c", "init.defaultBranch=main", *a], cwd=tmp_path,  # noqa: E731
                                    capture_output=True, text=True, env={**__import__("os").environ, **env})
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    run_cli("check", ".", cwd=tmp_path, env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
    assert (tmp_path / CACHE_DIR).exists()
    assert git("status", "--porcelain").stdout == ""


def test_a_cache_from_another_index_version_is_not_used(tmp_path, monkeypatch):
    """Facts stored by an index whose code differed are never trusted (their fields may not
    match): the schema carries a digest of index.py."""
    import json

    from codemods import cache as cache_mod

    _project(tmp_path)
    _build(tmp_path, monkeypatch, [])
    data = json.loads((tmp_path / CACHE_DIR / "index.json").read_bytes())
    assert data["schema"].startswith(cache_mod.SCHEMA + "/")  # and the import roots it was built with
    data["schema"] = cache_mod.SCHEMA + "-old"
    (tmp_path / CACHE_DIR / "index.json").write_text(json.dumps(data))
    calls: list[str] = []
    _build(tmp_path, monkeypatch, calls)
    assert sorted(calls) == ["db.py", "visits.py"]


# --------------------------------------------------------------------------- data only


class _Evil:
    """Unpickling this creates a marker file: proof that a loader ran code."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_never_runs(tmp_path):
    import pickle

    _project(tmp_path)
    marker = tmp_path / "PWNED"
    _Evil.marker = str(marker)
    payload = pickle.dumps(_Evil())
    (tmp_path / CACHE_DIR).mkdir()
    for name in ("index.pickle", "index.json"):
        (tmp_path / CACHE_DIR / name).write_bytes(payload)
    proc = run_cli("check", ".", cwd=tmp_path)
    assert not marker.exists()
    assert proc.returncode == 1 and b"SQF002" in proc.stdout
    import json

    assert json.loads((tmp_path / CACHE_DIR / "index.json").read_bytes())["entries"]  # rebuilt as data


def _cached_json(tmp_path, monkeypatch) -> dict:
    import json

    _project(tmp_path)
    _build(tmp_path, monkeypatch, [])
    return json.loads((tmp_path / CACHE_DIR / "index.json").read_bytes())


def test_truncated_foreign_or_ill_typed_caches_are_ignored(tmp_path, monkeypatch):
    import json

    data = _cached_json(tmp_path, monkeypatch)
    cache_file = tmp_path / CACHE_DIR / "index.json"
    text = json.dumps(data)
    foreign = dict(data, format=data["format"] + 1)
    ill_formed = json.loads(text)
    for entry in ill_formed["entries"].values():
        entry["value"]["digest"] = ["not", "a", "digest"]
    for bad in (text[: len(text) // 2], json.dumps(foreign), json.dumps(ill_formed), "[]", "null"):
        cache_file.write_text(bad)
        calls: list[str] = []
        idx = _build(tmp_path, monkeypatch, calls)
        assert sorted(calls) == ["db.py", "visits.py"], bad[:40]
        assert idx.expire_on_commit("app.db.SessionLocal") is False
    # The facts themselves, stored by digest: ill-typed, missing, or no file at all.
    facts_file = tmp_path / CACHE_DIR / "facts.json"
    facts = json.loads(facts_file.read_text())
    ill_typed = json.loads(json.dumps(facts))
    for value in ill_typed["values"].values():
        value["module"] = 42  # a str field holding a number
    for bad in (json.dumps(ill_typed), json.dumps(dict(facts, values={})), None):
        _build(tmp_path, monkeypatch, [])
        if bad is None:
            facts_file.unlink()
        else:
            facts_file.write_text(bad)
        calls = []
        idx = _build(tmp_path, monkeypatch, calls)
        assert sorted(calls) == ["db.py", "visits.py"], str(bad)[:40]
        assert idx.expire_on_commit("app.db.SessionLocal") is False
        calls = []
        assert _build(tmp_path, monkeypatch, calls).expire_on_commit("app.db.SessionLocal") is False
        assert calls == []  # read again once, and stored


def test_a_rewrite_with_the_same_size_and_mtime_is_not_served_stale(tmp_path, monkeypatch):
    import os

    _project(tmp_path)
    db = tmp_path / "app" / "db.py"
    before = os.stat(db)
    _build(tmp_path, monkeypatch, [])
    same_size = DB.replace("False)", "True) ")
    assert len(same_size) == len(DB)
    db.write_text(same_size)
    os.utime(db, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(db).st_size == before.st_size and os.stat(db).st_mtime_ns == before.st_mtime_ns
    calls: list[str] = []
    idx = _build(tmp_path, monkeypatch, calls)
    assert calls == ["db.py"]
    assert idx.expire_on_commit("app.db.SessionLocal") is True


def test_a_stamp_match_alone_is_trusted_once_the_file_is_old(tmp_path, monkeypatch):
    """Entries stored long after their file last changed are trusted by stamp, without
    reading the file; those stored just after a change also compare the content."""
    import os

    from codemods import cache as cache_mod

    _project(tmp_path)
    old = 1_000_000_000
    for f in (tmp_path / "app").iterdir():
        os.utime(f, (old, old))
    monkeypatch.setattr(cache_mod, "RACY_NS", 0)
    _build(tmp_path, monkeypatch, [])
    data = __import__("json").loads((tmp_path / CACHE_DIR / "index.json").read_bytes())
    assert all(e["digest"] is None for e in data["entries"].values())
    reads: list[str] = []
    monkeypatch.setattr(cache_mod, "file_digest", lambda p: reads.append(p))
    calls: list[str] = []
    _build(tmp_path, monkeypatch, calls)
    assert calls == [] and reads == []


def test_the_codec_round_trips_every_fact(tmp_path):
    """The cache's decoder is driven by the facts' type hints: whatever the index extracts
    comes back equal."""
    from codemods import codec

    for sample in sorted(Path(__file__).resolve().parent.parent.glob("samples/*/*.py")):
        facts = index_mod.extract(str(sample), sample.read_bytes(), "m")
        plain = __import__("json").loads(__import__("json").dumps(codec.encode(facts)))
        assert codec.decode(index_mod.ModuleFacts, plain) == facts, sample.name
        compact = __import__("json").loads(__import__("json").dumps(codec.encode(facts, defaults=False)))
        assert codec.decode(index_mod.ModuleFacts, compact) == facts, sample.name


def test_facts_with_positional_keys_round_trip():
    """A fact keyed by position (`return Maker, engine`: which item is a factory) is stored as
    JSON, whose keys are strings, and read back with int keys; a key that is not a number is
    refused."""
    from codemods import codec
    from codemods.index import Factory, Function

    fn = Function(qualname="setup", line=1, is_async=False, is_generator=False, params=[], returns=None)
    fn.returns_factories_at = {0: Factory("Maker", "sqlalchemy.orm.sessionmaker", False, True, 1)}
    plain = codec.encode(fn)
    json.dumps(plain)  # storable as it is
    back = codec.decode(Function, json.loads(json.dumps(plain)))
    assert back.returns_factories_at == fn.returns_factories_at
    plain["returns_factories_at"] = {"first": plain["returns_factories_at"]["0"]}
    with pytest.raises(codec.DecodeError):
        codec.decode(Function, plain)


@dataclasses.dataclass
class Inner:
    n: int
    tags: frozenset[str] = frozenset()


@dataclasses.dataclass
class Outer:
    name: str
    pair: tuple[int, str]
    inner: Inner | None = None
    items: dict[int, list[Inner]] = dataclasses.field(default_factory=dict)


def test_the_decoder_refuses_what_the_hints_do_not_name():
    """Each record type's decoder is made once from its hints; every value is still checked
    against them, however deep."""
    from codemods import codec

    good = {"name": "a", "pair": [1, "b"], "inner": {"n": 2, "tags": ["x", "y"]}, "items": {"3": [{"n": 4}]}}
    decoded = codec.decode(Outer, good)
    assert decoded == Outer("a", (1, "b"), Inner(2, frozenset({"x", "y"})), {3: [Inner(4)]})
    assert codec.decode(Outer, dict(good, inner=None)).inner is None
    for bad in (dict(good, extra=1), {"pair": [1, "b"]}, dict(good, pair=[1, "b", 2]), dict(good, pair=[True, "b"]),
                dict(good, inner={"n": "2"}), dict(good, items={"3": [{"n": 4.5}]}), dict(good, items={"x": []}),
                dict(good, inner={"n": 2, "tags": "xy"}), [good]):
        with pytest.raises(codec.DecodeError):
            codec.decode(Outer, bad)


@dataclasses.dataclass
class Flags:
    count: int = 0
    flag: bool | int = False
    label: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    inner: Inner | None = None


def test_compact_records_leave_out_the_fields_that_hold_their_defaults():
    """The index's facts are stored without the fields that hold their default (most of
    them): decoding gives the defaults back. A value equal to the default but of another type
    (`0` where the default is `False`) is kept."""
    from codemods import codec

    assert codec.encode(Flags(), defaults=False) == {}
    assert codec.encode(Flags(), defaults=True) == {"count": 0, "flag": False, "label": None, "tags": [], "inner": None}
    value = Flags(count=2, flag=0, tags=["a"], inner=Inner(1))
    plain = codec.encode(value, defaults=False)
    assert plain == {"count": 2, "flag": 0, "tags": ["a"], "inner": {"n": 1}}
    back = codec.decode(Flags, json.loads(json.dumps(plain)))
    assert back == value and type(back.flag) is int
    first, second = codec.decode(Flags, {}), codec.decode(Flags, {})
    first.tags.append("x")  # each record its own list
    assert first == Flags(tags=["x"]) and second == Flags()
    for bad in ({"label": 3}, {"tags": ["a", 1]}, {"tags": "ab"}, {"flag": "x"}, {"count": True}, {"inner": {"n": "1"}}):
        with pytest.raises(codec.DecodeError):
            codec.decode(Flags, bad)
