"""The back-office contract (backoffice-v1): the pollers' clients, the simulator and the conformance
suite against contracts/backoffice/backoffice-v1.openapi.yaml; the event → hub message mapping, the
poller's state file and settings. (The pollers end to end: tests/e2e/test_pollers.py.)"""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.backoffice import DVZ_FLOWS, REGION_FLOWS, contract
from adapters.backoffice.cli import SettingsError, poller_from_env
from adapters.backoffice.client import (
    BackOfficeClient,
    HubApi,
    HubRefused,
    HubUnavailable,
    event_from_json,
)
from adapters.backoffice.poller import StateFile, hub_message_id, to_hub_message
from adapters.backoffice.simulator import (
    make_back_office,
    synthetic_event,
)
from adapters.dvz import ADAPTER as DVZ_ADAPTER
from adapters.regions import ADAPTER as REGIONS_ADAPTER
from adapters.simulator import FaultInjector, Faults, serve_in_thread
from hub.ports import SimulatorConfig, SourceConfig, SourceRefused, SourceUnavailable
from tests.support.pollers import FLANDERS, add_events


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
        httpx.Response(200, content=b'{"events": [{"event_id": "e1", "flow": "f", "payload": {"pay": NaN}}], '
                                    b'"cursor": "1"}'),                                 # a value the hub does not take
        httpx.Response(200, content=b'{"events": [], "cursor": "1\\u0000"}'),
        httpx.Response(200, json={"events": [{"event_id": "e 1"}], "cursor": "1"}),   # breaks the contract
        httpx.Response(503), httpx.Response(401, json={"error": "not_authenticated"}),
        httpx.ConnectError("refused"),
        httpx.Response(400, json={"error": "invalid_cursor"}),
    ])
    client = BackOfficeClient("dvz", OFFICE, "k")
    for _ in range(7):
        with pytest.raises(SourceUnavailable):
            client.events_since(None)
    with pytest.raises(SourceRefused):
        client.events_since("zz")
    with pytest.raises(SourceRefused):                              # an item the contract cannot carry
        client.deliver({"message_id": "m"})


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


POLLERS = [["adapters.dvz"], ["adapters.regions", "--region", "flanders"]]


@pytest.mark.parametrize("command", POLLERS, ids=lambda c: c[0])
def test_poller_help_lists_every_setting_it_reads(command):
    """Generated from the one declaration: a new field of PollerSettings cannot be missing from --help."""
    import subprocess
    import sys
    from dataclasses import fields

    from adapters.backoffice.settings import PollerSettings, SIMULATOR_API_KEY
    done = subprocess.run([sys.executable, "-m", command[0], "--help"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2], env={**__import__("os").environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ") and line.split()}
    for f in fields(PollerSettings):
        meta = f.metadata
        assert meta["env"] in listed, meta["env"]
        assert meta["help"] in listed[meta["env"]], meta["env"]
        shown = "required" if meta["required"] else str(meta["shown"] or meta["default"])
        assert shown in done.stdout, (meta["env"], shown)
    assert SIMULATOR_API_KEY in done.stdout and "--sandbox" in done.stdout


def test_poller_settings_read_only_what_is_declared():
    """Every environment variable the settings read is a declared field (nothing read on the side)."""
    from dataclasses import fields

    from adapters.backoffice.settings import PollerSettings
    declared = {f.metadata["env"] for f in fields(PollerSettings)}
    read: set[str] = set()

    class Recording(dict):
        def get(self, key, default=None):
            read.add(key)
            return {"POLLER_CLIENT_SECRET": "s", "BACKOFFICE_URL": "http://o", "BACKOFFICE_API_KEY": "k"}.get(key, default)
    PollerSettings.from_env("dvz", Recording())
    assert read == declared


def test_poller_settings_sandbox_defaults(tmp_path):
    import json

    from adapters.backoffice.settings import PollerSettings, SettingsError, SIMULATOR_API_KEY
    (tmp_path / "clients.json").write_text(json.dumps({"dvz": {"secret": "from-file"}, "region.flanders": {}}))
    s = PollerSettings.from_env("dvz", {"HUB_DATA_DIR": str(tmp_path)}, sandbox=True, adapter="dvz.back-office")
    assert (s.backoffice_api_key, s.client_secret) == (SIMULATOR_API_KEY, "from-file")
    assert s.backoffice_url == "http://127.0.0.1:8100"               # dvz.back-office: first in name order
    s = PollerSettings.from_env("dvz", {"HUB_DATA_DIR": str(tmp_path), "POLLER_SANDBOX_PORT": "9000",
                                        "BACKOFFICE_API_KEY": "mine"}, sandbox=True, adapter="dvz.back-office")
    assert (s.backoffice_url, s.backoffice_api_key) == ("http://127.0.0.1:9000", "mine")
    r = PollerSettings.from_env("region.flanders", {"POLLER_CLIENT_SECRET": "x"}, sandbox=True,
                                adapter="regions.back-office")
    assert r.backoffice_url == "http://127.0.0.1:8105"
    with pytest.raises(SettingsError, match="no plain secret"):
        PollerSettings.from_env("region.flanders", {"HUB_DATA_DIR": str(tmp_path)}, sandbox=True,
                                adapter="regions.back-office")
    with pytest.raises(SettingsError, match="BACKOFFICE_API_KEY"):
        PollerSettings.from_env("dvz", {"POLLER_CLIENT_SECRET": "s", "BACKOFFICE_URL": "http://o"})
    with pytest.raises(SettingsError, match="POLLER_PAGE_SIZE"):
        PollerSettings.from_env("dvz", {"POLLER_CLIENT_SECRET": "s", "BACKOFFICE_URL": "http://o",
                                        "BACKOFFICE_API_KEY": "k", "POLLER_PAGE_SIZE": "many"})


def test_pass_table_names_every_count_and_the_refusal_codes():
    from rich.console import Console

    from adapters.backoffice.cli import pass_table
    from adapters.backoffice.poller import PassResult
    result = PassResult(events=3, sent=1, backoffice_acked=3)
    result.refuse("unknown_dossier")
    result.refuse("flow_not_sent_by_party")
    console = Console(width=120, record=True)
    console.print(pass_table("dvz", result))
    text = console.export_text()
    for label in ("events fetched", "submitted to the hub", "refused for good", "acknowledged to the back office",
                  "forwarded to the back office", "acknowledged in the hub", "refused: unknown_dossier",
                  "refused: flow_not_sent_by_party"):
        assert label in text
    assert result.counts()["refusals"] == {"flow_not_sent_by_party": 1, "unknown_dossier": 1}


def test_contract_components_resolve_and_simulator_answers_follow_them():
    doc = contract.document()
    assert doc["openapi"].startswith("3.1")
    for name in doc["components"]["schemas"]:
        contract.validator(name).check_schema(contract.validator(name).schema)
    with pytest.raises(contract.ContractViolation):
        contract.check("HubMessage", {"message_id": "m"})
