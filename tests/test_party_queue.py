"""A party that consumes its own queue gets the same need-to-know projection there as in its inbox."""
from __future__ import annotations

import json
import shutil
import threading

from hub import samples
from hub.bootstrap import build_hub
from hub.flows import default_contracts_dir
from hub.pipeline import Submission, submit
from hub.routing import party_queue
from tests.conftest import hub_settings, shut_down


def test_queue_party_receives_its_projection(tmp_path, broker_url):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    parties = contracts / "parties.yaml"
    text = parties.read_text()
    start = text.index("id: region.flanders")
    cut = text.index("delivery: inbox", start)
    parties.write_text(text[:cut] + "delivery: queue" + text[cut + len("delivery: inbox"):])

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
