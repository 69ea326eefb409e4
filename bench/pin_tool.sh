#!/bin/bash
# Freeze a build of one commit of sqla-fix, for measuring it beside another one.
#   bench/pin_tool.sh REV      -> prints the path of that build's `sqla-fix`
# The build lives in $PIN_DIR/tool-<sha>/ (default /tmp/realbugs) and is made once.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sha=$(git -C "$here" rev-parse "${1:?usage: pin_tool.sh REV}^{commit}")
dir=${PIN_DIR:-/tmp/realbugs}/tool-$sha
if [[ ! -x $dir/venv/bin/sqla-fix ]]; then
  rm -rf "$dir" && mkdir -p "$dir/src"
  git -C "$here" archive "$sha" | tar -x -C "$dir/src"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/python" -m pip install -q "$dir/src" >&2
fi
echo "$dir/venv/bin/sqla-fix"
