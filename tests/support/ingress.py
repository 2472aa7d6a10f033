"""The AMQP ingress in tests: contracts/ with parties given an ingress queue, and the replies read back."""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from hub.registry import default_contracts_dir

FLOW = "single-permit.application-submitted"


def ingress_contracts(tmp_path: Path, *parties: str) -> Path:
    """A copy of contracts/ where `parties` send on the broker (`ingress: queue`)."""
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    path = contracts / "parties.yaml"
    text = path.read_text()
    for party in parties:
        start = text.index(f"id: {party}\n")
        cut = text.index("delivery: ", start)
        end = text.index("\n", cut)
        text = text[:end] + "\n    ingress: queue" + text[end:]
    path.write_text(text)
    return contracts


def message(i: int, **kw) -> bytes:
    from hub.domain import samples
    body = {"flow": FLOW, "payload": samples.synthetic_application(i), **kw}
    return json.dumps(body).encode()


def take_replies(transport, queue: str, n: int, timeout: float = 30.0) -> list:
    """The first n deliveries on `queue` (acked), in order of arrival."""
    got: list = []
    stop = threading.Event()

    def take(batch):
        got.extend(batch)
        if len(got) >= n:
            stop.set()

    consumer = threading.Thread(target=transport.consume_batch, args=(queue, take), kwargs={"stop": stop},
                                daemon=True)
    consumer.start()
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    consumer.join(10)
    assert len(got) >= n, f"{len(got)} of {n} replies on {queue}"
    return got
