"""The report as a Markdown document: the file posted in the card's thread, `report --format md`, and the API's
`Accept: text/markdown` answer."""

from __future__ import annotations

import re

from bot.core.report import Report
from bot.report.text import DURATION_LABELS, metric, offset, seconds, traffic_words, value, when

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|])")


def esc(text: object) -> str:
    """Text as literal Markdown: no link, emphasis or table cell can be injected by a label or a reason."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _safe_url(url: str) -> str | None:
    return url if url.startswith(("http://", "https://")) and not any(c in url for c in " <>()\n") else None


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
            *("| " + " | ".join(cells) + " |" for cells in rows)]


def render_markdown(report: Report, page_url: str | None = None) -> str:
    p = report.proposal
    out: list[str] = [f"# Rollback #{p.id}: {esc(p.model)} {esc(p.from_version)} → {esc(p.to_version)}", ""]
    out.append(f"- State: **{p.state.value}**" + (" (dry run)" if p.dry_run else ""))
    traffic = traffic_words(report)
    out.append(f"- Action: **{report.action_words}**" + (f" {esc(traffic.strip())}" if traffic else ""))
    out.append(f"- Decision: **{report.decision}**" + (f" by {esc(report.decided_by)}" if report.decided_by else ""))
    out.append(f"- Reason: {esc(p.reason) or '—'}")
    if report.verification:
        out.append(f"- Verification: {esc(report.verification)}")
    out.append(f"- Report generated {when(report.generated_at)} from the database")
    if page_url:
        out.append(f"- Incident page: <{page_url}>")
    out += ["", "## Timeline", ""]
    out += _table(["time (UTC)", "since deploy", "what", "who", "detail"],
                  [[f"{e.at:%Y-%m-%d %H:%M:%S}", offset(e.offset_s), esc(e.what), esc(e.who or ""),
                    esc(e.detail or "")] for e in report.timeline])
    out += ["", "## Durations", ""]
    out += _table(["measure", "from → to", "duration"],
                  [[label, span, seconds(getattr(report.durations, attr))] for attr, label, span in DURATION_LABELS])
    out += ["", "## Decision and policy", ""]
    out.append(f"Policy values ({report.policy_note}):")
    out.append("")
    for key, v in report.policy.items():
        shown = ", ".join(map(str, v)) if isinstance(v, list) else value(v)
        out.append(f"- {esc(key)}: {esc(shown) or '—'}")
    if report.decisions:
        out += ["", "Decisions by people:", ""]
        for d in report.decisions:
            out.append(f"- {when(d.at)}: {esc(d.user)} {'approved' if d.decision == 'approve' else 'refused'}"
                       + (f" ({esc(d.reason)})" if d.reason else ""))
    out += ["", "## Numbers", ""]
    out += ["What the approvers saw (stored with the proposal):", ""]
    out += [f"- {esc(metric(m))}" for m in report.summary_metrics] or ["- no metric summary was stored"]
    if report.metrics_at_verification:
        out += ["", "At verification:", ""] + [f"- {esc(metric(m))}" for m in report.metrics_at_verification]
    if report.metrics_now is not None:
        out += ["", "Now:", ""] + ([f"- {esc(metric(m))}" for m in report.metrics_now] or ["- no data"])
    out += ["", "## What changed", "", f"Deployment metadata ({esc(p.from_version)} rolled back, "
            f"{esc(p.to_version)} restored):", ""]
    if report.changes.metadata:
        out += _table(["key", "rolled back", "restored", "differs"],
                      [[esc(r.key), esc(value(r.bad)), esc(value(r.restored)), "yes" if r.differs else ""]
                       for r in report.changes.metadata])
    else:
        out.append("No deployment metadata was sent for either version.")
    out += ["", f"Registry runs ({esc(report.changes.runs_note)}):", ""]
    if report.changes.runs:
        out += _table(["kind", "key", "rolled back", "restored", "difference"],
                      [[r.kind, esc(r.key), esc(value(r.bad)), esc(value(r.restored)), f"{r.score:.0%}"]
                       for r in report.changes.runs])
    else:
        out.append("No run differences recorded.")
    out += ["", "## Alerts", ""]
    for a in report.alerts:
        links = " ".join(f"[{esc(k)}]({u})" for k, raw in sorted(a.links.items()) if (u := _safe_url(raw)))
        out.append(f"- {esc(a.name)} ({esc(a.severity)}, {esc(a.source)}): {esc(a.summary)}; started "
                   f"{when(a.starts_at)}, {'resolved ' + when(a.resolved_at) if a.resolved_at else a.status}"
                   + (f" {links}" if links else ""))
    if not report.alerts:
        out.append("No alert is attached to this proposal.")
    if report.charts:
        out += ["", "## Charts", "", "The metric charts are attached in the proposal's Slack thread."]
        for c in report.charts:
            link = _safe_url(c.link or "")
            out.append(f"- {esc(c.name)}: `{c.expr.replace('`', '')}`" + (f" ([graph]({link}))" if link else ""))
    return "\n".join(out) + "\n"
