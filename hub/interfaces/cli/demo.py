"""`wib-hub demo`: the combined single-permit procedure end to end, over the real API.

Two synthetic applicants: one goes all the way to the single act, the visa D and the municipality;
the other is refused, and the other authorities learn only that a negative decision was taken.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterator

import httpx
from rich.console import Console
from rich.table import Table

from hub.domain import samples
from hub.infra.settings import Settings
from hub.interfaces.cli.labels import CATEGORY_SHORT

PURPOSES = {
    1: "EU single procedure", 2: "register applications", 3: "exchange between services",
    4: "process residence for work", 5: "communicate with applicant/employer", 6: "follow-up",
    7: "control", 8: "social inspection", 9: "public employment services",
}


@dataclass
class Step:
    flow: str
    sender: str
    recipients: list[str]
    purpose: int
    legal_basis: list[str]
    categories: list[str]
    ms: float


@dataclass
class DemoClient:
    http: httpx.Client
    secrets: dict[str, Any]
    flows: dict[str, Any] = field(default_factory=dict)
    timeline: list[Step] = field(default_factory=list)
    enrichments: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)  # dossier, recipient, records
    _tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, party: str) -> dict[str, str]:
        if party not in self._tokens:
            r = self.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": party,
                                                     "client_secret": self.secrets[party]["secret"]})
            r.raise_for_status()
            self._tokens[party] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[party]}"}

    def load_flows(self) -> None:
        r = self.http.get("/v1/flows", headers=self.headers("dvz"))
        r.raise_for_status()
        self.flows = {f["id"]: f for f in r.json()["flows"]}

    def apply(self, payload: dict[str, Any]) -> str:
        start = time.perf_counter()
        r = self.http.post("/v1/applications", json=payload, headers=self.headers("portal"))
        _expect(r, 202)
        body = r.json()
        self._await("single-permit.application-submitted", "portal", body, start)
        return body["dossier_id"]

    def send(self, sender: str, flow: str, payload: dict[str, Any], recipients: list[str] | None = None) -> list:
        start = time.perf_counter()
        body = {"flow": flow, "payload": payload, "dossier_id": payload.get("dossier_id")}
        if recipients:
            body["recipients"] = recipients
        r = self.http.post("/v1/messages", json=body, headers=self.headers(sender))
        _expect(r, 202)
        return self._await(flow, sender, r.json(), start)

    def _await(self, flow: str, sender: str, accepted: dict[str, Any], start: float) -> list:
        """Wait until every recipient has the message in its inbox, then acknowledge it there."""
        items, categories = [], set()
        for recipient in accepted["recipients"]:
            item = self._pull(recipient, accepted["message_id"])
            categories |= set(item["data_categories"])
            items.append(item)
            if (item.get("attachments") or {}).get("enrichment"):
                self.enrichments.append((item["dossier_id"], recipient, item["attachments"]["enrichment"]))
        ms = (time.perf_counter() - start) * 1000
        f = self.flows[flow]
        self.timeline.append(Step(flow, sender, accepted["recipients"], f["purpose"], f["legal_basis"],
                                  sorted(categories), ms))
        for recipient, item in zip(accepted["recipients"], items):
            _expect(self.http.post(f"/v1/inbox/{item['id']}/ack", headers=self.headers(recipient)), 200)
        return items

    def _pull(self, party: str, message_id: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.http.get("/v1/inbox", headers=self.headers(party))
            _expect(r, 200)
            for item in r.json()["items"]:
                if item["message_id"] == message_id:
                    return item
            time.sleep(0.005)
        raise TimeoutError(f"{party} did not receive {message_id} within {timeout:.0f} s")


def _expect(r: httpx.Response, status: int) -> None:
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path} → {r.status_code}: {r.text[:300]}")


def procedure(c: DemoClient) -> tuple[str, str]:
    """Applicant A: the whole combined procedure. Applicant B: refused (Art. 24): DVZ's refusal
    decides the single permit, the work part is no longer needed, the notice notifies it.
    Returns the two dossier ids."""
    a = c.apply(samples.synthetic_application(1))
    c.send("region.flanders", "single-permit.additional-documents-requested", samples.sample_additional_documents_requested(a))
    c.send("portal", "single-permit.additional-documents", samples.sample_additional_documents(a))
    c.send("region.flanders", "single-permit.admissible-to-dvz", samples.sample_admissibility_decision(a))
    c.send("dvz", "single-permit.residence-decision", samples.sample_residence_decision(a, outcome="granted"))
    c.send("region.flanders", "single-permit.work-decision", samples.sample_work_decision(a, outcome="granted"))
    c.send("dvz", "single-permit.single-act-notified", samples.sample_single_act(a))
    c.send("dvz", "single-permit.authorisation-to-diplomatic-post", samples.sample_authorisation_notice(a, requested_document="visa_d"))
    c.send("dvz", "single-permit.authorisation-to-municipality",
           samples.sample_authorisation_notice(a, requested_document="temporary_residence_document"))

    b = c.apply(samples.synthetic_application(2, "wallonia"))
    c.send("region.wallonia", "single-permit.admissible-to-dvz", samples.sample_admissibility_decision(b, region="region.wallonia"))
    c.send("dvz", "single-permit.residence-decision", samples.sample_residence_decision(b, outcome="refused"))
    c.send("dvz", "single-permit.negative-decision-notice", samples.sample_negative_decision_notice(b),
           recipients=["region.wallonia"])
    return a, b


def blue_card_clock(c: DemoClient) -> dict[str, Any]:
    """Applicant C: an EU Blue Card application declared complete; DVZ's 90-day clock starts
    (contracts/clocks.yaml). Returns the dossier's clocks as DVZ reads them."""
    card = c.apply(samples.synthetic_application(3, "brussels", category="eu_blue_card"))
    c.send("region.brussels", "single-permit.admissible-to-dvz",
           samples.sample_admissibility_decision(card, region="region.brussels"))
    r = c.http.get(f"/v1/dossiers/{card}/clocks", headers=c.headers("dvz"))
    _expect(r, 200)
    return r.json()


def render_clocks(console: Console, view: dict[str, Any]) -> None:
    table = Table(title=f"statutory clocks of dossier …{view['dossier_id'][-6:]} (contracts/clocks.yaml)",
                  caption="articles of the Law of 15 December 1980 · a deadline on a weekend or public "
                          "holiday moves to the next working day")
    for col in ("clock", "holder", "started", "due", "days left", "at expiry", "legal basis"):
        table.add_column(col, no_wrap=col in ("clock", "started", "due"))
    for k in view["clocks"]:
        table.add_row(k["clock"], k["holder"], k["started_at"][:10], k["due_at"][:10], str(k["days_left"]),
                      k["on_expiry"].replace("_", " "),
                      "; ".join(b.replace("Law of 15 December 1980, ", "") for b in k["legal_basis"]))
    console.print(table)


def render_dossiers(console: Console, work: Any, applicants: dict[str, str]) -> None:
    """Where each applicant's dossier ended (hub.domain.dossier): state, outcomes, Art. 27 retention."""
    from sqlalchemy import select

    from hub.infra.store.schema import dossiers
    d = dossiers.c
    with work.reads.connect() as conn:
        rows = {r.id: r for r in conn.execute(
            select(d.id, d.category, d.state, d.residence_outcome, d.work_outcome, d.retain_until)
            .where(d.id.in_(list(applicants.values()))))}
    table = Table(title="the applicants' dossiers (the state machine of hub/domain/dossier.py)",
                  caption="one refusal decides the single permit · retain until: Art. 27 (10 years from "
                          "submission when granted, 5 years from notification of a refusal)")
    for col in ("applicant", "dossier", "category", "state", "residence", "work", "retain until"):
        table.add_column(col)
    for name, dossier_id in applicants.items():
        if (r := rows.get(dossier_id)) is None:
            continue
        table.add_row(name, dossier_id[-6:], r.category, r.state, r.residence_outcome or "—",
                      r.work_outcome or "—", r.retain_until.date().isoformat() if r.retain_until else "—")
    console.print(table)


def render(console: Console, timeline: list[Step]) -> None:
    table = Table(title="combined procedure — who sent what to whom, why, and how fast",
                  caption="why: purpose of Art. 10 · data: categories the recipients received · "
                          "ms: from sending to every recipient's inbox")
    for col, kw in (("#", {"justify": "right"}), ("flow", {}), ("from → to", {}), ("why", {}),
                    ("legal basis", {}), ("data", {}), ("ms", {"justify": "right"})):
        table.add_column(col, **kw)
    for i, s in enumerate(timeline, 1):
        basis = ", ".join(s.legal_basis[:2]) + (" …" if len(s.legal_basis) > 2 else "")
        table.add_row(str(i), s.flow.split(".", 1)[-1], f"{s.sender} → {', '.join(s.recipients)}",
                      f"{s.purpose}° {PURPOSES.get(s.purpose, '')}", basis,
                      ", ".join(CATEGORY_SHORT.get(c, c) for c in s.categories) or "—", f"{s.ms:.1f}")
    console.print(table)


def render_enrichment(console: Console, enrichments: list[tuple[str, str, list[dict[str, Any]]]]) -> None:
    """Art. 14: what the sources added to each forwarded dossier, from which contract, how fast."""
    table = Table(title="enrichment (Art. 14) — added by the hub before the dossier reached DVZ",
                  caption="status: found / no_data (the source has nothing on the person) · sources that do not "
                          "apply (Limosa: not posted; INASTI: not self-employed) are not asked")
    for col, kw in (("dossier", {}), ("to", {}), ("source", {}), ("contract", {}), ("status", {}),
                    ("what", {}), ("ms", {"justify": "right"}), ("retrieved", {})):
        table.add_column(col, **kw)
    for dossier, recipient, records in enrichments:
        for r in records:
            table.add_row(dossier[-6:], recipient, r["source"], f"{r['contract']} {r['contract_version']}",
                          r["status"], _summary(r), f"{r['elapsed_ms']}", r["retrieved_at"][11:23])
    console.print(table)


def _summary(record: dict[str, Any]) -> str:
    data = record.get("data") or {}
    for key, label in (("periods", "Dimona periods"), ("quarters", "DmfA quarters"),
                       ("declarations", "Limosa declarations"), ("career_periods", "self-employed periods")):
        if key in data:
            return f"{len(data[key])} {label}"
    return "—"


@contextmanager
def in_process_hub(settings: Settings) -> Iterator[tuple[str, Settings]]:
    """A whole hub (API + workers) on the settings in effect — the data directory every other command
    reads — on a free local port, for as long as the demo runs. Its data stays."""
    import uvicorn

    from hub.interfaces.api.app import create_app
    from hub.interfaces.api.server import server_config
    from hub.bootstrap import build_hub
    if "HUB_LOG_LEVEL" not in os.environ:   # the hub's info lines would interleave with the demo's tables
        settings = settings.model_copy(update={"log_level": "WARNING"})
    hub = build_hub(settings)
    hub.start_workers()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(server_config(create_app(hub), settings, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", settings
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        hub.close()


def _running(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def run_demo(console: Console, url: str | None) -> int:
    import json

    from hub import audit
    from hub.audit.checkpoints import load_public_key
    from hub.interfaces.cli.options import store
    settings = Settings()
    url = url or (f"http://{settings.host}:{settings.port}" if _running(f"http://{settings.host}:{settings.port}")
                  else None)
    if url is None:
        console.print(f"no hub running: starting one in-process on the data directory {settings.data_dir}",
                      soft_wrap=True, highlight=False, markup=False)
        context = in_process_hub(settings)
    else:
        console.print(f"using the hub at {url}")
        context = nullcontext((url, settings))
    with context as (base, used):
        secrets = json.loads(used.resolved_clients_file().read_text())
        with httpx.Client(base_url=base, timeout=30) as http:
            client = DemoClient(http, secrets)
            client.load_flows()
            a, b = procedure(client)
            clocks = blue_card_clock(client)
        render(console, client.timeline)
        render_enrichment(console, client.enrichments)
        render_clocks(console, clocks)
        applicants = {"A (granted)": a, "B (refused)": b, "C (Blue Card)": clocks["dossier_id"]}
    # after the in-process hub closed (it seals its audit tail on the way out), with its key; a
    # running hub seals every HUB_AUDIT_CHECKPOINT_SECONDS, with a key the demo does not hold
    key_file = used.resolved_audit_key_file()
    key = load_public_key(key_file) if url is None and key_file.exists() else None
    with store(used) as work:
        render_dossiers(console, work, applicants)
        report = audit.verify(work.engine, public_key=key)
    console.print(("[green]" if report.intact else "[red]") + str(report))
    if url is None:
        next_steps(console, used)
    return 0 if report.intact else 1


NEXT = ("wib-hub audit verify", "wib-hub audit tail", "wib-hub stats summary", "wib-hub clocks due --within 90d",
        "wib-hub retention run --dry-run", "wib-hub serve")


def next_steps(console: Console, settings: Settings) -> None:
    """Where the demo's data stays, and what reads it next."""
    console.print(f"the data stays in {settings.data_dir} (HUB_DATA_DIR to choose another); explore it with: "
                  + ", ".join(f"`{c}`" for c in NEXT), soft_wrap=True, highlight=False, markup=False)
