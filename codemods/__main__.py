"""``python -m codemods`` and the ``sqla-fix`` command.

``sqla-fix --version`` is answered here, before the command line (click and every module the
commands need) is imported: it is the one command whose answer needs nothing but the version.
So is a re-run of ``check`` with nothing changed, from the record the last run of the same
command left (see :mod:`.replay`); any other run goes the normal way, and a ``check`` leaves a
record of itself.
"""

import sys

from . import VERSION_LINE


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        print(VERSION_LINE)
        return
    if argv[:1] == ["check"]:
        from . import replay

        if replay.eligible(argv):
            code = replay.answer(argv)
            if code is not None:
                sys.exit(code)
            with replay.recording(argv):
                _run()
            return
    _run()


def _run() -> None:
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
