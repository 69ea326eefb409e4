"""``python -m codemods`` and the ``sqla-fix`` command.

``sqla-fix --version`` is answered here, before the command line (click and every module the
commands need) is imported: it is the one command whose answer needs nothing but the version.
"""

import sys

from . import VERSION_LINE


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(VERSION_LINE)
        return
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
