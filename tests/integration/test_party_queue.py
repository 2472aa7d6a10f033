"""A party that consumes its own queue gets the same need-to-know projection there as in its inbox."""
from __future__ import annotations

import json
import shutil
import threading

import yaml

from hub.bootstrap import build_hub
from hub.domain import samples
from hub.messaging.ingress import Submission, submit
from hub.messaging.queues import party_queue
from hub.registry import default_contracts_dir
from tests.support import hub_settings, shut_down


def _queue_delivery(tmp_path, party: str):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    parties = contracts / "parties.yaml"
    text = parties.read_text()
    start = text.index(f"id: {party}\n")
    cut = text.index("delivery: inbox", start)
    parties.write_text(text[:cut] + "delivery: queue" + text[cut + len("delivery: inbox"):])
    return contracts


def _first_on(hub, queue: str, flow: str, timeout: float = 20) -> dict:
    got, stop = [], threading.Event()

    def take(delivery):
        item = json.loads(delivery.body)
        if item["flow"] == flow:
            got.append(item)
            stop.set()

    consumer = threading.Thread(target=hub.transport.consume, args=(queue, take), kwargs={"stop": stop})
    consumer.start()
    consumer.join(timeout=timeout)
    stop.set()
    assert got, f"nothing of {flow} on {queue}"
    return got[0]


def test_queue_party_receives_its_projection(tmp_path, broker_url):
    contracts = _queue_delivery(tmp_path, "region.flanders")
    hub = build_hub(hub_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}", broker_url,
                                 contracts_dir=contracts))
    queue = party_queue("region.flanders", hub.settings.queue_prefix)
    hub.start_workers()
    got, stop = [], threading.Event()

    def take(delivery):
        got.append(delivery)
        stop.set()

    try:
        accepted = submit(hub.ingress, Submission("single-permit.application-submitted", "portal",
                                                  samples.synthetic_application(5)))
        consumer = threading.Thread(target=hub.transport.consume, args=(queue, take), kwargs={"stop": stop})
        consumer.start()
        consumer.join(timeout=15)
        stop.set()
        assert len(got) == 1
        item = json.loads(got[0].body)
        assert got[0].message_id == accepted.message_id
        assert item["flow"] == "single-permit.application-submitted" and item["dossier_id"] == accepted.dossier_id
        assert "medical_documents" not in item["payload"] and "criminal_record_documents" not in item["payload"]
        assert "health" not in item["data_categories"]
    finally:
        hub.transport.delete(queue)
        shut_down(hub)


def test_queue_of_a_party_without_systems_designation_carries_no_special_category(tmp_path, broker_url):
    """Art. 16-17: a queue is read by the party's back-office system, never by a named person; with
    `systems: false` in contracts/designations.yaml the health and criminal-record parts stay out of it
    (a designated person still reads them in the inbox over the API)."""
    contracts = _queue_delivery(tmp_path, "dvz")
    path = contracts / "designations.yaml"
    data = yaml.safe_load(path.read_text())
    data["designations"]["dvz"]["systems"] = False
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    hub = build_hub(hub_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}", broker_url,
                                 contracts_dir=contracts))
    queue = party_queue("dvz", hub.settings.queue_prefix)
    hub.start_workers()
    try:
        accepted = submit(hub.ingress, Submission("single-permit.application-submitted", "portal",
                                                  samples.synthetic_application(6)))
        submit(hub.ingress, Submission("single-permit.admissible-to-dvz", "region.flanders",
                                       samples.sample_admissibility_decision(accepted.dossier_id),
                                       dossier_id=accepted.dossier_id))
        item = _first_on(hub, queue, "single-permit.admissible-to-dvz")
        application = item["attachments"]["application"]
        assert application["worker"]["last_name"]
        assert "medical_documents" not in application and "criminal_record_documents" not in application
        assert not {"health", "criminal_record"} & set(item["data_categories"])
    finally:
        hub.transport.delete(queue)
        shut_down(hub)
