#!/usr/bin/env python3
"""Run sqla-fix over the real-bug benchmark (manifest.json): parent (buggy) vs fix trees.

For each entry the parent and fix commits are extracted with `git archive | tar -x`
(the mirror is left untouched) into /tmp/realbugs/<owner+name>/<sha>/ (shared by entries,
kept between runs), then `<tool> check --format json --no-cache -j 1 <tree>` runs on the whole
tree. An entry is *flagged* when the parent run has a finding in one of the entry's files within
+-3 lines of a `lines_parent` line, and *silent after fix* when the fix run has no finding in that
file within +-3 lines of a `lines_fix` line.

Usage: run.py [--tool PATH] [--label NAME] [-j N] [--only SUBSTR] [--timeout S] [--reuse]
Writes results-<label>.json into $REALBUGS_WORK and prints a table and a summary.
Stdlib only.
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.environ.get('REALBUGS_WORK', '/tmp/realbugs')
# Bare git mirrors of the repositories, one per `<owner>+<name>/repo` (as `fetch` makes them).
MIRRORS = os.environ.get('REALBUGS_MIRRORS', '/work/.mirror')
WINDOW = 3
IN_SCOPE = {
    'snapshot-before-expunge': 'SQF001',
    'merge-foreign-instance': 'SQF002',
    'hoist-out-of-scope': 'SQF003',
    'expunge-after-rollback': 'SQF004',
    'refresh-before-escape': 'SQF005',
    'lazy-load-outside-session': 'SQF006',
    'instance-outlives-session': 'SQF007',
    'merge-result-discarded': 'SQF008',
    'rollback-after-failed-flush': 'SQF009',
    'expired-read-in-async': 'SQF010',
    'session-never-closed': 'SQF011',
}


def git_dir(repo):
    """A snapshot is a bare repository or, for some, a clone whose git directory is `.git`."""
    inner = os.path.join(repo, '.git')
    return inner if os.path.isdir(inner) else repo


def tree_dir(entry, sha):
    return os.path.join(WORK, entry['repo'].replace('/', '+'), sha)


PY_KEEP = ('.py', 'pyproject.toml', 'setup.cfg')


def _python_files(mirror, sha):
    out = subprocess.run(['git', f'--git-dir={mirror}', 'ls-tree', '-r', '--name-only', '-z', sha],
                         capture_output=True, text=True).stdout
    return [':(literal)' + x for x in out.split('\0') if x.endswith(PY_KEEP)]


def _archive(mirror, sha, tmp, pathspecs=()):
    arch = subprocess.Popen(['git', f'--git-dir={mirror}', 'archive', '--format=tar', sha, '--', *pathspecs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tar = subprocess.run(['tar', '-x', '-C', tmp], stdin=arch.stdout, capture_output=True)
    arch.stdout.close()
    err = arch.stderr.read().decode()
    return arch.wait() == 0 and tar.returncode == 0, err + tar.stderr.decode()


def extract(mirror, sha, dest):
    """git archive <sha> | tar -x into dest (atomic via a temp dir); cached.

    Snapshots brought by `fetch` may lack their largest blobs (wasm, images...): then the full
    archive fails and the tree is extracted again with only Python files and packaging config
    (*.py, pyproject.toml, setup.cfg, setup.py), which is all sqla-fix reads."""
    if os.path.isdir(dest) and os.path.exists(os.path.join(dest, '.realbugs-complete')):
        return
    tmp = f'{dest}.tmp{os.getpid()}'
    for pathspecs in ((), None):
        if pathspecs is None:
            pathspecs = _python_files(mirror, sha)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        ok, err = _archive(mirror, sha, tmp, pathspecs)
        if ok:
            break
    else:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f'extract {sha} failed: {err[:300]}')
    with open(os.path.join(tmp, '.realbugs-complete'), 'w') as fh:
        fh.write('python-only\n' if pathspecs else 'full\n')
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def run_tool(tool, root, timeout, paths=None):
    t0 = time.time()
    cmd = [tool, 'check', '--format', 'json', '--no-cache', '--no-progress', '-j', '1'] + (paths or [root])
    try:
        p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'status': 'timeout', 'seconds': round(time.time() - t0, 1), 'findings': [], 'errors': []}
    out = {'status': 'ok', 'exit': p.returncode, 'seconds': round(time.time() - t0, 1)}
    try:
        data = json.loads(p.stdout)
    except ValueError:
        out.update(status='error', findings=[], errors=[], stderr=p.stderr[-2000:], stdout=p.stdout[-500:])
        return out
    findings = []
    for f in data.get('findings', []):
        path = f.get('path', '')
        if os.path.isabs(path):
            path = os.path.relpath(path, root)
        else:
            path = os.path.normpath(path)
        findings.append({'path': path, 'line': f.get('line'), 'end_line': f.get('end_line'),
                         'code': f.get('code'), 'message': (f.get('message') or '')[:300]})
    out['findings'] = findings
    out['errors'] = data.get('errors', [])[:20]
    out['files'] = data.get('files')
    if p.returncode == 2:
        out['status'] = 'tool-error'
        out['stderr'] = p.stderr[-2000:]
    return out


def near(findings, path, lines):
    hits = []
    for f in findings:
        if f['path'] != os.path.normpath(path) or f['line'] is None:
            continue
        if any(abs(f['line'] - ln) <= WINDOW for ln in lines):
            hits.append(f)
    return hits


def task(args_tool, timeout, entry, side, label, reuse, scope='tree'):
    sha = entry['parent'] if side == 'parent' else entry['fix']
    root = tree_dir(entry, sha)
    paths = None
    suffix = ''
    if scope == 'files':
        # only the entry's files are checked; the project index is still built from the project root
        paths = [os.path.join(root, f['path']) for f in entry['files']]
        suffix = '+files-' + entry['fix'][:12]
    cache = os.path.join(WORK, '_runs', label, entry['repo'].replace('/', '+') + '+' + sha + suffix + '.json')
    if reuse and os.path.exists(cache):
        return json.load(open(cache))
    if reuse == 'only':
        return {'status': 'not-run', 'findings': [], 'errors': []}
    try:
        extract(entry['mirror'], sha, root)
    except Exception as e:  # noqa: BLE001
        return {'status': 'extract-error', 'error': str(e), 'findings': [], 'errors': []}
    res = run_tool(args_tool, root, timeout, [p for p in paths if os.path.exists(p)] if paths else None)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    json.dump(res, open(cache, 'w'))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tool', default=os.path.join(os.path.dirname(os.path.dirname(HERE)), '.venv', 'bin', 'sqla-fix'))
    ap.add_argument('--label', default='run')
    ap.add_argument('--manifest', default=os.path.join(HERE, 'manifest.json'))
    ap.add_argument('-j', '--jobs', type=int, default=2, help='concurrent tool runs (each runs with -j 1)')
    ap.add_argument('--only', help='only entries whose repo or fix sha contains this')
    ap.add_argument('--exclude', action='append', help='skip entries whose repo contains this (repeatable)')
    ap.add_argument('--timeout', type=int, default=300, help='per tool run, seconds')
    ap.add_argument('--scope', choices=('tree', 'files'), default='tree',
                    help="tree: check the whole extracted tree (default); files: check only the entry's "
                         "files (the index is still built from the project root) - a fallback for trees "
                         "whose whole-tree run times out")
    ap.add_argument('--wave', type=int, help='only the entries of this collection wave (see README)')
    ap.add_argument('--cached-only', action='store_true',
                    help='score only tool outputs already saved under this label; run nothing')
    ap.add_argument('--reuse', action='store_true',
                    help='reuse tool outputs saved by an earlier run with the same --label '
                         '(/tmp/realbugs/_runs/<label>/); off by default')
    args = ap.parse_args()
    tool = os.path.abspath(args.tool)
    entries = json.load(open(args.manifest))
    for e in entries:
        e.setdefault('mirror', git_dir(os.path.join(MIRRORS, e['repo'].replace('/', '+'), 'repo')))
    if args.only:
        entries = [e for e in entries if args.only in e['repo'] or e['fix'].startswith(args.only)]
    for x in args.exclude or ():
        entries = [e for e in entries if x not in e['repo']]
    if args.wave:
        entries = [e for e in entries if e.get('wave', 1) == args.wave]
    os.makedirs(WORK, exist_ok=True)

    # one tool run per distinct tree (a parent of one entry may be the fix of another)
    runs = {}
    with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = {}
        # small trees first, so that a slow machine still gets most entries done early
        def size(e):
            out = subprocess.run(['git', f"--git-dir={e['mirror']}", 'ls-tree', '-r', '--name-only', e['parent']],
                                 capture_output=True, text=True).stdout
            return sum(1 for x in out.splitlines() if x.endswith('.py'))
        sizes = {}
        for e in entries:
            sizes.setdefault(e['repo'], size(e))
        for e in sorted(entries, key=lambda e: sizes[e['repo']]):
            for side in ('parent', 'fix'):
                sha = e[side]
                key = (e['repo'], sha) if args.scope == 'tree' else (e['repo'], sha, e['fix'])
                if key not in futs:
                    futs[key] = ex.submit(task, tool, args.timeout, e, side, args.label,
                                          'only' if args.cached_only else args.reuse, args.scope)
        done = 0
        for _fut in cf.as_completed(futs.values()):
            done += 1
            print(f'\r{done}/{len(futs)} tool runs done', end='', file=sys.stderr, flush=True)
        print(file=sys.stderr)
        for key, fut in futs.items():
            runs[key] = fut.result()

    results = []
    for e in entries:
        k = () if args.scope == 'tree' else (e['fix'],)
        rp, rf = runs[(e['repo'], e['parent']) + k], runs[(e['repo'], e['fix']) + k]
        hits_p, hits_f = [], []
        for f in e['files']:
            hits_p += near(rp['findings'], f['path'], f['lines_parent'])
            if f.get('lines_fix'):
                hits_f += near(rf['findings'], f['path'], f['lines_fix'])
        files = {os.path.normpath(f['path']) for f in e['files']}
        results.append({
            'repo': e['repo'], 'fix': e['fix'], 'parent': e['parent'], 'class': e['class'],
            'in_scope': e['class'] in IN_SCOPE, 'expected_rule': IN_SCOPE.get(e['class']),
            'flagged': bool(hits_p), 'parent_codes': sorted({h['code'] for h in hits_p}),
            'parent_hits': hits_p,
            'silent_after_fix': not hits_f, 'fix_hits': hits_f,
            'parent_findings_in_files': [x for x in rp['findings'] if x['path'] in files],
            'fix_findings_in_files': [x for x in rf['findings'] if x['path'] in files],
            'total_parent': len(rp['findings']), 'total_fix': len(rf['findings']),
            'status_parent': rp['status'], 'status_fix': rf['status'],
            'files_parent': rp.get('files'), 'files_fix': rf.get('files'),
            'seconds_parent': rp.get('seconds'), 'seconds_fix': rf.get('seconds'),
            'tool_errors': {s_: r_.get('stderr') for s_, r_ in (('parent', rp), ('fix', rf)) if r_.get('stderr')} or None,
        })

    # table
    hdr = f"{'repo':44} {'fix':8} {'class':27} {'flag':5} {'codes':14} {'silent':6} {'n_par':>5} {'n_fix':>5} st"
    print(hdr)
    print('-' * len(hdr))
    for r in results:
        st = '' if r['status_parent'] == r['status_fix'] == 'ok' else f"{r['status_parent']}/{r['status_fix']}"
        print(f"{r['repo'][:44]:44} {r['fix'][:8]} {r['class'][:27]:27} {'YES' if r['flagged'] else 'no':5} "
              f"{','.join(r['parent_codes'])[:14]:14} {'yes' if r['silent_after_fix'] else 'NO':6} "
              f"{r['total_parent']:5d} {r['total_fix']:5d} {st}")

    # summary
    by_class = defaultdict(lambda: [0, 0])
    for r in results:
        by_class[r['class']][0] += r['flagged']
        by_class[r['class']][1] += 1
    print('\nRecall per class (flagged at the site on the parent):')
    for scope_name, pred in (('in scope (SQF001-SQF011)', True), ('out of scope', False)):
        print(f'  {scope_name}:')
        for c in sorted(k for k in by_class if (k in IN_SCOPE) == pred):
            f_, n = by_class[c]
            print(f"    {c:28} {IN_SCOPE.get(c, ''):7} {f_}/{n}")
    ins = [r for r in results if r['in_scope']]
    outs = [r for r in results if not r['in_scope']]
    flagged = [r for r in results if r['flagged']]

    def pct(a, b):
        return f'{a}/{b} ({100.0 * a / b:.0f}%)' if b else '0/0'
    summary = {
        'entries': len(results),
        'recall_in_scope': pct(sum(r['flagged'] for r in ins), len(ins)),
        'recall_out_of_scope': pct(sum(r['flagged'] for r in outs), len(outs)),
        'recall_overall': pct(len(flagged), len(results)),
        'right_rule_in_scope': pct(sum(1 for r in ins if r['expected_rule'] in r['parent_codes']), len(ins)),
        'silent_after_fix_of_flagged': pct(sum(r['silent_after_fix'] for r in flagged), len(flagged)),
        'silent_after_fix_all': pct(sum(r['silent_after_fix'] for r in results), len(results)),
        'total_findings_parent': sum(r['total_parent'] for r in results),
        'total_findings_fix': sum(r['total_fix'] for r in results),
        'runs_not_ok': sum(1 for r in results for s in ('status_parent', 'status_fix') if r[s] != 'ok'),
        'per_class': {c: {'flagged': v[0], 'entries': v[1]} for c, v in by_class.items()},
    }
    print('\nSummary:')
    for k, v in summary.items():
        if k != 'per_class':
            print(f'  {k:30} {v}')
    out = os.path.join(WORK, f'results-{args.label}.json')
    json.dump({'label': args.label, 'tool': tool, 'scope': args.scope, 'summary': summary, 'results': results},
              open(out, 'w'), indent=1, ensure_ascii=False)
    print(f'\nwrote {out}')


if __name__ == '__main__':
    main()
