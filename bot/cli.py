"""`rollback-bot`: serve, demo, db upgrade, check, ready, drill, deploy, rollback (break-glass) and audit."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bot.audit_cli import add_arguments as add_audit_arguments
from bot.audit_cli import cmd_audit
from bot.audit_config import problems as audit_problems
from bot.config import Settings, SettingsError, check_settings, load_settings, reveal
from bot.core.actor import Actor
from bot.core.authorization import undo_approvals
from bot.core.durations import format_duration, parse_duration
from bot.core.errors import RollbackError
from bot.core.policy import no_data_severity
from bot.core.ports import Checkable
from bot.core.requests import RollbackRequest
from bot.core.severity import Severity
from bot.database_health import code_heads, database_problem, is_database_error, reason, sqlite_path
from bot.logging_setup import configure as configure_logging
from bot.policy_file import PolicyFileError, load_policy, severity_tables
from bot.redact import mask_url, redact

if TYPE_CHECKING:
    from bot.bootstrap import Container

log = logging.getLogger(__name__)

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (what was wrong, and where to read more), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def duration_arg(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number from 1 to 999999999")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rollback-bot", description=__doc__)
    parser.add_argument("--env-file", default=None, help="dotenv file to read (default: .env, when present)")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG and show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

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
    dep.add_argument("--override", metavar="REASON",
                     help="deploy a version the bot rolled back anyway (audited, posted in the model's channel)")

    ready = sub.add_parser("ready", help="would a rollback of MODEL work now? exit 0 ready, 1 not ready")
    ready.add_argument("model")
    ready.add_argument("--json", action="store_true", help="print the answer of GET /api/models/MODEL/readiness")

    drill = sub.add_parser("drill", help="rehearse a rollback of MODEL in dry run, each step timed; switches nothing")
    drill.add_argument("model")

    audit = sub.add_parser("audit", help="list, verify or export the audit trail; anchor its head")
    add_audit_arguments(audit, duration=duration_arg, positive=positive_int)  # bot/audit_cli.py

    from bot.report import cli as report_cli  # report hook: `rollback-bot report ID`

    report_cli.add_parser(sub)
    return parser


def _check_deployment(args: argparse.Namespace) -> None:
    """The same bounds as POST /deployments, so a value the database would refuse is a message, not a traceback."""
    from pydantic import ValidationError

    from bot.web.errors import validation_error
    from bot.web.schemas import DeploymentIn

    try:
        DeploymentIn.model_validate({
            "model": args.model, "version": args.version, "deployed_by": args.deployed_by, "source": args.source,
            "stable": args.stable, "override": None if args.override is None else {"reason": args.override}})
    except ValidationError as exc:
        raise RollbackError(validation_error(exc, where="argument").message) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.env_file is not None and not Path(args.env_file).is_file():
        print(f"error: --env-file {args.env_file}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings(args.env_file or ".env")
    except SettingsError as exc:
        print(f"error: environment: {exc}", file=sys.stderr)
        return EXIT_USAGE
    secrets = settings.secret_values()
    level = "DEBUG" if args.debug else ("WARNING" if args.command == "demo" else settings.log_level)
    configure_logging(fmt=settings.log_format, level=level, secrets=secrets)

    def fail(message: str, code: int = EXIT_PROBLEM) -> int:
        print(redact(message, secrets), file=sys.stderr)
        return code

    try:
        return int(_dispatch(args, settings))
    except PolicyFileError as exc:
        return fail("policy file problems:\n" + "\n".join(f"  {p}" for p in exc.problems))
    except RollbackError as exc:
        return fail(f"refused: {exc}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if is_database_error(exc):
            return fail(f"database unreachable at {mask_url(settings.database_url)}: {reason(exc)}")
        from sqlalchemy.exc import ProgrammingError

        if isinstance(exc, ProgrammingError):  # e.g. a table missing: say what the schema lacks
            return fail(f"error: {database_problem(settings.database_url) or reason(exc)}")
        if args.debug:
            log.exception("internal error")
        return fail(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                    "(an internal error; run with --debug for the traceback)")


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "check":
        return cmd_check(settings, connect=args.connect)
    if command == "db":
        return cmd_db_upgrade(settings.database_url)
    if command == "serve":
        from bot.server import serve

        return serve(settings, host=args.host, port=args.port)
    if command == "demo":
        from bot.demo import run_demo

        return run_demo(keep=args.keep)
    if command == "report":  # report hook
        from bot.report import cli as report_cli

        return report_cli.run(args, settings)
    from bot.bootstrap import build
    from bot.store.migrate import upgrade

    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)
    problem = database_problem(settings.database_url)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_PROBLEM
    if command == "audit":  # auditors need no policy file, only the database (bot/audit_cli.py)
        return cmd_audit(settings, args)
    if command == "ready":
        return cmd_ready(settings, args.model, as_json=args.json)
    container = build(settings)
    try:
        if command == "drill":
            return cmd_drill(container, args.model)
        if command == "deploy":
            from bot.core.blocking import Override

            _check_deployment(args)
            dep = container.service.deploy(args.model, args.version, actor=str(Actor.cli_user(_os_user())),
                                           deployed_by=args.deployed_by or str(Actor.cli_user(_os_user())),
                                           source=args.source, stable=args.stable,
                                           override=None if args.override is None else Override(args.override))
            print(f"recorded: {dep.model} version {dep.version} deployed at {dep.deployed_at:%Y-%m-%d %H:%M:%S} "
                  f"UTC (deployment #{dep.id}{', stable' if dep.stable_at else ''}"
                  f"{', blocked version deployed with an override' if args.override is not None else ''})")
            return EXIT_OK
        if command == "rollback":
            p = container.service.request_rollback(RollbackRequest(
                args.model, actor=Actor.cli_user(_os_user()), reason=args.reason,
                to_version=args.to_version, execute_now=True,
                force_cooldown=args.force))
            if p.state.value == "succeeded":
                print(f"rolled back {p.model} from {p.from_version} to {p.to_version} (proposal #{p.id}): "
                      f"{redact(p.result or '', settings.secret_values())}")
                return EXIT_OK
            print(f"rollback of {p.model} {p.state.value} (proposal #{p.id}): "
                  f"{redact(p.error or p.result or '', settings.secret_values())}", file=sys.stderr)
            return EXIT_PROBLEM
    finally:
        container.close()
    return EXIT_USAGE


def cmd_ready(settings: Settings, model: str, *, as_json: bool) -> int:
    """The readiness gate from a shell or CI: one line per check, exit 0 ready, 1 not ready."""
    from bot.bootstrap import build, target_names, target_validators
    from bot.core.readiness import Readiness, invalid_policy
    from bot.readiness_wiring import readiness_check

    loaded = load_policy(settings.policy_path, target_validators(settings.credentials()), target_names())
    if loaded.policy is None or loaded.policy.model(model) is None:
        known = ", ".join(sorted(loaded.policy.models)) if loaded.policy else ""
        problems = [str(p) for p in loaded.problems] or [f"no [models.{model}] in {settings.policy_path} "
                                                         f"(known models: {known or 'none'})"]
        result: Readiness = invalid_policy(model, problems)
    else:
        container = build(settings, policy=loaded.policy)
        try:
            result = readiness_check(container).run(model, loaded.policy.model(model))
        finally:
            container.close()
    secrets = settings.secret_values()
    if as_json:
        import json

        from bot.web.routes.readiness import readiness_json

        print(json.dumps(readiness_json(result, secrets), indent=2))
    else:
        verdict = "ready" if result.ready else f"NOT READY ({', '.join(result.failing)})"
        print(f"{model}: {verdict}")
        for c in result.checks:
            print(redact(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name:<11} {c.detail}", secrets))
    return EXIT_OK if result.ready else EXIT_PROBLEM


def cmd_drill(container: Container, model: str) -> int:
    """A rehearsal from the shell: the steps on stdout, the card and thread in the model's channel."""
    from bot.readiness_wiring import drill

    result = drill(container).run(model, Actor.cli_user(_os_user()))
    secrets = container.settings.secret_values()
    print(f"drill of {model}: {'every step passed' if result.ok else 'FAILED'} in {result.seconds * 1000:.0f} ms "
          "(nothing was switched)")
    for line in result.lines():
        print(redact(f"  {line}", secrets))
    if result.posted_to:
        print(f"the result is posted in {result.posted_to} by the running bot")
    return EXIT_OK if result.ok else EXIT_PROBLEM


def cmd_db_upgrade(url: str) -> int:
    from sqlalchemy.exc import DBAPIError

    from bot.store.db import make_engine
    from bot.store.migrate import upgrade

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            from alembic.runtime.migration import MigrationContext

            before = ", ".join(MigrationContext.configure(conn).get_current_heads()) or "empty"
    except DBAPIError as exc:
        print(f"database unreachable at {mask_url(url)}: {reason(exc)}", file=sys.stderr)
        return EXIT_PROBLEM
    finally:
        engine.dispose()
    upgrade(url)
    after = ", ".join(code_heads(url))
    if before == after:
        print(f"database at {mask_url(url)} is at the newest schema ({after})")
    else:
        print(f"database at {mask_url(url)} upgraded from {before} to {after}; it is at the newest schema")
    return EXIT_OK


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container without a passwd entry
        return "unknown"


def cmd_check(settings: Settings, *, connect: bool) -> int:
    """Everything `serve` would refuse, and everything the policy file gets wrong, each on one line."""
    from bot.bootstrap import target_names, target_validators

    secrets = settings.secret_values()
    problems = [f"environment: {p}" for p in check_settings(settings, command="check")]
    problems += [f"environment: {p}" for p in audit_problems(settings, command="check")]
    database, db_note = _check_database(settings.database_url)
    problems += [f"database: {database}"] if database else []
    if db_note:
        print(f"note: {db_note}")
    credentials = settings.credentials()
    loaded = load_policy(settings.policy_path, target_validators(credentials), target_names())
    problems += [str(p) for p in loaded.problems]
    for note in loaded.notes:
        print(f"note: {note}")
    if loaded.policy:
        for name, mp in sorted(loaded.policy.models.items()):
            auto = ("never (every incident asks)" if mp.auto_rollback_severity is Severity.NEVER
                    else f"at {mp.auto_rollback_severity}")
            canary = (f" (canary abort at {mp.auto_abort_canary_severity})"
                      if mp.auto_abort_canary_severity is not None else "")
            print(f"model {name}: target {mp.target}, channel {mp.channel}, auto-rollback "
                  f"{auto}{canary}, no data reads as {no_data_severity(mp)}, {mp.required_approvals} approval(s) "
                  f"(undo: {undo_approvals(mp)}), timeout "
                  f"{format_duration(mp.approval_timeout)} → {mp.on_timeout}, cooldown "
                  f"{format_duration(mp.cooldown)}, stable after {format_duration(mp.stable_after)}")
        for line in severity_tables(loaded.policy):
            print(f"source {line}")
        if loaded.policy.audit.channel:
            audit = loaded.policy.audit
            print(f"unusual activity: channel {audit.channel}, kinds {', '.join(sorted(audit.enabled)) or 'none'}")
        if connect:
            problems += _check_connections(loaded.policy, credentials, secrets)
    if connect:
        problems += _check_slack(settings)
    for problem in problems:
        print(redact(f"problem: {problem}", secrets), file=sys.stderr)
    print(f"{len(problems)} problem(s) found" if problems else "configuration OK")
    return EXIT_PROBLEM if problems else EXIT_OK


def _check_database(url: str) -> tuple[str | None, str | None]:
    """(problem, note): reachable and current; a SQLite file `serve` will create or upgrade is only a note."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None, f"database {mask_url(url)} does not exist yet; `serve` creates it"
    problem = database_problem(url)
    if path is not None and problem and problem.startswith("schema is"):
        return None, f"database {mask_url(url)}: {problem.split(':')[0]}; `serve` upgrades SQLite by itself"
    return problem, None


def _check_slack(settings: Settings) -> list[str]:
    from bot.slack.wiring import SlackStartError, check_auth

    token = reveal(settings.slack_bot_token)
    if not token:
        return []
    try:
        print(f"connect Slack: {check_auth(token, settings.slack_api_url)}")
    except SlackStartError as exc:
        return [f"slack: {exc}"]
    return []


def _check_connections(policy: Any, credentials: Mapping[str, str], secrets: Sequence[str]) -> list[str]:
    from bot.bootstrap import remote_targets

    problems: list[str] = []
    targets = remote_targets(credentials)
    for name, mp in sorted(policy.models.items()):
        target = targets.get(mp.target)
        if mp.target == "local":
            print(f"connect {name}: local target, nothing to reach")
            continue
        if not isinstance(target, Checkable):
            print(f"connect {name}: target {mp.target} has no connection check")
            continue
        try:
            print(redact(f"connect {name}: {target.check_connection(name, mp.target_settings)}", secrets))
        except RollbackError as exc:
            problems.append(f"models.{name}.{mp.target}: {exc}")
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
