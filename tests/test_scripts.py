"""A script's own code runs once per process: a module-level session there, and a session
opened in its `if __name__ == "__main__":` block, serve that one run (SQF007, SQF011), unless
other modules import the script or it starts threads."""

from __future__ import annotations

import textwrap

import pytest

from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes.examples import SYNC_DB

SCRIPT = '''
from app.db import SessionLocal, User

session = SessionLocal()


def name_of(user_id: int) -> str:
    return session.get(User, user_id).name


if __name__ == "__main__":
    local = SessionLocal()
    print(local.get(User, 1).name, name_of(2))
'''


def _run(project: dict[str, str], select: tuple[str, ...] = ("SQF007", "SQF011")):
    files = {"app/__init__.py": "", "app/db.py": SYNC_DB, **project}
    result = fix_text(textwrap.dedent(SCRIPT).lstrip("\n"), Config(root="/p", select=select),
                      project=files, path="app/tool.py")
    assert result.error is None, result.error
    return sorted((f.code, f.line) for f in result.findings)


def test_a_script_run_once_in_one_thread_is_left_alone():
    assert _run({}) == []


def test_a_script_another_module_imports_shares_its_session_with_that_module():
    found = _run({"app/api.py": "from app.tool import name_of\n"})
    assert found == [("SQF007", 3)]


def test_the_main_block_is_never_read_as_a_function_to_rewrite():
    # the block is read as the module's own function; no rule may edit the node built for it
    result = fix_text(textwrap.dedent(SCRIPT).lstrip("\n"), Config(root="/p"),
                      project={"app/__init__.py": "", "app/db.py": SYNC_DB}, path="app/tool.py")
    assert result.error is None


STEPS = '''
from app.db import SessionLocal, User


def add_admin(name: str) -> None:
    db = SessionLocal()
    db.add(User(name=name))
    db.commit()


def main() -> None:
    {call}


if __name__ == "__main__":
    main()
'''


def _steps(call: str, project: dict[str, str] | None = None) -> list[tuple[str, int]]:
    files = {"app/__init__.py": "", "app/db.py": SYNC_DB, **(project or {})}
    source = textwrap.dedent(STEPS).lstrip("\n").replace("{call}", call)
    result = fix_text(source, Config(root="/p", select=("SQF011",)), project=files, path="app/bootstrap.py")
    assert result.error is None, result.error
    return sorted((f.code, f.line) for f in result.findings)


def test_a_function_the_script_runs_once_leaves_no_session_piling_up():
    """`main()` from the `__main__` block, and the step `main()` calls outside any loop: each
    runs once per process, so the session it leaves open is the run's one connection."""
    assert _steps('add_admin("root")') == []
    assert _steps('add_admin("root")\n    add_admin("ops")') == []  # twice: still bounded


def test_a_function_the_script_runs_in_a_loop_or_hands_on_is_reported():
    assert _steps('for name in ("root", "ops"):\n        add_admin(name)') == [("SQF011", 5)]
    assert _steps('[add_admin(n) for n in ("root", "ops")]') == [("SQF011", 5)]
    assert _steps('import atexit\n    atexit.register(add_admin, "root")') == [("SQF011", 5)]


def test_a_decorated_function_may_run_any_number_of_times():
    """`@scheduler.scheduled_job(...)`, `@app.task`: the decorator may register the function to
    run again and again; a decorated caller too."""
    decorated = STEPS.replace("def add_admin(", "@scheduler.scheduled_job(\"interval\", minutes=5)\ndef add_admin(")
    files = {"app/__init__.py": "", "app/db.py": SYNC_DB}
    result = fix_text(textwrap.dedent(decorated).lstrip("\n").replace("{call}", 'add_admin("root")'),
                      Config(root="/p", select=("SQF011",)), project=files, path="app/bootstrap.py")
    assert [f.code for f in result.findings] == ["SQF011"]
    caller = STEPS.replace("def main(", "@scheduler.scheduled_job(\"interval\", minutes=5)\ndef main(")
    result = fix_text(textwrap.dedent(caller).lstrip("\n").replace("{call}", 'add_admin("root")'),
                      Config(root="/p", select=("SQF011",)), project=files, path="app/bootstrap.py")
    assert [f.code for f in result.findings] == ["SQF011"]


def test_a_step_a_command_line_entry_point_calls_runs_once():
    """`@click.command()` on `main`: a command runs once per process, as the `__main__` block."""
    command = STEPS.replace("def main(", "@click.command()\ndef main(")
    result = fix_text(textwrap.dedent(command).lstrip("\n").replace("{call}", 'add_admin("root")'),
                      Config(root="/p", select=("SQF011",)), project={"app/__init__.py": "", "app/db.py": SYNC_DB},
                      path="app/bootstrap.py")
    assert result.findings == []


def test_a_script_another_module_imports_runs_its_functions_any_number_of_times():
    assert _steps('add_admin("root")', {"app/api.py": "from app.bootstrap import add_admin\n"}) == [("SQF011", 5)]


RUNS_ITSELF = '''
import asyncio

from app.db import SessionLocal, User

session = SessionLocal()


def add_admin(name: str) -> None:
    db = SessionLocal()
    db.add(User(name=name))
    db.commit()


def name_of(user_id: int) -> str:
    return session.get(User, user_id).name


{run}
'''


def _runs_itself(run: str, project: dict[str, str] | None = None) -> list[tuple[str, int]]:
    files = {"app/__init__.py": "", "app/db.py": SYNC_DB, **(project or {})}
    source = textwrap.dedent(RUNS_ITSELF).lstrip("\n").replace("{run}", run)
    result = fix_text(source, Config(root="/p", select=("SQF007", "SQF011")), project=files, path="app/seed.py")
    assert result.error is None, result.error
    return sorted((f.code, f.line) for f in result.findings)


def test_a_script_without_a_main_block_runs_itself_once():
    """No `if __name__ == "__main__":`: the module's own statements call its function, once
    (`print(add_admin(...))`, `asyncio.run(main())`): a script all the same."""
    assert _runs_itself('add_admin("root")') == []
    assert _runs_itself('print(add_admin("root"))') == []
    assert _runs_itself('async def main():\n    add_admin("root")\n\n\nasyncio.run(main())') == []


def test_a_module_that_registers_handlers_or_is_imported_is_no_script():
    """A decorated function is code a framework may run any number of times (a route, a
    task): the module-level session is shared by them, and the module is no script. So is a
    module another imports, or one whose own code runs the function in a loop."""
    route = '@app.get("/admins")\ndef admins():\n    return name_of(1)\n\n\nadd_admin("root")'
    assert _runs_itself(route) == [("SQF007", 5), ("SQF011", 9)]
    assert _runs_itself('add_admin("root")', {"app/api.py": "from app.seed import add_admin\n"}) \
        == [("SQF007", 5), ("SQF011", 9)]
    assert _runs_itself('for name in ("root", "ops"):\n    add_admin(name)') == [("SQF011", 9)]
    assert _runs_itself('app = make_app(debug=True)') == [("SQF007", 5), ("SQF011", 9)]  # calls none of its own


@pytest.mark.parametrize("wiring", [
    'app.add_url_rule("/names", view_func=name_of)\nadd_admin("root")',  # Flask, no decorator
    'def create_app():\n    api.add_api_route("/names", name_of)\n    return api\n\n\napp = create_app()',
    'async def main():\n    dp.message.register(name_of)\n    await dp.start_polling(bot)\n\n\nasyncio.run(main())',
])
def test_a_module_that_hands_its_functions_to_a_framework_is_no_script(wiring):
    """Registered without a decorator, a handler is still code a server runs any number of
    times: the module-level session it reads is shared, whatever the module's own
    statements call."""
    assert ("SQF007", 5) in _runs_itself(wiring)
