"""The record of processing activities (GDPR art. 30), generated from the flow registry.

The registry *is* the protocol agreement (Art. 2 §3, 8 §2): every flow lays down its purpose
(Art. 10), controllers and processor (Art. 7–8), data subjects, data categories (Art. 11–18),
closed list of recipients with what each may receive (Art. 11, 21–26) and retention (Art. 27).
So the record is not written by hand: it is one entry per flow, read from contracts/flows/*.yaml,
and cannot drift from what the hub enforces. One entry per flow rather than per purpose, because
two flows of one purpose differ in recipients and categories, which art. 30 §1 c)–d) asks for.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Iterable

from hub.domain.flows import PURPOSES, Flow, Registry

RETENTION_TEXT = {
    "dossier": ("kept with the dossier (Art. 27): 10 years from submission when residence and work are "
                "granted; 5 years from notification of a refusal, end or withdrawal; at least 1 year after "
                "every action is time-barred and appeals have ended; then deleted automatically (§2)"),
    "transit": "kept only until delivered to and acknowledged by every recipient",
}
TRANSFERS = "none: all parties are Belgian public authorities; no transfer to a third country"
SECURITY = ("OAuth2 client credentials per party, short-lived signed tokens; closed list of senders and "
            "recipients per flow; need-to-know projection per recipient (Art. 11); hash-chained audit trail "
            "of every step and consultation, reviewed by the security officer (Art. 8 §2; GDPR art. 32)")

CSV_FIELDS = ("flow", "title", "purpose", "purpose_text", "legal_basis", "controllers", "processor",
              "data_subjects", "data_categories", "senders", "recipients", "retention", "retention_rule",
              "transfers", "enabled")


@dataclass(frozen=True)
class RegisterEntry:
    flow: str
    title: str
    description: str
    purpose: int
    purpose_text: str
    legal_basis: tuple[str, ...]
    controllers: tuple[str, ...]
    processor: str
    data_subjects: tuple[str, ...]
    data_categories: tuple[str, ...]
    senders: tuple[str, ...]
    recipients: tuple[tuple[str, tuple[str, ...]], ...]   # (party, categories it may receive)
    retention_rule: str
    retention: str
    enabled: bool
    controller_ids: tuple[str, ...] = ()   # the registry's own patterns, for the summary table
    recipient_ids: tuple[str, ...] = ()

    def row(self) -> dict[str, str]:
        """One CSV row; lists are joined with "; ", a recipient reads "party: cat, cat"."""
        return {
            "flow": self.flow, "title": self.title, "purpose": f"Art. 10 {self.purpose}°",
            "purpose_text": self.purpose_text, "legal_basis": "; ".join(self.legal_basis),
            "controllers": "; ".join(self.controllers), "processor": self.processor,
            "data_subjects": "; ".join(self.data_subjects), "data_categories": "; ".join(self.data_categories),
            "senders": "; ".join(self.senders),
            "recipients": "; ".join(f"{p}: {', '.join(c) or 'no personal data'}" for p, c in self.recipients),
            "retention": self.retention, "retention_rule": self.retention_rule, "transfers": TRANSFERS,
            "enabled": "yes" if self.enabled else "no",
        }


def _named(registry: Registry, pattern: str) -> str:
    """A party or a pattern, with the English names of the parties it stands for."""
    ids = registry.parties_matching(pattern)
    names = [registry.parties[i].name["en"] for i in ids]
    if ids == [pattern]:
        return f"{names[0]} ({pattern})"
    return f"{pattern}: " + ", ".join(f"{n} ({i})" for n, i in zip(names, ids))


def entry(registry: Registry, f: Flow) -> RegisterEntry:
    return RegisterEntry(
        flow=f.id, title=f.title, description=f.description, purpose=f.purpose, purpose_text=PURPOSES[f.purpose],
        legal_basis=f.legal_basis, controllers=tuple(_named(registry, c) for c in f.controller),
        processor=_named(registry, f.processor), data_subjects=f.data_subjects,
        data_categories=tuple(sorted(f.data_categories)), senders=tuple(_named(registry, s) for s in f.senders),
        recipients=tuple((_named(registry, r.party), tuple(sorted(r.data_categories))) for r in f.recipients),
        retention_rule=f.retention, retention=RETENTION_TEXT.get(f.retention, f.retention), enabled=f.enabled,
        controller_ids=f.controller, recipient_ids=tuple(r.party for r in f.recipients),
    )


def build_register(registry: Registry) -> list[RegisterEntry]:
    """One entry per flow of the protocol agreement, ordered by purpose then flow id."""
    return sorted((entry(registry, f) for f in registry.flows.values()), key=lambda e: (e.purpose, e.flow))


def to_csv(entries: Iterable[RegisterEntry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for e in entries:
        writer.writerow(e.row())
    return out.getvalue()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(entries: Iterable[RegisterEntry], registry: Registry) -> str:
    """A summary table, then one section per flow with every art. 30 heading."""
    entries = list(entries)
    processors = [p for _, p in sorted(registry.parties.items()) if p.has_role("processor")]
    controllers = [p for _, p in sorted(registry.parties.items()) if p.has_role("controller")]
    lines = [
        "# Record of processing activities (GDPR art. 30)",
        "",
        "Generated from the flow registry: the protocol agreement (Art. 2 §3, 8 §2) as the hub enforces it.",
        "",
        "- **Processor** (Art. 8 §1; GDPR art. 28, 30 §2): "
        + ", ".join(f"{p.name['en']} ({p.id})" for p in processors),
        "- **Joint controllers** (Art. 7; GDPR art. 26): " + ", ".join(f"{p.name['en']} ({p.id})" for p in controllers),
        f"- **Transfers to third countries** (art. 30 §1 e): {TRANSFERS}",
        f"- **Security measures** (art. 30 §1 g, art. 32): {SECURITY}",
        f"- **Flows**: {len(entries)}",
        "",
        "| flow | purpose (Art. 10) | controllers | data subjects | data categories | recipients | retention |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"`{e.flow}`", f"{e.purpose}° {e.purpose_text}", ", ".join(e.controller_ids), ", ".join(e.data_subjects),
            ", ".join(e.data_categories) or "—",
            "; ".join(f"{p} ({', '.join(c) or 'no personal data'})"
                      for p, (_, c) in zip(e.recipient_ids, e.recipients)),
            e.retention_rule)) + " |")
    for e in entries:
        lines += [
            "", f"## {e.flow} — {e.title}", "", e.description, "",
            f"- **Purpose**: Art. 10 {e.purpose}° — {e.purpose_text}",
            f"- **Legal basis**: {'; '.join(e.legal_basis)}",
            f"- **Controllers**: {'; '.join(e.controllers)}",
            f"- **Processor**: {e.processor}",
            f"- **Categories of data subjects**: {', '.join(e.data_subjects)}",
            f"- **Categories of personal data**: {', '.join(e.data_categories) or 'none'}",
            f"- **Senders**: {'; '.join(e.senders)}",
            "- **Recipients** (need to know, Art. 11):",
            *[f"  - {p}: {', '.join(c) or 'no personal data'}" for p, c in e.recipients],
            f"- **Retention**: {e.retention}",
            f"- **Transfers to third countries**: {TRANSFERS}",
            f"- **In force**: {'yes' if e.enabled else 'no (flow switched off)'}",
        ]
    return "\n".join(lines) + "\n"
