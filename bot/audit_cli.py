"""`rollback-bot audit list|verify|export|anchor`: what auditors run against the audit table.

Every command reads one snapshot (see bot/store/audit_log.py) and streams: a million rows cost the same
memory as ten. Output never contains a key: only key ids and signatures.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bot.audit_anchors import Anchorer, AnchorLine, iter_anchors, slack_poster
from bot.audit_config import anchor_settings, key_ring, slack_token
from bot.core.audit import AuditKeyError, AuditRecord, ChainWalk, KeyRing, canonical_time, walk_chain
from bot.core.clock import SystemClock
from bot.store.audit_log import AuditLog, Filters, Snapshot

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
FIELDS = ("id", "at", "actor", "action", "model", "proposal_id", "from_version", "to_version", "reason", "inputs",
          "prev_hash", "hash", "key_id")
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "rollback-bot audit export manifest v1"


def add_arguments(audit: argparse.ArgumentParser, *, duration: Callable[[str], timedelta],
                  positive: Callable[[str], int]) -> None:
    """The audit subcommand's options; ``duration`` and ``positive`` are the CLI's own argument checks."""
    audit.add_argument("action", choices=["list", "verify", "export", "anchor"])
    audit.add_argument("--model")
    audit.add_argument("--since", type=duration, help="e.g. 7d, 12h")
    audit.add_argument("--format", choices=["csv", "json", "jsonl"], default=None)
    audit.add_argument("--limit", type=positive, default=None)
    audit.add_argument("--output", "-o", help="export: file to write (jsonl default: audit-<time>.jsonl)")
    audit.add_argument("--against", metavar="EXPORT",
                       help="verify: prove the database still holds every row of this jsonl export")


def export_row(r: AuditRecord) -> dict[str, Any]:
    return {"id": r.id, "at": canonical_time(r.at) + "Z", "actor": r.actor, "action": r.action, "model": r.model,
            "proposal_id": r.proposal_id, "from_version": r.from_version, "to_version": r.to_version,
            "reason": r.reason, "inputs": r.inputs, "prev_hash": r.prev_hash, "hash": r.hash, "key_id": r.key_id}


def _line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cmd_audit(settings: Any, args: argparse.Namespace) -> int:
    from bot.store.db import make_engine

    try:
        ring = key_ring(settings)
        anchor_settings(settings)
    except AuditKeyError as exc:
        print(f"environment: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    engine = make_engine(settings.database_url)
    try:
        audit = AuditLog(engine, ring)
        if args.action == "verify":
            if args.model or args.since:
                print("verify checks the whole chain; --model and --since do not apply", file=sys.stderr)
                return EXIT_USAGE
            return verify(audit, anchor_settings(settings).path, args.against)
        if args.against:
            print("--against: only with `audit verify`", file=sys.stderr)
            return EXIT_USAGE
        if args.action == "anchor":
            return write_anchor(audit, settings)
        filters = Filters(model=args.model, since=_since(args.since), limit=args.limit)
        if args.action == "export":
            return export(audit, filters, args.format or "json", args.output)
        return listing(audit, filters, args.format)
    finally:
        engine.dispose()


def _since(since: timedelta | None) -> datetime | None:
    return SystemClock().now() - since if since else None


# ---- list and export ------------------------------------------------------------------------------------


def listing(audit: AuditLog, filters: Filters, fmt: str | None) -> int:
    if fmt is not None:
        return export(audit, filters, fmt, "-")  # list prints; only export writes a file and its manifest
    with audit.snapshot() as snap:
        for r in snap.rows(filters):
            versions = f" {r.from_version or '?'}→{r.to_version}" if r.to_version else ""
            pid = f" #{r.proposal_id}" if r.proposal_id else ""
            print(f"{r.at:%Y-%m-%d %H:%M:%S} {r.actor:<22} {r.action:<20} {r.model or '-'}{versions}{pid}"
                  f"  {r.reason or ''}")
    return EXIT_OK


def _write_rows(out: IO[str], rows: Iterator[AuditRecord], fmt: str) -> tuple[int, int | None, int | None]:
    count, first, last = 0, None, None
    writer = csv.DictWriter(out, fieldnames=list(FIELDS)) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    elif fmt == "json":
        out.write("[")
    for r in rows:
        row = export_row(r)
        if writer is not None:
            writer.writerow({**row, "inputs": json.dumps(row["inputs"], sort_keys=True)})
        elif fmt == "json":
            out.write(("," if count else "") + "\n  " + json.dumps(row, sort_keys=True, default=str))
        else:
            out.write(_line(row) + "\n")
        count += 1
        first = r.id if first is None else first
        last = r.id
    if fmt == "json":
        out.write("\n]\n" if count else "]\n")
    return count, first, last


def export(audit: AuditLog, filters: Filters, fmt: str, output: str | None) -> int:
    """Stream the rows; for jsonl also write the signed manifest beside the file."""
    if fmt == "jsonl" and output is None:
        output = f"audit-{SystemClock().now():%Y%m%dT%H%M%SZ}.jsonl"
    if output is not None and output != "-" and Path(output).is_dir():
        print(f"--output: {output} is a directory; name a file", file=sys.stderr)
        return EXIT_USAGE
    with audit.snapshot() as snap:
        head_id, head_hash = snap.head()
        if output is None or output == "-":
            _write_rows(sys.stdout, snap.rows(filters), fmt)
            return EXIT_OK
        with open(output, "w", encoding="utf-8", newline="") as fh:
            count, first, last = _write_rows(fh, snap.rows(filters), fmt)
    manifest_path = output + MANIFEST_SUFFIX
    manifest = {
        "format": MANIFEST_FORMAT, "file": Path(output).name, "file_format": fmt, "sha256": _sha256(output),
        "rows": count, "first_id": first, "last_id": last, "head_id": head_id, "head_hash": head_hash,
        "exported_at": canonical_time(SystemClock().now()) + "Z", "key_id": audit.ring.current_id,
        "filters": {"model": filters.model, "since": canonical_time(filters.since) + "Z" if filters.since else None,
                    "limit": filters.limit},
    }
    manifest["signature"] = audit.ring.sign(manifest)
    Path(manifest_path).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    signed = f"signed with key id {audit.ring.current_id}" if manifest["signature"] else \
        "UNSIGNED (AUDIT_HMAC_KEY is not set)"
    print(f"exported {count} rows to {output}; manifest {manifest_path} (chain head #{head_id}, {signed})")
    return EXIT_OK


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---- anchors --------------------------------------------------------------------------------------------


def write_anchor(audit: AuditLog, settings: Any) -> int:
    cfg = anchor_settings(settings)
    if not cfg.enabled:
        print("no anchor destination: set AUDIT_ANCHOR_PATH (a file outside the database) and/or "
              "AUDIT_ANCHOR_CHANNEL", file=sys.stderr)
        return EXIT_USAGE
    post = None
    token = slack_token(settings)
    if cfg.channel and token:
        post = slack_poster(token, settings.slack_api_url, cfg.channel)
    anchor = Anchorer(audit, SystemClock().now, path=cfg.path, post=post).anchor(force=True)
    assert anchor is not None
    where = " and ".join(x for x in (cfg.path, f"Slack channel {cfg.channel}" if post else None) if x)
    print(f"anchored head row #{anchor.head_id} ({anchor.count} rows) to {where}")
    return EXIT_OK


# ---- verify ---------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class AnchorCheck:
    """Merge-join of the anchor file with the rows: both only move forward, so one anchor is held at a time."""

    def __init__(self, path: str | None, ring: KeyRing, verdict: Verdict) -> None:
        self.path = path
        self.verdict = verdict
        self.lines = iter_anchors(path, ring) if path else iter(())
        self.pending: AnchorLine | None = None
        self.newest: AnchorLine | None = None
        self.valid = 0
        self.highest = 0
        self._advance()

    def _advance(self) -> None:
        self.pending = None
        for line in self.lines:
            if line.problem or line.anchor is None:
                self.verdict.problems.append(f"{line.problem} ({self.path}): the anchor file was altered or is "
                                             "not ours")
                continue
            if line.anchor.head_id < self.highest:
                self.verdict.problems.append(f"anchor line {line.line} ({self.path}) records head row "
                                             f"{line.anchor.head_id} after an anchor of row {self.highest}: the "
                                             "chain was cut back and rewritten between the two")
            self.highest = max(self.highest, line.anchor.head_id)
            self.valid += 1
            self.newest = line
            self.pending = line
            return

    def see(self, rec: AuditRecord) -> None:
        while self.pending is not None and self.pending.anchor is not None and self.pending.anchor.head_id <= rec.id:
            a = self.pending.anchor
            if a.head_id == rec.id and a.hash != rec.hash:
                self.verdict.problems.append(f"row {rec.id} differs from anchor line {self.pending.line} ({a.at}): "
                                             "the row was rewritten after it was anchored")
            elif 0 < a.head_id < rec.id:
                self.verdict.problems.append(f"row {a.head_id}, anchored at line {self.pending.line} ({a.at}), "
                                             "is missing")
            self._advance()

    def finish(self, last_id: int) -> None:
        reported = False
        while self.pending is not None and self.pending.anchor is not None:
            a = self.pending.anchor
            if a.head_id > last_id and not reported:
                self.verdict.problems.append(f"rows {last_id + 1}-{a.head_id} were deleted together with the head: "
                                             f"anchor line {self.pending.line} ({a.at}) recorded row {a.head_id}")
                reported = True
            self._advance()


def verify(audit: AuditLog, anchor_path: str | None, against: str | None) -> int:
    verdict = Verdict()
    if not anchor_path:
        verdict.notes.append("no AUDIT_ANCHOR_PATH: deleting the newest rows together with the head row would "
                             "not be detected")
    elif not Path(anchor_path).is_file():
        verdict.notes.append(f"anchor file {anchor_path} does not exist: nothing to check the head against yet")
    export_check = ExportCheck.open(against, audit.ring, verdict) if against else None
    if against and export_check is None:
        _print(verdict, None)
        return EXIT_PROBLEM
    anchors = AnchorCheck(anchor_path, audit.ring, verdict)
    walk = ChainWalk()
    with audit.snapshot() as snap:
        head_id, head_hash = snap.head()
        for rec in walk_chain(snap.rows(), audit.ring, walk):
            anchors.see(rec)
            if export_check is not None:
                export_check.see(rec)
        if export_check is not None:
            export_check.finish(head_id, snap)
    anchors.finish(walk.last_id)
    verdict.problems[:0] = [p.problem for p in walk.problems]
    if walk.rows == 0 and head_id:
        verdict.problems.append(f"all {head_id} rows were deleted")
    elif walk.rows and (walk.last_id != head_id or walk.last_hash != head_hash):
        verdict.problems.append(f"rows after row {walk.last_id} were deleted (the newest row was {head_id})")
    _notes(walk, audit.ring, verdict)
    _print(verdict, (anchor_path, anchors.newest, anchors.valid) if anchor_path else None)
    if verdict.problems:
        return EXIT_PROBLEM
    print(f"audit chain intact: {walk.rows} rows verified" + (f"; export {against} fully present" if against else ""))
    return EXIT_OK


def _notes(walk: ChainWalk, ring: KeyRing, verdict: Verdict) -> None:
    if walk.unkeyed:
        verdict.notes.append(f"{walk.unkeyed} unkeyed (legacy) rows: written before AUDIT_HMAC_KEY was set; "
                             "their SHA-256 can be recomputed by anyone, so only the anchors protect them")
    if walk.keys_used:
        used = ", ".join(f"{k} {n}" for k, n in sorted(walk.keys_used.items()))
        verdict.notes.append(f"keyed rows by key id: {used}")
    if not ring.keyed:
        verdict.notes.append("AUDIT_HMAC_KEY is not set here")


def _print(verdict: Verdict, anchor: tuple[str, AnchorLine | None, int] | None) -> None:
    for note in verdict.notes:
        print(f"note: {note}")
    if anchor is not None:
        path, newest, valid = anchor
        if newest is not None and newest.anchor is not None:
            a = newest.anchor
            state = "signature valid" if newest.problem is None and a.sig else (
                "UNSIGNED" if not a.sig else "signature INVALID")
            print(f"checked against anchor: {path} line {newest.line} (head row #{a.head_id}, {a.at}, key id "
                  f"{a.key_id or '-'}, {state}); {valid} valid anchor(s) in the file")
    for problem in verdict.problems:
        print(f"TAMPERED: {problem}")


class ExportCheck:
    """Merge-join of a jsonl export (in id order) with the database rows, one row of each in memory."""

    def __init__(self, path: str, manifest: dict[str, Any], verdict: Verdict) -> None:
        self.path = path
        self.manifest = manifest
        self.verdict = verdict
        self.fh = open(path, encoding="utf-8")
        self.pending: dict[str, Any] | None = None
        self.matched = 0
        self._advance()

    @classmethod
    def open(cls, path: str, ring: KeyRing, verdict: Verdict) -> ExportCheck | None:
        mpath = Path(path + MANIFEST_SUFFIX)
        if not Path(path).is_file():
            verdict.problems.append(f"--against: {path} is not a file")
            return None
        if not mpath.is_file():
            verdict.problems.append(f"--against: no manifest {mpath} beside the export")
            return None
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
                raise ValueError
        except ValueError:
            verdict.problems.append(f"--against: {mpath} is not an audit export manifest")
            return None
        if manifest.get("file_format") != "jsonl":
            verdict.problems.append("--against: only jsonl exports can be checked; export with --format jsonl")
            return None
        body = {k: v for k, v in manifest.items() if k != "signature"}
        wrong = ring.check(body, manifest.get("key_id"), manifest.get("signature"))
        if wrong and manifest.get("signature"):
            verdict.problems.append(f"--against: {mpath.name}: {wrong}: the manifest was altered after the export")
            return None
        if wrong:
            verdict.notes.append(f"the manifest is unsigned ({wrong}); only its file digest is checked")
        if _sha256(path) != manifest.get("sha256"):
            verdict.problems.append(f"--against: {path} does not match the sha256 in its manifest: the export "
                                    "file was altered after it was written")
            return None
        return cls(path, manifest, verdict)

    def _advance(self) -> None:
        raw = self.fh.readline()
        while raw and not raw.strip():
            raw = self.fh.readline()
        self.pending = json.loads(raw) if raw else None

    def see(self, rec: AuditRecord) -> None:
        if rec.id == self.manifest.get("head_id") and rec.hash != self.manifest.get("head_hash"):
            self.verdict.problems.append(f"row {rec.id} was the chain head at the export with another hash: "
                                         "it was rewritten after the export")
        while self.pending is not None and int(self.pending["id"]) < rec.id:
            self.verdict.problems.append(f"exported row {self.pending['id']} ({self.pending.get('action')}) is "
                                         "no longer in the database: deleted after the export")
            self._advance()
        if self.pending is None or int(self.pending["id"]) != rec.id:
            return
        now = export_row(rec)
        changed = sorted(k for k in set(now) | set(self.pending) if now.get(k) != self.pending.get(k))
        if changed:
            self.verdict.problems.append(f"exported row {rec.id} was changed after the export: "
                                         f"{', '.join(changed)} differ")
        else:
            self.matched += 1
        self._advance()

    def finish(self, head_id: int, snap: Snapshot) -> None:
        while self.pending is not None:
            self.verdict.problems.append(f"exported row {self.pending['id']} ({self.pending.get('action')}) is "
                                         "no longer in the database: deleted after the export")
            self._advance()
        self.fh.close()
        if self.matched != self.manifest.get("rows"):
            self.verdict.notes.append(f"{self.matched} of {self.manifest.get('rows')} exported rows found unchanged")
        exported_head = int(self.manifest.get("head_id") or 0)
        if head_id < exported_head:
            self.verdict.problems.append(f"the chain head is row {head_id} but was row {exported_head} at the "
                                         f"export ({self.manifest.get('exported_at')}): newer rows were deleted")
        else:
            self.verdict.notes.append(f"export of {self.manifest.get('exported_at')}: head then #{exported_head}, "
                                      f"now #{head_id}")
