"""The access matrix, generated from the policy files (contracts/parties.yaml, contracts/flows/*.yaml,
contracts/consultations.yaml, contracts/designations.yaml):
every party × every flow (send), every flow × every recipient × every data category (receive), the
same for every person of the recipient (designated or not, and its back-office system), and every
party × every read endpoint. What the files allow must work; everything else is a 403 (or, for
a flow that is switched off, a 422) with one `rejected` audit event and nothing stored.

The expectations are read from the YAML here, independently of hub/domain/policy.py, so a new flow or
party is covered without touching this file.
"""
from __future__ import annotations

import fnmatch

import yaml
from sqlalchemy import func, select

from hub.domain.projection import redact
from hub.domain.samples import FLOW_SAMPLES, synthetic_application
from hub.infra.store.schema import audit_events, deliveries, messages
from hub.interfaces.cli.demo import DemoClient, procedure
from hub.registry import default_contracts_dir

CONTRACTS = default_contracts_dir()
PARTIES = {p["id"]: p for p in yaml.safe_load((CONTRACTS / "parties.yaml").read_text())["parties"]}
FLOWS = {f["id"]: f for f in (yaml.safe_load(p.read_text()) for p in sorted((CONTRACTS / "flows").glob("*.yaml")))}
GROUNDS = yaml.safe_load((CONTRACTS / "consultations.yaml").read_text())["consultations"]
DESIGNATIONS = yaml.safe_load((CONTRACTS / "designations.yaml").read_text())["designations"]
SPECIAL = {"health", "criminal_record"}
CATEGORIES = ("identification", "contact", "residence_status", "employment", "financial", "health",
              "criminal_record", "administrative", "social_security")


def _matches(party: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(party, p) for p in patterns)


def _rule(flow: dict, party: str) -> set[str] | None:
    for r in flow["recipients"]:
        if fnmatch.fnmatchcase(party, r["party"]):
            return set(r["data_categories"])
    return None


def _recipients(flow: dict, dossier_parties: set[str], sender: str) -> list[str]:
    """Every recipient the flow names, made concrete: the dossier's party where a pattern covers one
    (the competent region), else the first party of the file that matches (e.g. a PES)."""
    chosen = []
    for r in flow["recipients"]:
        matching = [p for p in sorted(dossier_parties) if fnmatch.fnmatchcase(p, r["party"])] or \
                   [p for p in PARTIES if fnmatch.fnmatchcase(p, r["party"])][:1]
        chosen += [p for p in matching if p != sender and p not in chosen]
    return chosen


def _readers(party: str) -> dict[str | None, set[str]]:
    """Who reads a party's deliveries and which special categories each may see (Art. 16–17): its
    back-office system (None), each designated person, and a person designated for nothing."""
    entry = DESIGNATIONS.get(party, {})
    readers: dict[str | None, set[str]] = {None: set(SPECIAL) if entry.get("systems") else set(),
                                           f"{party}.undesignated": set()}
    readers.update({p["person"]: set(p["categories"]) for p in entry.get("persons", [])})
    return readers


def _found(application, contract, row) -> set[str]:
    found = set(contract.categories(row["payload"]))
    for name, part in (row["attachments"] or {}).items():
        found |= set(application.categories(part)) if name == "application" else {"social_security"}
    return found


def _open(flow: dict) -> bool:
    """Enabled, and not waiting for a procedure's start date (Art. 34, 36; none is set in these tests)."""
    return flow.get("enabled", True) and not flow.get("opens_with")


def _counts(hub) -> tuple[int, int]:
    with hub.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(messages)).scalar_one(),
                conn.execute(select(func.count()).select_from(audit_events)
                             .where(audit_events.c.event == "rejected")).scalar_one())


def test_every_party_on_every_flow_may_send_exactly_what_the_files_say(local_hub):
    hub = local_hub.hub
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    dossier = c.apply(synthetic_application(31))            # competent region: Flanders
    # Art. 7, 12: the parties to a dossier's procedure are the portal, DVZ and its competent region,
    # and the platform itself (ONSS, the processor) on the flows that name it as sender
    dossier_parties = {"portal", "dvz", "region.flanders", "onss"}
    checked = 0
    for flow_id, flow in FLOWS.items():
        _, sample = FLOW_SAMPLES[flow_id]
        creates = flow.get("dossier", {}).get("creates", False)
        for party in PARTIES:
            body = {"flow": flow_id, "payload": sample(dossier)}
            if not creates:
                body["dossier_id"] = dossier
                body["recipients"] = _recipients(flow, dossier_parties, party)
            before = _counts(hub)
            r = local_hub.post(party, "/v1/messages", body)
            allowed = _matches(party, flow["senders"]) and (creates or party in dossier_parties)
            if not _open(flow):
                assert r.status_code == 422 and r.json()["error"] in ("flow_disabled", "procedure_not_started"), \
                    (flow_id, party, r.text)
            elif allowed:
                assert r.status_code not in (401, 403), (flow_id, party, r.text)
            else:
                assert r.status_code == 403, (flow_id, party, r.status_code, r.text)
                assert r.json()["error"] in ("sender_not_allowed", "not_party_to_dossier")
            if r.status_code >= 400:
                after = _counts(hub)
                assert after == (before[0], before[1] + 1), (flow_id, party)   # one trace, nothing stored
            checked += 1
    assert checked == len(FLOWS) * len(PARTIES)


def test_every_recipient_gets_only_the_categories_its_rule_names(local_hub):
    hub = local_hub.hub
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    procedure(c)
    with hub.engine.connect() as conn:
        a = conn.execute(select(deliveries.c.dossier_id).where(deliveries.c.flow_id == "single-permit.single-act-notified")
                         ).scalar_one()
    # the flows the procedure does not walk through, sent by an allowed sender
    for flow_id in ("single-permit.withdrawal-to-employment-service", "work-permit.authorisation-to-diplomatic-post"):
        sender, sample = FLOW_SAMPLES[flow_id]
        r = local_hub.post(sender, "/v1/messages", {"flow": flow_id, "dossier_id": a, "payload": sample(a),
                                                       "recipients": _recipients(FLOWS[flow_id], set(), sender)})
        assert r.status_code == 202, r.text
        c._await(flow_id, sender, r.json(), 0.0)
    # the dossier's later life: an appeal on the notified dossier, a reminder, a deemed authorisation
    c.send("dvz", "single-permit.appeal-lodged", FLOW_SAMPLES["single-permit.appeal-lodged"][1](a))
    c.send("dvz", "single-permit.appeal-ended", FLOW_SAMPLES["single-permit.appeal-ended"][1](a))
    c.send("onss", "platform.clock-reminder", FLOW_SAMPLES["platform.clock-reminder"][1](a), ["dvz"])
    blue = c.apply(synthetic_application(32))
    c.send("region.flanders", "single-permit.admissible-to-dvz", FLOW_SAMPLES["single-permit.admissible-to-dvz"][1](blue))
    c.send("onss", "single-permit.deemed-authorisation", FLOW_SAMPLES["single-permit.deemed-authorisation"][1](blue))
    with hub.engine.connect() as conn:
        rows = conn.execute(select(deliveries)).mappings().all()
    application = hub.registry.contracts["application"]
    seen_flows, cells, person_cells, special_seen = set(), 0, 0, set()
    for row in rows:
        flow = FLOWS[row["flow_id"]]
        rule = _rule(flow, row["recipient"])
        assert rule is not None, f"{row['recipient']} received on {row['flow_id']} without a rule"
        contract = hub.registry.contract_for(hub.registry.flow(row["flow_id"]))
        found = _found(application, contract, row)
        for category in CATEGORIES:               # every cell of flow × recipient × category
            if category not in rule:
                assert category not in found, (row["flow_id"], row["recipient"], category)
                assert category not in row["data_categories"], (row["flow_id"], row["recipient"], category)
            cells += 1
        # every person of the recipient × category: special ones only as designated (Art. 16–17)
        for person, designated in _readers(row["recipient"]).items():
            shown, withheld = redact(hub.registry, row, hub.designations.visible(row["recipient"], person))
            seen = _found(application, contract, shown)
            for category in CATEGORIES:
                where = (row["flow_id"], row["recipient"], person, category)
                may = category in rule and (category not in SPECIAL or category in designated)
                if not may:
                    assert category not in seen and category not in shown["data_categories"], where
                elif category in found:
                    assert category in seen and category in shown["data_categories"], where
                    special_seen |= {category} & SPECIAL
                person_cells += 1
            assert withheld == (found & SPECIAL) - designated, (row["flow_id"], row["recipient"], person)
        seen_flows.add(row["flow_id"])
    enabled = {f for f, spec in FLOWS.items() if _open(spec)}
    assert seen_flows == enabled, f"flows never delivered in this test: {sorted(enabled - seen_flows)}"
    assert cells == len(rows) * len(CATEGORIES)
    assert special_seen == SPECIAL and person_cells > cells   # the designated persons were exercised


def test_every_party_on_every_read_endpoint(local_hub):
    hub = local_hub.hub
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    dossier = c.apply(synthetic_application(32))
    with hub.engine.connect() as conn:
        received = {r for (r,) in conn.execute(select(deliveries.c.recipient).where(deliveries.c.dossier_id == dossier))}
    endpoints = {
        "/v1/inbox": lambda p: True,
        "/v1/flows": lambda p: True,
        "/v1/contracts": lambda p: True,
        f"/v1/dossiers/{dossier}": lambda p: p in received,                       # Art. 11: what it was given
        f"/v1/dossiers/{dossier}/enrichment": lambda p: p in ("dvz", "region.flanders"),   # Art. 14
        "/v1/audit/events": lambda p: "security_officer" in PARTIES[p]["roles"],
    }
    for ground in GROUNDS:                                                     # Art. 25, 26
        endpoints[f"/v1/consultations/{ground['id']}/dossiers/{dossier}"] = (
            lambda p, g=ground: _matches(p, g["parties"]) and (g["dossiers"] == "any" or p != "region.flanders"))
    for path, allowed in endpoints.items():
        for party in PARTIES:
            before = local_hub.refused()
            r = local_hub.get(party, path)
            if allowed(party):
                assert r.status_code == 200, (path, party, r.text)
            else:
                assert r.status_code == 403, (path, party, r.status_code)
                assert local_hub.refused() == before + 1, (path, party)
        assert local_hub.http.get(path).status_code == 401              # and nobody anonymous
