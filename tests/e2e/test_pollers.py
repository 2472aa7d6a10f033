"""DVZ and regional back-office pollers: back office ↔ hub, at least once, no loss, no duplicate.

The hub runs in-process (embedded store and transport, fixture `local_hub`); the back offices are
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
import respx
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.backoffice import DVZ_FLOWS, REGION_FLOWS, contract
from adapters.backoffice.cli import SettingsError, poller_from_env
from adapters.backoffice.client import BackOfficeClient, HubApi, HubRefused, HubUnavailable, event_from_json
from adapters.backoffice.poller import Poller, StateFile, hub_message_id, to_hub_message
from adapters.backoffice.simulator import SIMULATOR_API_KEY, make_back_office, synthetic_event
from hub.ports import SimulatorConfig, SourceConfig, SourceRefused, SourceUnavailable
from adapters.dvz import ADAPTER as DVZ_ADAPTER
from adapters.regions import ADAPTER as REGIONS_ADAPTER
from adapters.simulator import FaultInjector, Faults, serve_in_thread
from hub.domain import samples

FLANDERS = "region.flanders"


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


# ---- contract checks on the wire ----

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


def add_events(url: str, *events: dict) -> list[dict]:
    r = httpx.post(f"{url}/_sim/events", json={"events": list(events)})
    assert r.status_code == 201, r.text
    return r.json()["events"]


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


# ---- end to end ----

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


# ---- conformance ----

@pytest.mark.parametrize("adapter", [DVZ_ADAPTER, REGIONS_ADAPTER], ids=lambda a: a.name)
def test_conformance_passes_against_the_simulator(adapter):
    app = adapter.make_simulator(SimulatorConfig(population=None, faults=Faults()))
    assert isinstance(app, FaultInjector) and adapter.protocol == "REST" and adapter.make_enricher is None
    sim = serve_in_thread(adapter.name, app)
    try:
        party = "dvz" if adapter is DVZ_ADAPTER else FLANDERS
        flow = "single-permit.residence-decision" if party == "dvz" else "single-permit.admissible-to-dvz"
        add_events(sim.url, *[synthetic_event(party, flow, f"WIB-2026-{n:06d}") for n in range(1, 8)])
        checks = adapter.conformance(SourceConfig(url=sim.url))
        assert len(checks) >= 10
        assert [c for c in checks if not c.passed] == []
    finally:
        sim.stop()


def test_conformance_reports_a_wrong_key_and_a_dead_endpoint(monkeypatch):
    sim = serve_in_thread("dvz", make_back_office("dvz", api_key="another-key"))
    try:
        failed = {c.name for c in DVZ_ADAPTER.conformance(SourceConfig(url=sim.url)) if not c.passed}
        assert "events: a page valid against EventPage" in failed and "hub-messages: API key required" not in failed
        monkeypatch.setenv("BACKOFFICE_API_KEY", "another-key")
        assert all(c.passed for c in DVZ_ADAPTER.conformance(SourceConfig(url=sim.url)))
    finally:
        sim.stop()
    dead = DVZ_ADAPTER.conformance(SourceConfig(url=sim.url, timeout_s=0.5))
    assert dead and not any(c.passed for c in dead)


# ---- HTTP edge cases (respx) ----

HUB = "http://hub.test"
OFFICE = "http://office.test"


@respx.mock
def test_hub_api_refreshes_the_token_once_on_401_and_types_its_errors():
    tokens = iter(["t1", "t2"])
    respx.post(f"{HUB}/oauth/token").mock(side_effect=lambda r: httpx.Response(
        200, json={"access_token": next(tokens), "expires_in": 300}))
    send = respx.post(f"{HUB}/v1/messages").mock(side_effect=[
        httpx.Response(401, json={"error": "token_expired"}),
        httpx.Response(202, json={"message_id": "m", "duplicate": False}),
        httpx.Response(409, json={"error": "invalid_transition", "detail": "no"}),
        httpx.Response(503, json={"error": "unavailable"}),
        httpx.TimeoutException("slow"),
        httpx.Response(200, content=b"{not json"),
    ])
    hub = HubApi("dvz", "secret", HUB)
    assert hub.send({"flow": "x.y", "payload": {}})["message_id"] == "m"
    assert [c.request.headers["authorization"] for c in send.calls] == ["Bearer t1", "Bearer t2"]
    with pytest.raises(HubRefused) as refused:
        hub.send({"flow": "x.y", "payload": {}})
    assert refused.value.code == "invalid_transition" and isinstance(refused.value, SourceRefused)
    for _ in range(3):
        with pytest.raises(SourceUnavailable):
            hub.send({"flow": "x.y", "payload": {}})


@respx.mock
def test_hub_api_wrong_secret_is_refused_and_token_endpoint_down_is_transient():
    respx.post(f"{HUB}/oauth/token").mock(side_effect=[
        httpx.Response(401, json={"error": "invalid_client"}), httpx.Response(503)])
    with pytest.raises(HubRefused):
        HubApi("dvz", "wrong", HUB).inbox()
    with pytest.raises(HubUnavailable):
        HubApi("dvz", "secret", HUB).inbox()


@respx.mock
def test_back_office_client_types_errors_and_checks_answers():
    respx.get(f"{OFFICE}/events").mock(side_effect=[
        httpx.Response(200, content=b'{"events": [', headers={"content-type": "application/json"}),
        httpx.Response(200, json={"events": [{"event_id": "e 1"}], "cursor": "1"}),   # breaks the contract
        httpx.Response(503), httpx.Response(401, json={"error": "not_authenticated"}),
        httpx.ConnectError("refused"),
        httpx.Response(400, json={"error": "invalid_cursor"}),
    ])
    client = BackOfficeClient("dvz", OFFICE, "k")
    for _ in range(5):
        with pytest.raises(SourceUnavailable):
            client.events_since(None)
    with pytest.raises(SourceRefused):
        client.events_since("zz")
    with pytest.raises(SourceRefused):                              # an item the contract cannot carry
        client.deliver({"message_id": "m"})


# ---- mapping, state, settings ----

_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                     max_leaves=10)
_events = st.fixed_dictionaries(
    {"event_id": _ids, "flow": st.sampled_from(sorted(DVZ_FLOWS | REGION_FLOWS)), "payload": st.dictionaries(
        st.text(max_size=10), _json, max_size=4), "occurred_at": st.just("2026-02-01T10:00:00+01:00")},
    optional={"dossier_id": st.text(min_size=1, max_size=36), "correlation_id": st.text(max_size=64),
              "recipients": st.lists(st.sampled_from(["dvz", FLANDERS, "portal"]), min_size=1, max_size=3)})


@settings(max_examples=200, deadline=None)
@given(event=_events, party=st.sampled_from(["dvz", *[f"region.{r}" for r in ("flanders", "wallonia")]]))
def test_event_to_hub_message_is_deterministic_lossless_and_a_valid_hub_body(event, party):
    from hub.interfaces.api.authorities import MessageIn
    assert contract.errors("Event", event) == []
    message = to_hub_message(party, event_from_json(event), event.get("recipients"))
    MessageIn.model_validate(message)                               # the hub's own request model
    assert message["message_id"] == to_hub_message(party, event_from_json(event))["message_id"]
    assert message["message_id"] != hub_message_id("other-party", event["event_id"])
    for key in ("flow", "payload", "dossier_id", "correlation_id", "recipients"):
        assert message.get(key) == event.get(key)


@settings(max_examples=50, deadline=None)
@given(cursor=st.none() | _ids, acked=st.none() | _ids)
def test_state_file_round_trips_and_leaves_no_temp_file(tmp_path_factory, cursor, acked):
    d = tmp_path_factory.mktemp("state")
    state = StateFile.open(d, "dvz")
    state.cursor, state.acked = cursor, acked
    state.save()
    again = StateFile.open(d, "dvz")
    assert (again.cursor, again.acked) == (cursor, acked)
    assert [p.name for p in d.iterdir()] == ["dvz.state.json"]


def test_declared_flows_are_those_the_flow_registry_lets_each_party_send():
    from fnmatch import fnmatch
    registry = {}
    for f in (Path(__file__).resolve().parents[2] / "contracts" / "flows").glob("*.yaml"):
        spec = yaml.safe_load(f.read_text())
        registry[spec["id"]] = spec["senders"]

    def sends(party: str) -> set[str]:
        return {flow for flow, senders in registry.items() if any(fnmatch(party, s) for s in senders)}
    assert DVZ_FLOWS == sends("dvz")
    assert REGION_FLOWS == sends(FLANDERS) == sends("region.german-speaking")


def test_poller_settings_from_environment(tmp_path):
    with pytest.raises(SettingsError):
        poller_from_env("dvz", DVZ_FLOWS, {"BACKOFFICE_URL": "http://x", "BACKOFFICE_API_KEY": "k"})
    p = poller_from_env("region.wallonia", REGION_FLOWS, {
        "POLLER_CLIENT_SECRET": "s", "BACKOFFICE_URL": "http://office", "BACKOFFICE_API_KEY": "k",
        "POLLER_STATE_DIR": str(tmp_path), "HUB_URL": "http://hub", "POLLER_INTERVAL_SECONDS": "0.5"})
    assert (p.party, p.hub.client_id, p.interval_s, p.state_dir) == ("region.wallonia", "region.wallonia", 0.5,
                                                                      tmp_path)


def test_contract_components_resolve_and_simulator_answers_follow_them():
    doc = contract.document()
    assert doc["openapi"].startswith("3.1")
    for name in doc["components"]["schemas"]:
        contract.validator(name).check_schema(contract.validator(name).schema)
    with pytest.raises(contract.ContractViolation):
        contract.check("HubMessage", {"message_id": "m"})


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
        assert "sent=1" in done.stdout
        assert json.loads((tmp_path / "cli" / f"{FLANDERS}.state.json").read_text())["cursor"] == "1"
    finally:
        hub_server.stop()
