#!/usr/bin/env python3
"""Precision check: what sqla-fix reports on whole real projects, and what changed between builds.

manifest.json lists public repositories and one commit of each (no code of theirs is kept
here). Each tree is extracted from a bare mirror ($REALBUGS_MIRRORS/<owner>+<name>/repo, as
`fetch` or `git clone --mirror` makes it) and `<tool> check --format json --no-cache -j 1` runs
on the whole tree. Results go to $REALBUGS_WORK/precision-<label>.json.

With --base LABEL, every finding that appeared or disappeared since that earlier run is printed
on a line starting with "==", to be read one by one: a new finding must be a real bug, a gone
one must have been a false one.

Usage: run.py --tool PATH --label NAME [--base NAME] [-j N] [--only SUBSTR] [--manifest FILE]
       run.py --pin [--manifest FILE]   (rewrite the manifest with each mirror's newest commit)

fresh.json lists 47 more projects, outside the benchmark (services, bots, Flask applications,
and the SQLAlchemy ecosystem's own repositories): a wider net for false findings and crashes.
fresh2.json lists 27 more, read in a later round (bots, Celery workers, Flask and FastAPI
services; one with merge-conflict markers committed in 41 files).
Stdlib only.
"""
import argparse
import concurrent.futures as cf
import importlib.util
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, 'manifest.json')


def _realbugs():
    spec = importlib.util.spec_from_file_location('realbugs_run', os.path.join(HERE, '..', 'realbugs', 'run.py'))
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RB = _realbugs()


def mirror_of(repo):
    return RB.git_dir(os.path.join(RB.MIRRORS, repo.replace('/', '+'), 'repo'))


def pin(entries, manifest=MANIFEST):
    """Each mirror's newest commit, except for an entry that says why it keeps its own
    (`keep`: the newest commit removed the code, say)."""
    rows = []
    for e in entries:
        if e.get('keep'):
            rows.append(e)
            continue
        sha = subprocess.run(['git', f'--git-dir={mirror_of(e["repo"])}', 'rev-parse', 'HEAD'],
                             capture_output=True, text=True, check=True).stdout.strip()
        rows.append({'repo': e['repo'], 'commit': sha})
    with open(manifest, 'w') as fh:
        json.dump(rows, fh, indent=1)
        fh.write('\n')
    return rows


def check(tool, entry, timeout):
    root = os.path.join(RB.WORK, entry['repo'].replace('/', '+'), entry['commit'])
    RB.extract(mirror_of(entry['repo']), entry['commit'], root)
    return RB.run_tool(tool, root, timeout)


def key(f):
    return (f['path'], f['line'], f['code'], f['message'])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tool')
    ap.add_argument('--label')
    ap.add_argument('--base')
    ap.add_argument('-j', '--jobs', type=int, default=1)
    ap.add_argument('--only')
    ap.add_argument('--timeout', type=int, default=900)
    ap.add_argument('--pin', action='store_true')
    ap.add_argument('--manifest', default=MANIFEST, help='the projects (default: manifest.json; fresh.json: '
                    'projects outside the benchmark, read once for false findings and crashes)')
    args = ap.parse_args()
    entries = json.load(open(args.manifest))
    if args.pin:
        pin(entries, args.manifest)
        return 0
    if not (args.tool and args.label):
        ap.error('--tool and --label are needed')
    if args.only:
        entries = [e for e in entries if args.only in e['repo']]
    tool = os.path.abspath(args.tool)
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        runs = dict(zip((e['repo'] for e in entries), ex.map(lambda e: check(tool, e, args.timeout), entries)))
    with open(os.path.join(RB.WORK, f'precision-{args.label}.json'), 'w') as fh:
        json.dump({'label': args.label, 'tool': tool, 'runs': runs}, fh, indent=1)
    base = {}
    if args.base:
        with open(os.path.join(RB.WORK, f'precision-{args.base}.json')) as fh:
            base = json.load(fh)['runs']
    total = new_n = gone_n = 0
    for repo, run in runs.items():
        now = {key(f): f for f in run['findings']}
        total += len(now)
        line = f"{repo:55} {run['status']:10} {len(now):5} findings {run.get('seconds', 0):7.1f}s"
        if repo in base:
            before = {key(f): f for f in base[repo]['findings']}
            new, gone = sorted(now.keys() - before.keys()), sorted(before.keys() - now.keys())
            new_n += len(new)
            gone_n += len(gone)
            line += f'  +{len(new)} -{len(gone)}'
            print(line)
            for sign, keys in (('+', new), ('-', gone)):
                for k in keys:
                    print(f'== {sign} {repo} {k[0]}:{k[1]} {k[2]} {k[3][:160]}')
        else:
            print(line)
    print(f'{len(runs)} projects, {total} findings' + (f', {new_n} new, {gone_n} gone against {args.base}' if args.base else ''))
    return 1 if any(r['status'] != 'ok' for r in runs.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
