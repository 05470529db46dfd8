"""`rollback-bot`: serve, demo, db upgrade, check, deploy, rollback (break-glass) and audit."""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.config import Settings, check_settings, load_environment, settings_from
from bot.core.audit import verify_chain
from bot.core.durations import parse_duration
from bot.core.errors import RollbackError
from bot.policy_file import PolicyFileError, load_policy
from bot.store.db import safe_url

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollback-bot", description=__doc__)
    parser.add_argument("--env-file", default=".env", help="dotenv file to read (default: .env)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server (Socket Mode when SLACK_APP_TOKEN is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)

    demo = sub.add_parser("demo", help="the whole loop offline: alert, card, approve, audit")
    demo.add_argument("--keep", action="store_true", help="keep the demo's database afterwards")

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])

    check = sub.add_parser("check", help="validate environment and policy file")
    check.add_argument("--connect", action="store_true", help="also check each target is reachable")

    rb = sub.add_parser("rollback", help="break-glass rollback when chat is down")
    rb.add_argument("model")
    rb.add_argument("--to", dest="to_version")
    rb.add_argument("--reason", required=True)
    rb.add_argument("--force", action="store_true", help="roll back even during the cooldown")

    dep = sub.add_parser("deploy", help="record a deployment (same as POST /deployments)")
    dep.add_argument("model")
    dep.add_argument("version")
    dep.add_argument("--by", dest="deployed_by")
    dep.add_argument("--source", default="cli")
    dep.add_argument("--stable", action="store_true", help="mark it stable at once (onboarding)")

    audit = sub.add_parser("audit", help="list, verify or export the audit trail")
    audit.add_argument("action", choices=["list", "verify", "export"])
    audit.add_argument("--model")
    audit.add_argument("--since", type=_duration_arg, help="e.g. 7d, 12h (at most 3650d)")
    audit.add_argument("--format", choices=["csv", "json"], default=None)
    audit.add_argument("--limit", type=int, default=None)
    return parser


def _check_deployment(args: argparse.Namespace) -> None:
    """The same bounds as POST /deployments, so a value the database would refuse is a message, not a traceback."""
    from pydantic import ValidationError

    from bot.web.errors import validation_error
    from bot.web.schemas import DeploymentIn

    try:
        DeploymentIn(model=args.model, version=args.version, deployed_by=args.deployed_by, source=args.source,
                     stable=args.stable)
    except ValidationError as exc:
        raise RollbackError(validation_error(exc, where="argument").message) from None


def _duration_arg(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.command == "demo" else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns what matters
    settings = settings_from(load_environment(args.env_file))
    try:
        return int(_dispatch(args, settings))
    except PolicyFileError as exc:
        print("policy file problems:\n" + "\n".join(f"  {p}" for p in exc.problems), file=sys.stderr)
        return EXIT_PROBLEM
    except RollbackError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            print(f"database unreachable at {safe_url(settings.database_url)}: "
                  f"{str(exc.orig).splitlines()[0] if exc.orig else exc}", file=sys.stderr)
            return EXIT_PROBLEM
        raise


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "check":
        return cmd_check(settings, connect=args.connect)
    if command == "db":
        from bot.store.migrate import upgrade

        upgrade(settings.database_url)
        print(f"database at {safe_url(settings.database_url)} is at the newest schema")
        return EXIT_OK
    if command == "serve":
        from bot.server import serve

        return serve(settings, host=args.host, port=args.port)
    if command == "demo":
        from bot.demo import run_demo

        return run_demo(keep=args.keep)
    from bot.bootstrap import build
    from bot.store.migrate import upgrade

    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)
    if command == "audit":  # auditors need no policy file, only the database
        from bot.store.db import make_engine
        from bot.store.repository import SqlStore

        store = SqlStore(make_engine(settings.database_url))
        try:
            return cmd_audit(store, args)
        finally:
            store.engine.dispose()
    container = build(settings)
    try:
        if command == "deploy":
            _check_deployment(args)
            dep = container.service.deploy(args.model, args.version, actor=f"cli:{_os_user()}",
                                           deployed_by=args.deployed_by or f"cli:{_os_user()}",
                                           source=args.source, stable=args.stable)
            print(f"recorded: {dep.model} version {dep.version} deployed at {dep.deployed_at:%Y-%m-%d %H:%M:%S} "
                  f"UTC (deployment #{dep.id}{', stable' if dep.stable_at else ''})")
            return EXIT_OK
        if command == "rollback":
            p = container.service.request_rollback(args.model, actor=f"cli:{_os_user()}", reason=args.reason,
                                                   to_version=args.to_version, execute_now=True,
                                                   force_cooldown=args.force)
            if p.state.value == "succeeded":
                print(f"rolled back {p.model} from {p.from_version} to {p.to_version} (proposal #{p.id}): "
                      f"{p.result}")
                return EXIT_OK
            print(f"rollback of {p.model} {p.state.value} (proposal #{p.id}): {p.error or p.result}",
                  file=sys.stderr)
            return EXIT_PROBLEM
    finally:
        container.close()
    return EXIT_USAGE


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container without a passwd entry
        return "unknown"


def cmd_check(settings: Settings, *, connect: bool) -> int:
    from bot.bootstrap import target_names, target_validators

    problems = [f"environment: {p}" for p in check_settings(settings, command="check")]
    loaded = load_policy(settings.policy_path, target_validators(), target_names())
    problems += [str(p) for p in loaded.problems]
    for note in loaded.notes:
        print(f"note: {note}")
    if loaded.policy:
        for name, mp in sorted(loaded.policy.models.items()):
            print(f"model {name}: target {mp.target}, channel {mp.channel}, auto-rollback at "
                  f"{mp.auto_rollback_severity}, {mp.required_approvals} approval(s), timeout "
                  f"{mp.approval_timeout} → {mp.on_timeout}")
        if connect:
            problems += _check_connections(loaded.policy)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{len(problems)} problem(s) found" if problems else "configuration OK")
    return EXIT_PROBLEM if problems else EXIT_OK


def _check_connections(policy: Any) -> list[str]:
    from bot.bootstrap import remote_targets

    problems = []
    targets = remote_targets()
    for name, mp in sorted(policy.models.items()):
        target = targets.get(mp.target)
        checker = getattr(target, "check_connection", None)
        if mp.target == "local":
            print(f"connect {name}: local target, nothing to reach")
            continue
        if checker is None:
            print(f"connect {name}: target {mp.target} has no connection check")
            continue
        try:
            print(f"connect {name}: {checker(name, mp.target_settings)}")
        except RollbackError as exc:
            problems.append(f"models.{name}.{mp.target}: {exc}")
    return problems


def cmd_audit(store: Any, args: argparse.Namespace) -> int:
    from bot.web.views import audit_json

    if args.action == "verify":
        records = store.audit_records()
        problems = [p.problem for p in verify_chain(records)]
        last_id, last_hash = store.audit_head()
        newest = records[-1] if records else None
        if newest is None and last_id:
            problems.append(f"all {last_id} rows were deleted")
        elif newest is not None and (newest.id != last_id or newest.hash != last_hash):
            problems.append(f"rows after row {newest.id} were deleted (the newest row was {last_id})")
        for problem in problems:
            print(f"TAMPERED: {problem}")
        if problems:
            return EXIT_PROBLEM
        print(f"audit chain intact: {len(records)} rows verified")
        return EXIT_OK
    since = store.clock.now() - args.since if args.since else None
    records = store.audit_records(model=args.model, since=since, limit=args.limit)
    fmt = args.format or ("json" if args.action == "export" else "text")
    if fmt == "json":
        print(json.dumps([audit_json(r) for r in records], indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        fields = ["id", "at", "actor", "action", "model", "proposal_id", "from_version", "to_version", "reason",
                  "inputs", "prev_hash", "hash"]
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        for r in records:
            row = audit_json(r)
            row["inputs"] = json.dumps(row["inputs"], sort_keys=True)
            writer.writerow(row)
        sys.stdout.write(out.getvalue())
    else:
        for r in records:
            versions = f" {r.from_version or '?'}→{r.to_version}" if r.to_version else ""
            pid = f" #{r.proposal_id}" if r.proposal_id else ""
            print(f"{r.at:%Y-%m-%d %H:%M:%S} {r.actor:<22} {r.action:<20} {r.model or '-'}{versions}{pid}"
                  f"  {r.reason or ''}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
