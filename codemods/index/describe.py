"""``sqla-fix index``: what the index found, as plain data and as text."""

from __future__ import annotations

from .queries import ProjectIndex


def describe(index: ProjectIndex) -> dict:
    """What the index found, for `sqla-fix index`: plain data, sorted."""
    factories, scopes, decorators, providers, aliases = [], [], [], [], []
    where_defined = {id(fn): m.own(q)
                     for m in index.modules.values() for q, fn in m.functions.items()}
    targets = set()  # every Depends target, named where it is defined
    for mod in index.modules.values():
        deps = [index.param_dependency(p)[0] for fn in mod.functions.values() for p in fn.params]
        deps += [a.depends for a in mod.aliases.values()]
        for dep in filter(None, deps):
            found = index.function(dep)
            targets.add(where_defined.get(id(found), dep))
    for mod in sorted(index.modules.values(), key=lambda m: m.module):
        where = lambda line, mod=mod: f"{mod.path}:{line}"  # noqa: E731
        for name, f in sorted(mod.factories.items()):
            qualified = mod.own(name)
            resolved = index.factory(qualified)
            if resolved is None:
                continue
            factories.append({
                "name": qualified, "at": where(f.line), "builder": resolved.builder,
                "async": resolved.is_async, "expire_on_commit": index.expire_on_commit(qualified),
                "expire_on_commit_stated": resolved.expire_on_commit is not None,
                "scoped": resolved.scoped, "bind": resolved.bind,
            })
        for qualname, fn in sorted(mod.functions.items()):
            qualified = mod.own(qualname)
            scope = index.scope(qualified)
            if scope is not None:
                scopes.append({"name": qualified, "at": where(fn.line), "yields": scope.yields,
                               "service": fn.yields_class, "factory": scope.factory,
                               "async": scope.is_async, "expire_on_commit": scope.expire_on_commit,
                               "commits_on_exit": scope.commits_on_exit,
                               "rolls_back_on_exit": scope.rolls_back_on_exit,
                               "closes_on_exit": scope.closes_on_exit, "exit_uncertain": scope.exit_uncertain})
            d = index.decorator(qualified)
            if d is not None:
                decorators.append({"name": qualified, "at": where(fn.line), "factory": d.factory,
                                   "expire_on_commit": index.expire_on_commit(d.factory, d.expire_on_commit),
                                   "commits": d.commits,
                                   "passes_session_as": d.keyword or f"argument {d.position}"})
            provider = index.session_provider(qualified)
            depends = [index.param_dependency(p)[0] for p in fn.params]
            depends = [d for d in depends if d]
            if provider is not None or depends or qualified in targets:
                origins = index.value_sessions(qualified) or []
                providers.append({
                    "name": qualified, "at": where(fn.line),
                    "provides_session": provider is not None and provider == qualified,
                    "session_from": provider if provider not in (None, qualified) else None,
                    "depends_on": depends,
                    "value_sessions": [
                        {"provider": o.provider, "open": o.open, "use_cache": o.use_cache} for o in origins
                    ] if provider is None else [],
                })
        for qualname, cls in sorted(mod.classes.items()):
            qualified = mod.own(qualname)
            scope = index.scope(qualified)
            if scope is not None and scope.kind == "class":
                scopes.append({"name": qualified, "at": where(cls.line), "yields": scope.yields, "service": None,
                               "factory": scope.factory, "async": scope.is_async,
                               "expire_on_commit": scope.expire_on_commit, "commits_on_exit": scope.commits_on_exit,
                               "rolls_back_on_exit": scope.rolls_back_on_exit, "closes_on_exit": scope.closes_on_exit,
                               "exit_uncertain": scope.exit_uncertain})
        for name, a in sorted(mod.aliases.items()):
            aliases.append({"name": mod.own(name),
                            "type": a.annotation, "depends": a.depends, "use_cache": a.use_cache})
    models = [
        {"name": q, "columns": sorted(m.columns), "deferred": sorted(m.deferred),
         "relationships": {k: m.relationships[k] for k in sorted(m.relationships)}}
        for q, m in sorted(index.models().items())
    ]
    modules = [
        {"name": m.module, "path": m.path, "root": m.import_root, "root_kind": m.root_kind,
         "also": list(m.other_names)}
        for m in sorted(index.modules.values(), key=lambda m: m.module)
    ]
    return {"factories": factories, "scopes": scopes, "decorators": decorators,
            "providers": providers, "aliases": aliases, "models": models, "modules": modules}


def render_description(data: dict) -> str:
    lines: list[str] = []

    def section(title: str, rows: list[str]) -> None:
        lines.append(f"{title} ({len(rows)})")
        lines.extend(f"  {r}" for r in rows)
        lines.append("")

    section("Session factories", [
        f"{f['name']}  [{f['at']}]  {'async' if f['async'] else 'sync' if f['async'] is False else 'sync/async unknown'}, "
        f"expire_on_commit={f['expire_on_commit']}{'' if f['expire_on_commit_stated'] else ' (default)'}"
        + (", scoped" if f["scoped"] else "") + (f", bind={f['bind']}" if f["bind"] else "")
        for f in data["factories"]
    ])
    section("Session scopes (context managers and classes)", [
        f"{s['name']}  [{s['at']}]  yields a {s['yields']}"
        + (f" ({s['service']})" if s["service"] else "")
        + f", factory={s['factory'] or 'unknown'}, expire_on_commit={s['expire_on_commit']}, "
        f"commits on exit: {'yes' if s['commits_on_exit'] else 'no'}"
        + (", rolls back on exit (expires everything)" if s["rolls_back_on_exit"] else "")
        + (", closes the session on exit" if s["closes_on_exit"] else "")
        + (", its exit commits, rolls back or closes only on some paths (not counted)" if s["exit_uncertain"] else "")
        for s in data["scopes"]
    ])
    section("Session decorators", [
        f"{d['name']}  [{d['at']}]  factory={d['factory']}, passes the session as {d['passes_session_as']}, "
        f"expire_on_commit={d['expire_on_commit']}, commits: {'yes' if d['commits'] else 'no'}"
        for d in data["decorators"]
    ])
    rows = []
    for p in data["providers"]:
        if p["provides_session"]:
            rows.append(f"{p['name']}  [{p['at']}]  provides a session")
        elif p["session_from"]:
            rows.append(f"{p['name']}  [{p['at']}]  passes on the session of {p['session_from']}")
        else:
            sessions = ", ".join(
                (o["provider"] or "its own session") + ("" if o["open"] else " (closed before use)")
                + ("" if o["use_cache"] else " (use_cache=False)")
                for o in p["value_sessions"]) or "no session"
            rows.append(f"{p['name']}  [{p['at']}]  depends on {', '.join(p['depends_on'])}; value from: {sessions}")
    section("FastAPI providers", rows)
    section("Annotated aliases", [
        f"{a['name']} = Annotated[{a['type']}, Depends({a['depends']}{'' if a['use_cache'] else ', use_cache=False'})]"
        for a in data["aliases"]
    ])
    section("Models", [
        f"{m['name']}: columns {', '.join(m['columns']) or '-'}"
        + (f"; deferred {', '.join(m['deferred'])}" if m["deferred"] else "")
        + "; relationships " + (", ".join(f"{k} (lazy={v})" for k, v in m["relationships"].items()) or "-")
        for m in data["models"]
    ])
    section("Modules (the session-related ones, with the import root each name comes from)", [
        f"{m['name']}  [{m['path']}]  root {m['root']}" + (f" ({m['root_kind']})" if m["root_kind"] else "")
        + (f"; also imported as {', '.join(m['also'])}" if m["also"] else "")
        for m in data["modules"]
    ])
    return "\n".join(lines)

