"""Hunks, partial application, and the interactive per-hunk review."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT

from codemods.review import Quit, Reviewer, apply_hunks, hunks, unified_diff

OLD = "".join(f"line {i}\n" for i in range(1, 31))
NEW = OLD.replace("line 3\n", "LINE 3\n").replace("line 20\n", "LINE 20\n").replace("line 29\n", "")


def test_hunks_split_far_apart_changes():
    hs = hunks(OLD, NEW)
    assert [h.header for h in hs] == ["@@ -1,6 +1,6 @@\n", "@@ -17,7 +17,7 @@\n", "@@ -26,5 +26,4 @@\n"]
    assert "".join(h.text for h in hs).count("+LINE") == 2


@pytest.mark.parametrize("accepted", [[True, True], [False, False], [True, False], [False, True]])
def test_apply_hunks_applies_exactly_the_accepted_ones(accepted):
    old = "".join(f"x{i} = {i}\n" for i in range(40))
    new = old.replace("x2 = 2", "x2 = 'two'").replace("x30 = 30", "x30 = 'thirty'")
    assert len(hunks(old, new)) == 2
    out = apply_hunks(old, new, accepted)
    assert ("x2 = 'two'" in out) == accepted[0]
    assert ("x30 = 'thirty'" in out) == accepted[1]
    assert len(out.splitlines()) == 40


def test_apply_hunks_keeps_crlf_and_missing_final_newline():
    old = "a = 1\r\nb = 2\r\nc = 3"
    new = "a = 1\r\nb = 20\r\nc = 3"
    assert apply_hunks(old, new, [True]) == new
    assert apply_hunks(old, new, [False]) == old
    assert "\\ No newline at end of file" in unified_diff("x", "y", "f.py")


def _reviewer(answers):
    answers = list(answers)
    shown = []

    def ask(prompt):
        shown.append(prompt)
        return answers.pop(0) if answers else ""

    return Reviewer(ask=ask, echo=shown.append, color=False), shown


def test_reviewer_y_n():
    r, _ = _reviewer(["y\n", "n\n", "y\n"])
    assert r.review("f.py", OLD, NEW) == [True, False, True]


def test_reviewer_help_then_answer():
    r, shown = _reviewer(["?\n", "y\n", "\n", "y\n"])
    decisions = r.review("f.py", OLD, NEW)
    assert decisions == [True, False, True]  # an empty answer is "n"
    assert any("apply this hunk and every remaining hunk" in s for s in shown)


def test_reviewer_a_accepts_the_rest_everywhere():
    r, _ = _reviewer(["n\n", "a\n"])
    assert r.review("f.py", OLD, NEW) == [False] + [True] * (len(hunks(OLD, NEW)) - 1)
    assert r.review("g.py", OLD, NEW) == [True] * len(hunks(OLD, NEW))


def test_reviewer_d_skips_the_rest_of_the_file():
    r, _ = _reviewer(["y\n", "d\n", "y\n", "n\n", "n\n"])
    assert r.review("f.py", OLD, NEW) == [True, False, False]
    assert r.review("g.py", OLD, NEW) == [True, False, False]  # the next file is asked again


def test_reviewer_q_and_end_of_input_quit_keeping_decisions():
    r, _ = _reviewer(["y\n", "q\n"])
    with pytest.raises(Quit) as exc:
        r.review("f.py", OLD, NEW)
    assert exc.value.decisions[0] is True and not any(exc.value.decisions[1:])
    r, _ = _reviewer([])
    with pytest.raises(Quit):
        r.review("f.py", OLD, NEW)


# ----------------------------------------------------------------- the real thing, on a tty

TWO_BUGS = textwrap.dedent('''\
    from sqlalchemy.orm import Session, sessionmaker


    def record_visit(user, db: Session) -> None:
        user.visits += 1
        db.add(user)
        db.commit()


    def record_login(account, db: Session) -> None:
        account.logins += 1
        account.seen = True
        account.note = "logged in"
        account.flag = False
        account.tries = 0
        account.locked = False
        db.add(account)
        db.commit()


    def handle(SessionLocal: sessionmaker, user_id: int) -> None:
        with SessionLocal() as auth:
            user = auth.get(User, user_id)
            with SessionLocal() as db:
                record_visit(user, db)
                record_login(user, db)
    ''')


def _interactive(tmp_path: Path, answers: list[str], env_extra: dict | None = None):
    """Run `sqla-fix apply` with a pseudo-terminal as stdin and stdout; type `answers`."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), GIT_CEILING_DIRECTORIES=str(tmp_path.parent))
    env.pop("NO_COLOR", None)
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "codemods", "apply", "."], cwd=tmp_path,
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    pending = list(answers)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if pending and out.count(b"[y,n,a,d,q,?]") > len(answers) - len(pending):
                os.write(master, pending.pop(0).encode())
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, out.decode(errors="replace"), proc.stderr.read().decode()


def test_interactive_review_writes_only_accepted_hunks(tmp_path):
    path = tmp_path / "svc.py"
    path.write_text(TWO_BUGS)
    code, out, err = _interactive(tmp_path, ["n\n", "y\n"])
    text = path.read_text()
    assert "    db.add(user)\n" in text  # rejected
    assert "    account = db.merge(account)\n" in text  # accepted
    assert out.count("[y,n,a,d,q,?]") == 2
    assert "\x1b[" in out  # colour on a terminal
    assert code == 1  # one hunk left unapplied
    assert "Applied 1 of 2 hunks; wrote 1 file." in err


def test_interactive_review_no_colour_under_no_color(tmp_path):
    (tmp_path / "svc.py").write_text(TWO_BUGS)
    code, out, _ = _interactive(tmp_path, ["q\n"], {"NO_COLOR": "1"})
    assert "\x1b[" not in out
    assert (tmp_path / "svc.py").read_text() == TWO_BUGS


def test_interactive_accept_all(tmp_path):
    (tmp_path / "svc.py").write_text(TWO_BUGS)
    code, out, err = _interactive(tmp_path, ["a\n"])
    assert code == 0, err
    assert "db.add(" not in (tmp_path / "svc.py").read_text()
    assert out.count("[y,n,a,d,q,?]") == 1


def test_accepted_subset_that_does_not_parse_is_not_written(tmp_path, monkeypatch):
    """A file whose accepted hunks alone are not valid Python is left as it was."""
    from codemods import cli as cli_mod
    from codemods.engine import FileResult
    from codemods.source import read_source

    old = "x = [\n" + "".join(f"    {i},\n" for i in range(20)) + "]\n"
    new = "x = (\n" + "".join(f"    {i},\n" for i in range(20)) + ")\n"
    path = tmp_path / "m.py"
    path.write_text(old)
    src = read_source(str(path))
    answers = iter(["y\n", "n\n"])
    monkeypatch.setattr(cli_mod, "_ask", lambda prompt: next(answers))
    outcome = cli_mod._write([FileResult(path=str(path), source=src, new_text=new)], True)
    written, total = len(outcome.files), outcome.total_hunks
    assert (written, total) == (0, 2)
    assert path.read_text() == old
