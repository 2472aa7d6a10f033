"""DVZ and regional back-office pollers: back office ↔ hub, at least once, no loss, no duplicate.

The hub runs in-process (SQLite store, in-memory transport: fixture `local_hub`); the back offices are
the simulator on real HTTP. Every request the poller sends to a back office and every answer the
simulator gives is checked against contracts/backoffice/backoffice-v1.openapi.yaml.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from adapters.backoffice import DVZ_FLOWS, REGION_FLOWS, contract
from adapters.backoffice.client import (
    BackOfficeClient,
    HubApi,
)
from adapters.backoffice.poller import Poller, hub_message_id
from adapters.backoffice.simulator import (
    SIMULATOR_API_KEY,
    make_back_office,
    synthetic_event,
)
from adapters.simulator import Faults, serve_in_thread
from hub.domain import samples
from tests.support.pollers import FLANDERS, add_events


class Crash(Exception):
    """The poller process dies here."""


def crash_at(point: str, after: int = 1):
    seen = {"n": 0}

    def fault(p: str) -> None:
        if p == point:
            seen["n"] += 1
            if seen["n"] >= after:
                raise Crash(point)
    return fault


class ContractRecorder:
    """httpx event hooks: every request to and answer from a back office, checked against the contract."""

    REQUESTS = {("POST", "/events/ack"): "AckRequest", ("POST", "/hub-messages"): "HubMessage"}
    ANSWERS = {("GET", "/events", 200): "EventPage", ("POST", "/events/ack", 200): "AckResult",
               ("POST", "/hub-messages", 201): "DeliveryResult", ("POST", "/hub-messages", 200): "DeliveryResult"}

    def __init__(self):
        self.checked, self.violations = 0, []

    def request(self, request: httpx.Request) -> None:
        key = (request.method, request.url.path)
        if key == ("GET", "/events"):
            low, high = contract.limit_bounds()
            limit = int(request.url.params.get("limit", "100"))
            after = request.url.params.get("after")
            if not low <= limit <= high or (after is not None and contract.errors("Cursor", after)):
                self.violations.append(f"GET /events {request.url.params}")
        elif key in self.REQUESTS:
            self.violations += contract.errors(self.REQUESTS[key], json.loads(request.content))
        else:
            self.violations.append(f"not in the contract: {key}")
        self.checked += 1

    def response(self, response: httpx.Response) -> None:
        response.read()
        r = response.request
        component = self.ANSWERS.get((r.method, r.url.path, response.status_code)) or (
            "Problem" if response.status_code in (400, 401) else None)
        if component is None:
            self.violations.append(f"{r.method} {r.url.path} → {response.status_code} not in the contract")
        else:
            self.violations += contract.errors(component, response.json())
        self.checked += 1


@pytest.fixture
def wire():
    recorder = ContractRecorder()
    yield recorder
    assert recorder.violations == []


@pytest.fixture
def offices():
    running = {p: serve_in_thread(p, make_back_office(p)) for p in ("dvz", FLANDERS)}
    yield {p: r.url for p, r in running.items()}
    for r in running.values():
        r.stop()


@pytest.fixture
def make_poller(local_hub, offices, wire, tmp_path):
    def make(party: str, fault=None, state_dir: Path | None = None) -> Poller:
        http = httpx.Client(base_url=offices[party], timeout=10,
                            event_hooks={"request": [wire.request], "response": [wire.response]})
        backoffice = BackOfficeClient(party, api_key=SIMULATOR_API_KEY, http=http)
        hub = HubApi(party, local_hub.secrets[party]["secret"], http=local_hub.http)
        return Poller(party, backoffice, hub, state_dir or tmp_path / "state", DVZ_FLOWS if party == "dvz"
                      else REGION_FLOWS, page_size=10, fault=fault or (lambda p: None))
    return make


def received(url: str) -> dict:
    return httpx.get(f"{url}/_sim/received").json()


def apply(hub, serial: int, region: str = "flanders") -> str:
    r = hub.post("portal", "/v1/applications", samples.synthetic_application(serial, region))
    assert r.status_code == 202, r.text
    return r.json()["dossier_id"]


def drain(poller: Poller, url: str, count: int, timeout: float = 15.0) -> list[dict]:
    """Run the poller until its back office holds `count` hub messages (the hub delivers asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poller.run_once()
        got = received(url)["messages"]
        if len(got) >= count:
            return got
        time.sleep(0.02)
    raise AssertionError(f"{poller.party} back office has {len(received(url)['messages'])} of {count}")


def inbox_ids(hub, party: str) -> list[str]:
    return [i["message_id"] for i in hub.get(party, "/v1/inbox").json()["items"]]


def test_events_become_hub_messages_and_deliveries_reach_the_back_office(local_hub, offices, make_poller, wire):
    region, dvz = make_poller(FLANDERS), make_poller("dvz")
    dossier = apply(local_hub, 1)
    got = drain(region, offices[FLANDERS], 1)                       # hub → region back office
    assert got[0]["flow"] == "single-permit.application-submitted" and got[0]["dossier_id"] == dossier

    [event] = add_events(offices[FLANDERS], synthetic_event(FLANDERS, "single-permit.admissible-to-dvz", dossier))
    result = region.run_once()                                      # region back office → hub
    assert (result.events, result.sent, result.rejected) == (1, 1, 0)
    [at_dvz] = drain(dvz, offices["dvz"], 1)                        # hub → DVZ back office
    assert at_dvz["message_id"] == hub_message_id(FLANDERS, event["event_id"])
    assert at_dvz["sender"] == FLANDERS and at_dvz["payload"]["dossier_id"] == dossier

    add_events(offices["dvz"], synthetic_event("dvz", "single-permit.residence-decision", dossier))
    assert dvz.run_once().sent == 1
    got = drain(region, offices[FLANDERS], 2)
    assert [m["flow"] for m in got] == ["single-permit.application-submitted", "single-permit.residence-decision"]
    assert inbox_ids(local_hub, FLANDERS) == [] and inbox_ids(local_hub, "dvz") == []
    state = json.loads((region.state_dir / f"{FLANDERS}.state.json").read_text())
    assert state["cursor"] == state["acked"] == "1"
    assert httpx.get(f"{offices[FLANDERS]}/_sim/events").json()["acked"] == 1
    assert wire.checked > 10


def test_killed_between_hub_and_cursor_restart_neither_loses_nor_duplicates(local_hub, offices, make_poller):
    dossiers = [apply(local_hub, n) for n in (11, 12, 13)]
    events = add_events(offices[FLANDERS], *[synthetic_event(FLANDERS, "single-permit.admissible-to-dvz", d)
                                             for d in dossiers])
    with pytest.raises(Crash):                                      # dies after the 2nd hub post, cursor unsaved
        make_poller(FLANDERS, fault=crash_at("pull.sent", after=2)).run_once()
    assert not (make_poller(FLANDERS).state_dir / f"{FLANDERS}.state.json").exists()

    result = make_poller(FLANDERS).run_once()                       # restarted: same state dir
    assert (result.events, result.duplicates, result.sent) == (3, 2, 1)
    got = drain(make_poller("dvz"), offices["dvz"], 3)
    expected = sorted(hub_message_id(FLANDERS, e["event_id"]) for e in events)
    assert sorted(m["message_id"] for m in got) == expected
    time.sleep(0.3)                                                 # nothing more trickles in
    assert make_poller("dvz").run_once().delivered == 0
    assert len(received(offices["dvz"])["messages"]) == 3


def test_killed_between_cursor_and_ack_restart_acknowledges_without_resending(local_hub, offices, make_poller):
    dossier = apply(local_hub, 21)
    add_events(offices[FLANDERS], synthetic_event(FLANDERS, "single-permit.admissible-to-dvz", dossier))
    with pytest.raises(Crash):
        make_poller(FLANDERS, fault=crash_at("pull.saved")).run_once()
    assert httpx.get(f"{offices[FLANDERS]}/_sim/events").json()["acked"] == 0
    result = make_poller(FLANDERS).run_once()
    assert (result.events, result.sent, result.duplicates) == (0, 0, 0)
    assert httpx.get(f"{offices[FLANDERS]}/_sim/events").json()["acked"] == 1


def test_push_killed_before_hub_ack_restart_delivers_each_once(local_hub, offices, make_poller):
    dossiers = [apply(local_hub, n) for n in (31, 32)]
    for d in dossiers:
        r = local_hub.post(FLANDERS, "/v1/messages", {"flow": "single-permit.admissible-to-dvz", "dossier_id": d,
                                                         "payload": samples.sample_admissibility_decision(d)})
        assert r.status_code == 202, r.text
    deadline = time.monotonic() + 15
    while len(inbox_ids(local_hub, "dvz")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(Crash):                                      # delivered one, not yet acked in the hub
        make_poller("dvz", fault=crash_at("push.delivered")).run_once()
    assert len(inbox_ids(local_hub, "dvz")) == 2
    with pytest.raises(Crash):                                      # delivered both, died before the hub ack
        make_poller("dvz", fault=crash_at("push.delivered", after=2)).run_once()

    result = make_poller("dvz").run_once()
    assert (result.delivered, result.redelivered, result.acked) == (0, 2, 2)
    assert inbox_ids(local_hub, "dvz") == []
    got = received(offices["dvz"])
    assert len(got["messages"]) == 2 and got["attempts"] == 5
    assert sorted(m["dossier_id"] for m in got["messages"]) == sorted(dossiers)


def test_refusals_are_recorded_and_do_not_block(local_hub, offices, make_poller):
    dossier = apply(local_hub, 41)
    add_events(offices[FLANDERS],
               synthetic_event("dvz", "single-permit.residence-decision", dossier),        # not a region flow
               synthetic_event(FLANDERS, "single-permit.admissible-to-dvz", "WIB-2026-999999"),  # unknown dossier
               synthetic_event(FLANDERS, "single-permit.admissible-to-dvz", dossier))
    poller = make_poller(FLANDERS)
    result = poller.run_once()
    assert (result.events, result.rejected, result.sent) == (3, 2, 1)
    rejected = poller.rejected()
    assert [r["id"] for r in rejected] == ["evt-000001", "evt-000002"]
    assert "unknown_dossier" in rejected[1]["reason"]
    assert all("payload" not in r for r in rejected)                # ids and reasons only
    assert poller.state.cursor == "3"


def test_poller_loop_on_a_real_http_hub_backs_off_and_recovers(local_hub, offices, tmp_path):
    from hub.interfaces.api.app import create_app
    hub_server = serve_in_thread("hub", create_app(local_hub.hub))
    dvz_office = serve_in_thread("dvz-faulty", make_back_office("dvz", Faults(down=True)))
    try:
        poller = Poller("dvz", BackOfficeClient("dvz", dvz_office.url, SIMULATOR_API_KEY),
                        HubApi("dvz", local_hub.secrets["dvz"]["secret"], hub_server.url),
                        tmp_path / "loop", DVZ_FLOWS, interval_s=0.05, backoff_base_s=0.01, backoff_cap_s=0.05)
        dossier = apply(local_hub, 51)
        local_hub.post(FLANDERS, "/v1/messages", {"flow": "single-permit.admissible-to-dvz", "dossier_id": dossier,
                                                     "payload": samples.sample_admissibility_decision(dossier)})
        stop = threading.Event()
        thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 15                            # the forwarded dossier is enriched first
        while time.monotonic() < deadline and not inbox_ids(local_hub, "dvz"):
            time.sleep(0.05)
        time.sleep(0.3)                                             # back office down: the loop keeps trying
        assert thread.is_alive() and len(inbox_ids(local_hub, "dvz")) == 1
        dvz_office.injector.faults.update({"down": False})
        add_events(dvz_office.url, synthetic_event("dvz", "single-permit.residence-decision", dossier))
        deadline = time.monotonic() + 15
        def flanders_flows() -> list[str]:
            return [i["flow"] for i in local_hub.get(FLANDERS, "/v1/inbox").json()["items"]]

        while time.monotonic() < deadline and (len(received(dvz_office.url)["messages"]) < 1
                                               or "single-permit.residence-decision" not in flanders_flows()):
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive()
        assert received(dvz_office.url)["messages"][0]["flow"] == "single-permit.admissible-to-dvz"
        assert "single-permit.residence-decision" in flanders_flows()
    finally:
        dvz_office.stop()
        hub_server.stop()


def test_module_entry_runs_one_pass_from_environment(local_hub, offices, tmp_path):
    import os
    import subprocess
    import sys

    from hub.interfaces.api.app import create_app
    hub_server = serve_in_thread("hub", create_app(local_hub.hub))
    try:
        add_events(offices[FLANDERS], synthetic_event(FLANDERS, "single-permit.admissible-to-dvz",
                                                      apply(local_hub, 61)))
        env = {**os.environ, "HUB_URL": hub_server.url, "POLLER_CLIENT_SECRET": local_hub.secrets[FLANDERS]["secret"],
               "BACKOFFICE_URL": offices[FLANDERS], "BACKOFFICE_API_KEY": SIMULATOR_API_KEY,
               "POLLER_STATE_DIR": str(tmp_path / "cli")}
        done = subprocess.run([sys.executable, "-m", "adapters.regions", "--region", "flanders", "--once"], env=env,
                              cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        table = done.stdout                                         # a rich table, not a Python repr
        assert "PassResult(" not in table and "poller pass: region.flanders" in table
        rows = {line.strip("│┃ ").split("│")[0].strip(): line.strip("│┃ ").split("│")[-1].strip()
                for line in table.splitlines() if "│" in line}
        assert rows["events fetched from the back office"] == "1"
        assert rows["submitted to the hub (new messages)"] == "1"
        assert rows["events acknowledged to the back office"] == "1"
        assert rows["refused for good (see <party>.rejected.jsonl)"] == "0"
        lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]   # every log line is JSON
        assert {"poller starting", "event sent", "poller pass"} <= {line["event"] for line in lines}
        assert all(line["level"] and line["timestamp"] for line in lines)
        assert "payload" not in done.stderr
        assert json.loads((tmp_path / "cli" / f"{FLANDERS}.state.json").read_text())["cursor"] == "1"

        dossier = apply(local_hub, 62)                              # --json: the same pass as one object
        add_events(offices[FLANDERS],
                   synthetic_event("dvz", "single-permit.residence-decision", dossier),   # not a region flow
                   synthetic_event(FLANDERS, "single-permit.admissible-to-dvz", dossier))
        done = subprocess.run([sys.executable, "-m", "adapters.regions", "--region", "flanders", "--once", "--json"],
                              env=env, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert (out["party"], out["events"], out["sent"], out["rejected"], out["backoffice_acked"]) == (
            FLANDERS, 2, 1, 1, 2)
        assert out["refusals"] == {"flow_not_sent_by_party": 1} and out["error"] is None
        for key in ("delivered", "redelivered", "acked", "duplicates"):
            assert isinstance(out[key], int)
    finally:
        hub_server.stop()


def test_module_entry_with_sandbox_defaults_and_a_failed_pass(local_hub, tmp_path):
    """--sandbox takes the simulators' key and the party's secret from the hub's clients file; a back office
    that is down is a JSON error line, the table still printed, exit 1."""
    import os
    import subprocess
    import sys

    from hub.interfaces.api.app import create_app
    hub_server = serve_in_thread("hub", create_app(local_hub.hub))
    office = serve_in_thread("dvz-down", make_back_office("dvz", Faults(down=True)))
    try:
        clients = tmp_path / "clients.json"
        clients.write_text(json.dumps({"dvz": {"secret": local_hub.secrets["dvz"]["secret"]}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POLLER_", "BACKOFFICE_"))}
        env.update({"HUB_URL": hub_server.url, "HUB_CLIENTS_FILE": str(clients), "BACKOFFICE_URL": office.url,
                    "POLLER_STATE_DIR": str(tmp_path / "sb")})
        done = subprocess.run([sys.executable, "-m", "adapters.dvz", "--sandbox", "--once", "--json"], env=env,
                              cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        out = json.loads(done.stdout)
        assert out["error"] == "SourceUnavailable" and out["events"] == 0
        lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
        assert any(line["event"] == "poller pass failed" and line["level"] == "error" for line in lines)
        office.injector.faults.update({"down": False})               # the simulator's key was used: 401 otherwise
        done = subprocess.run([sys.executable, "-m", "adapters.dvz", "--sandbox", "--once", "--json"], env=env,
                              cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["error"] is None
    finally:
        office.stop()
        hub_server.stop()
