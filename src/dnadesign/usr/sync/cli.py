"""`usr diff | pull | push` and `usr remotes add | list | show | remove | doctor` (thin: parse, call, render)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from ...core.atomic import atomic_write_text
from ...core.cli import handled
from ...core.console import err, interactive, out, print_json
from ...core.errors import ConflictError, ExitCode, UsageError
from ...core.ids import validate_dataset_id
from ..layout import resolve_root
from ..manifest import Manifest
from . import engine
from .remotes import RemoteProfile, get_profile, load_profiles, parse_location, remotes_path, save_profiles
from .rsync import check_bwlimit

remotes_app = typer.Typer(help="Remote profiles for sync (stored in $USR_REMOTES_PATH or ~/.config/dnadesign/remotes.yaml).",
                          no_args_is_help=True)

VerifyOpt = typer.Option("hash", "--verify", help="Check transferred files by sha256 (hash) or only by size (size, faster).")
SidecarsOpt = typer.Option(True, "--verify-sidecars/--no-verify-sidecars",
                           help="After the transfer, check that meta.md, events, snapshots and auxiliary files all arrived.")
DerivedOpt = typer.Option(True, "--verify-derived-hashes/--no-verify-derived-hashes",
                          help="Check _derived overlay files by sha256 too (off: by size).")
PrimaryOnlyOpt = typer.Option(False, "--primary-only", help="Sync only the base record parts (no overlays, snapshots, meta, events, aux).")
SkipSnapOpt = typer.Option(False, "--skip-snapshots", help="Do not sync _snapshots.")
AuditOpt = typer.Option(None, "--audit-json-out", help="Write the audit summary as JSON to this file.")
BwlimitOpt = typer.Option(None, "--bwlimit", help="Limit rsync's bandwidth (KB/s, or with a suffix: 500, 5M); default $USR_SYNC_BWLIMIT.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _root(ctx: typer.Context) -> Path:
    obj = (ctx.find_root().obj if ctx is not None else None) or {}
    return resolve_root(obj.get("root") if isinstance(obj, dict) else None)


def _opts(verify: str, sidecars: bool, derived: bool, primary_only: bool, skip_snapshots: bool,
          bwlimit: str | None = None) -> engine.SyncOptions:
    if verify not in ("hash", "size", "auto"):
        raise UsageError(f"--verify must be hash or size, not {verify!r}", hint="use --verify hash (default) or --verify size")
    if verify == "auto":
        verify = "hash"
    return engine.SyncOptions(verify=verify, verify_sidecars=sidecars, verify_derived_hashes=derived,
                              primary_only=primary_only, skip_snapshots=skip_snapshots, bwlimit=check_bwlimit(bwlimit))


def _write_audit(path: Path | None, doc: dict[str, Any]) -> None:
    if path is not None:
        atomic_write_text(path, json.dumps({"usr_output_version": 1, "data": doc}, indent=2) + "\n")


def render_diff(d: engine.Diff) -> str:
    lm, rm = d.local.manifest, d.remote_state.manifest
    lines = [f"Dataset    : {d.dataset}   local {d.local.dir}  <->  {d.remote}:{d.remote_state.dir or '(absent)'}"]

    def side(m: Manifest | None) -> str:
        return f"{len(m.parts)} part(s), {m.rows} rows" if m else "absent"

    lines.append(f"Primary    : local {side(lm)} | remote {side(rm)}")
    for g, v in d.groups.items():
        lo, ro = len(v["local_only"]), len(v["remote_only"])
        label = "Primary" if g == "primary" else ("Tombstones" if g == "tombstones" else g.replace("derived/", "_derived/"))
        if lo or ro:
            lines.append(f"  {label:<10}: {ro} file(s) only on remote (pull), {lo} only local (push)")
    if d.snapshots:
        s = d.snapshots
        lines.append(f"_snapshots : {len(s['remote_only'])} only on remote, {len(s['local_only'])} only local, {len(s['conflicts'])} conflicting")
    if not d.opts.primary_only:
        meta = "same" if not (d.meta_pull or d.meta_push) else ("remote has lines local lacks" if d.meta_pull else "") + \
            (" / " if d.meta_pull and d.meta_push else "") + ("local has lines remote lacks" if d.meta_push else "")
        lines.append(f"meta.md    : {meta}")
        e = d.events
        lines.append(f".events.log: local={e['local']} remote={e['remote']}  only remote={e['remote_only']} (pull)  only local={e['local_only']} (push)"
                     + (f"  [+{e['sync_only_local'] + e['sync_only_remote']} sync event(s), not drift]" if e['sync_only_local'] + e['sync_only_remote'] else ""))
        a = d.aux
        lines.append(f"_auxiliary : local_files={a['local_files']} remote_files={a['remote_files']}  newer on remote={len(a['pull'])} (pull)  newer local={len(a['push'])} (push)")
    for c in d.conflicts:
        lines.append(f"CONFLICT   : {c}")
    way = " + ".join(w for w, need in (("pull", d.to_pull), ("push", d.to_push)) if need)
    lines.append(f"Status     : {'up-to-date' if d.status == 'up-to-date' else 'CHANGES (' + (way or 'conflicts') + ')'}")
    lines.append(f"Verify     : primary={d.opts.verify} sidecars={'strict' if d.opts.verify_sidecars else 'off'}")
    return "\n".join(lines)


def _confirm(yes: bool, action: str):
    def ask(d: engine.Diff) -> bool:
        out.print(render_diff(d), highlight=False, markup=False)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError(f"{action} needs confirmation but stdin is not a terminal", hint="pass -y to proceed without the prompt")
        return typer.confirm(f"Proceed with {action}?", default=True)
    return ask


def _progress_cb():
    if not interactive():
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("transfer"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(), console=err, transient=True)
    task = prog.add_task("transfer", total=100)
    started: list[int] = []

    def cb(nbytes: int, pct: int) -> None:
        if not started and nbytes > 0:
            prog.start()
            started.append(1)
        prog.update(task, completed=pct)
    return cb, prog


def _transfer(ctx: typer.Context, action: str, dataset: str, remote: str, yes: bool, dry_run: bool, verify: str, sidecars: bool,
              derived: bool, primary_only: bool, skip_snapshots: bool, audit_json_out: Path | None, bwlimit: str | None) -> None:
    validate_dataset_id(dataset)
    opts = _opts(verify, sidecars, derived, primary_only, skip_snapshots, bwlimit)
    profile = get_profile(remote)
    cb, prog = _progress_cb()
    fn = engine.pull if action == "pull" else engine.push
    try:
        audit = fn(_root(ctx), dataset, profile, opts, dry_run=dry_run, confirm=_confirm(yes, action), progress=cb)
    except KeyboardInterrupt:
        err.print(f"{action} cancelled; nothing was changed.")
        raise SystemExit(1) from None
    finally:
        if prog is not None:
            prog.stop()
    if audit.state in ("NO-OP", "DRY-RUN"):
        out.print(render_diff(audit.diff), highlight=False, markup=False)
    out.print(audit.render(), highlight=False, markup=False)
    _write_audit(audit_json_out, audit.as_dict())
    if audit.state == "TRANSFERRED":
        out.print(f"{action.capitalize()} complete.", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `diff`, `pull`, `push` and the `remotes` group to the `usr` app."""

    @app.command("diff")
    @handled
    def diff_cmd(ctx: typer.Context,
                 dataset: str = typer.Argument(..., help="Dataset id namespace/name."),
                 remote: str = typer.Argument(..., help="Remote profile name (see `usr remotes list`)."),
                 as_json: bool = JsonOpt,
                 verify: str = VerifyOpt,
                 primary_only: bool = PrimaryOnlyOpt,
                 skip_snapshots: bool = SkipSnapOpt,
                 audit_json_out: Path | None = AuditOpt) -> None:
        """Compare the local and remote copies; exit 0 when identical, 3 when they differ."""
        validate_dataset_id(dataset)
        opts = _opts(verify, True, True, primary_only, skip_snapshots)
        d, session = engine.diff(_root(ctx), dataset, get_profile(remote), opts)
        if as_json:
            print_json({"usr_output_version": 1, "data": {**d.as_dict(), "ssh_calls": session.remote.remote_calls()[0]}})
        else:
            out.print(render_diff(d), highlight=False, markup=False)
        if audit_json_out is not None:
            _write_audit(audit_json_out, session.audit("diff", "DIFF-ONLY", d).as_dict())
        raise typer.Exit(int(ExitCode.DIFFERS) if d.status != "up-to-date" else 0)

    for action in ("pull", "push"):
        _make_transfer(app, action)

    app.add_typer(remotes_app, name="remotes")


def _make_transfer(app: typer.Typer, action: str) -> None:
    helptext = {"pull": "Bring the remote's new files, snapshots, notes and events here; merge by union.",
                "push": "Send local new files, snapshots, notes and events to the remote; merge by union."}[action]

    @handled
    def cmd(ctx: typer.Context,
            dataset: str = typer.Argument(..., help="Dataset id namespace/name."),
            remote: str = typer.Argument(..., help="Remote profile name."),
            yes: bool = typer.Option(False, "-y", "--yes", help="Do not ask for confirmation."),
            dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; transfer nothing."),
            verify: str = VerifyOpt,
            sidecars: bool = SidecarsOpt,
            derived: bool = DerivedOpt,
            primary_only: bool = PrimaryOnlyOpt,
            skip_snapshots: bool = SkipSnapOpt,
            audit_json_out: Path | None = AuditOpt,
            bwlimit: str | None = BwlimitOpt) -> None:
        _transfer(ctx, action, dataset, remote, yes, dry_run, verify, sidecars, derived, primary_only, skip_snapshots, audit_json_out,
                  bwlimit)

    cmd.__doc__ = helptext
    app.command(action, help=helptext)(cmd)


# -- remotes -------------------------------------------------------------------------------------
@remotes_app.command("add")
@handled
def remotes_add(name: str = typer.Argument(..., help="Profile name, e.g. bu-scc."),
                location: str | None = typer.Argument(None, help="For a remote that is a mounted path: /path, ~/path or file:///path."),
                host: str | None = typer.Option(None, "--host", help="SSH remote: host name or ~/.ssh/config alias."),
                base_dir: str | None = typer.Option(None, "--base-dir", help="SSH remote: USR root on the remote (absolute or ~/...)."),
                user: str | None = typer.Option(None, "--user", help="SSH remote: login name (default: from ~/.ssh/config or $USER)."),
                port: int | None = typer.Option(None, "--port", help="SSH remote: port (default: from ~/.ssh/config, else 22)."),
                identity_file: str | None = typer.Option(None, "--identity-file", help="Private key (ssh -i)."),
                ssh_config: str | None = typer.Option(None, "--ssh-config", help="ssh config file (ssh -F)."),
                known_hosts: str | None = typer.Option(None, "--known-hosts", help="known_hosts file to trust."),
                ssh_option: list[str] = typer.Option([], "--ssh-option", help="Extra ssh -o Key=Value (repeatable)."),
                batch_mode: bool = typer.Option(True, "--batch-mode/--no-batch-mode", help="--no-batch-mode allows interactive MFA."),
                force: bool = typer.Option(False, "--force", help="Replace an existing profile.")) -> None:
    """Add (or with --force replace) a remote: `NAME --host H --base-dir D` (SSH) or `NAME /mounted/path` (a path)."""
    if location is not None:
        ssh_only = [flag for flag, v in (("--host", host), ("--base-dir", base_dir), ("--user", user), ("--port", port),
                                         ("--identity-file", identity_file), ("--ssh-config", ssh_config),
                                         ("--known-hosts", known_hosts), ("--ssh-option", ssh_option)) if v]
        if ssh_only:
            raise UsageError(f"{ssh_only[0]} does not apply to a remote that is a path ({location})",
                             hint=f"use `usr remotes add {name} PATH` for a mounted path, or --host/--base-dir without PATH for SSH")
        profile = RemoteProfile(name=name, host=None, base_dir=parse_location(location), type="path")
    else:
        if not host or not base_dir:
            raise UsageError("an SSH remote needs --host and --base-dir",
                             hint=f"e.g. `usr remotes add {name} --host scc1.bu.edu --base-dir /projectnb/lab/usr`, "
                                  f"or `usr remotes add {name} /mounted/path` for a path")
        profile = RemoteProfile(name=name, host=host, base_dir=base_dir, user=user, port=port, identity_file=identity_file,
                                ssh_config=ssh_config, known_hosts=known_hosts, ssh_options=list(ssh_option), batch_mode=batch_mode)
    profiles = load_profiles()
    if name in profiles and not force:
        raise ConflictError(f"remote {name!r} already exists in {remotes_path()}", hint="pass --force to replace it")
    profiles[name] = profile
    path = save_profiles(profiles)
    out.print(f"Saved remote {name} ({profile.location}) in {path}", highlight=False)


@remotes_app.command("list")
@handled
def remotes_list(as_json: bool = JsonOpt) -> None:
    """List remote profiles."""
    profiles = load_profiles()
    if as_json:
        print_json({"usr_output_version": 1, "data": [{"name": n, **p.as_dict()} for n, p in sorted(profiles.items())]})
        return
    if not profiles:
        out.print(f"No remotes in {remotes_path()}. Add one with `usr remotes add NAME --host H --base-dir D`.", highlight=False)
        return
    for n, p in sorted(profiles.items()):
        out.print(f"{n}\t{p.type}\t{p.destination if p.type == 'ssh' else '-'}\t{p.base_dir}", highlight=False)


@remotes_app.command("show")
@handled
def remotes_show(name: str = typer.Argument(..., help="Profile name (see `usr remotes list`)."), as_json: bool = JsonOpt) -> None:
    """Show one profile: host, user, base_dir and the ssh wiring sync uses."""
    p = get_profile(name)
    if as_json:
        print_json({"usr_output_version": 1, "data": {"name": name, **p.as_dict(), "config_file": str(remotes_path())}})
        return
    rows: list[tuple[str, object]]
    if p.type == "path":
        rows = [("name", name), ("type", "path (a root on a filesystem this machine mounts)"), ("base_dir", p.base_dir),
                ("dataset path", f"{p.base_dir}/<namespace>/<name>"), ("config file", remotes_path())]
    else:
        rows = [("name", name), ("type", "ssh"), ("host", p.host), ("user", p.user or "(ssh default)"), ("port", p.port or "(ssh default)"),
                ("base_dir", p.base_dir), ("identity_file", p.identity_file or "-"), ("ssh_config", p.ssh_config or "-"),
                ("known_hosts", p.known_hosts or "(ssh default)"), ("ssh_options", ", ".join(p.ssh_options) or "-"),
                ("batch_mode", p.batch_mode), ("dataset path", f"{p.destination}:{p.base_dir}/<namespace>/<name>"),
                ("config file", remotes_path())]
    for k, v in rows:
        out.print(f"{k:<14}: {v}", highlight=False)


@remotes_app.command("remove")
@handled
def remotes_remove(name: str = typer.Argument(..., help="Profile name (see `usr remotes list`).")) -> None:
    """Delete a profile."""
    get_profile(name)
    profiles = load_profiles()
    profiles.pop(name)
    save_profiles(profiles)
    out.print(f"Removed remote {name}", highlight=False)


@remotes_app.command("doctor")
@handled
def remotes_doctor(remote: str = typer.Option(..., "--remote", help="Profile name."), as_json: bool = JsonOpt) -> None:
    """Check what sync needs (reachability, authentication, remote tools, base_dir, flock); print a fix per failure."""
    from .doctor import run_doctor

    checks = run_doctor(get_profile(remote))
    if as_json:
        print_json({"usr_output_version": 1, "data": checks})
    else:
        for c in checks:
            mark = "ok" if c["ok"] else ("warn" if c.get("optional") else "FAIL")
            out.print(f"[{mark:>4}] {c['check']}: {c['detail']}" + ("" if c["ok"] or not c.get("fix") else f"\n       fix: {c['fix']}"),
                      highlight=False, markup=False)
    failed = [c for c in checks if not c["ok"] and not c.get("optional")]
    if not as_json:
        out.print("Doctor checks passed." if not failed else f"{len(failed)} check(s) failed.", highlight=False)
    if failed:
        raise typer.Exit(1)

