"""The poller that joins an authority's back office to the hub, at least once in both directions.

pull — back-office events since the persisted cursor become hub messages (`POST /v1/messages`) whose
message id is uuid5(party, event id): sending one again is answered as a duplicate by the hub. Only
when every event of a page is in the hub is the cursor written (temp file + os.replace) and then
acknowledged to the back office.
push — the party's hub inbox is delivered to the back office (`POST /hub-messages`, idempotent on
the hub message id) and only then acknowledged in the hub.

A poller killed at any point and restarted therefore neither loses nor duplicates: whatever it did
after the last durable step is done again, and both ends deduplicate. Refusals that a retry cannot
cure (an event the hub refuses, an inbox item the back office refuses) are written to
`<party>.rejected.jsonl` in the state dir (ids and reasons, no payload) so a person can look,
and the poller moves on.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from adapters.backoffice.client import BackOfficeClient, HubApi, HubRefused, event_from_json
from adapters.backoffice.logs import get_logger, where
from hub.domain.retry import Backoff
from hub.ports import BackOfficeEvent, SourceRefused, SourceUnavailable, utcnow

__all__ = ["Poller", "PassResult", "StateFile", "hub_message_id", "to_hub_message", "EVENT_NAMESPACE"]

log = get_logger("wib_hub.poller")   # JSON lines once adapters.backoffice.logs.configure() ran

# Namespace of the hub message ids derived from back-office event ids (fixed for the life of the hub).
EVENT_NAMESPACE = uuid.UUID("6f1b8f55-2d0c-5b55-9a59-3c1f6a3e1d01")


def hub_message_id(party: str, event_id: str) -> str:
    """The hub message id of a back-office event: the same event always gives the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{party}/{event_id}"))


def to_hub_message(party: str, event: BackOfficeEvent, recipients: list[str] | None = None) -> dict[str, Any]:
    """The body of `POST /v1/messages` for one event (README: API)."""
    message: dict[str, Any] = {"message_id": hub_message_id(party, event.event_id), "flow": event.flow,
                               "payload": event.payload}
    if event.dossier_id is not None:
        message["dossier_id"] = event.dossier_id
    if event.correlation_id is not None:
        message["correlation_id"] = event.correlation_id
    if recipients:
        message["recipients"] = list(recipients)
    return message


@dataclass
class StateFile:
    """The poller's durable state: the back-office cursor it has fully sent, and the one acknowledged."""

    path: Path
    cursor: str | None = None
    acked: str | None = None

    @classmethod
    def open(cls, state_dir: Path, party: str) -> "StateFile":
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / f"{party}.state.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, data.get("cursor"), data.get("acked"))
        return cls(path)

    def save(self) -> None:
        """Atomic: a reader (or a restart) sees the old file or the new one, never half of one."""
        body = json.dumps({"cursor": self.cursor, "acked": self.acked, "saved_at": utcnow().isoformat()})
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        try:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)


@dataclass
class PassResult:
    """What one `run_once` did."""

    events: int = 0          # events read from the back office
    sent: int = 0            # new hub messages
    duplicates: int = 0      # events the hub already had (a restart redoing work)
    rejected: int = 0        # events or deliveries refused for good (see the rejected file)
    delivered: int = 0       # hub inbox items new to the back office
    redelivered: int = 0     # items the back office already had
    acked: int = 0           # hub deliveries acknowledged
    backoffice_acked: int = 0  # back-office events newly acknowledged (cursor moved on)
    refusals: dict[str, int] = field(default_factory=dict)   # refusal code → how many (sums to `rejected`)

    def refuse(self, code: str) -> None:
        self.rejected += 1
        self.refusals[code] = self.refusals.get(code, 0) + 1

    def counts(self) -> dict[str, Any]:
        """The counts as plain JSON values (the `--json` output, the log line of a pass)."""
        return {"events": self.events, "sent": self.sent, "duplicates": self.duplicates,
                "rejected": self.rejected, "refusals": dict(sorted(self.refusals.items())),
                "backoffice_acked": self.backoffice_acked, "delivered": self.delivered,
                "redelivered": self.redelivered, "acked": self.acked}

    @property
    def busy(self) -> bool:
        return bool(self.events or self.delivered or self.redelivered)


@dataclass
class Poller:
    """One back office (party) ↔ the hub. `run_once()` does one pull pass and one push pass."""

    party: str
    backoffice: BackOfficeClient
    hub: HubApi
    state_dir: Path
    flows: frozenset[str]                       # what this back office may send on
    page_size: int = 100
    max_pages: int = 20                         # per pass, so push and pull take turns
    interval_s: float = 2.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    fault: Callable[[str], None] = lambda point: None   # tests: raise here to "kill" the poller
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.state = StateFile.open(self.state_dir, self.party)
        self._skipped: set[int] = set()

    # ---- pull: back office → hub ----

    def pull_once(self, result: PassResult) -> None:
        if self.state.cursor is not None and self.state.acked != self.state.cursor:
            result.backoffice_acked += self._ack_backoffice()   # a previous run stopped between save and ack
        for _ in range(self.max_pages):
            page = self.backoffice.events_page(self.state.cursor, self.page_size)
            events, cursor = page["events"], page["cursor"]
            result.events += len(events)
            for raw in events:
                self._send(event_from_json(raw), raw.get("recipients"), result)
                self.fault("pull.sent")
            if cursor is None or cursor == self.state.cursor:
                return
            self.state.cursor = cursor
            self.state.save()
            self.fault("pull.saved")
            result.backoffice_acked += self._ack_backoffice()
            if len(events) < self.page_size:
                return

    def _send(self, event: BackOfficeEvent, recipients: list[str] | None, result: PassResult) -> None:
        if event.flow not in self.flows:
            self._reject("event", event.event_id, f"{self.party} does not send on {event.flow}", flow=event.flow,
                         code="flow_not_sent_by_party")
            result.refuse("flow_not_sent_by_party")
            return
        message = to_hub_message(self.party, event, recipients)
        try:
            answer = self.hub.send(message)
        except HubRefused as err:
            self._reject("event", event.event_id, f"{err.status} {err.code}", flow=event.flow,
                         message_id=message["message_id"], code=err.code)
            result.refuse(err.code)
            return
        if answer.get("duplicate"):
            result.duplicates += 1
        else:
            result.sent += 1
        log.info("event sent", party=self.party, event_id=event.event_id, message_id=message["message_id"],
                 flow=event.flow, duplicate=bool(answer.get("duplicate")))

    def _ack_backoffice(self) -> int:
        """Acknowledge the saved cursor to the back office; how many events that newly acknowledged."""
        assert self.state.cursor is not None
        newly = self.backoffice.acknowledge(self.state.cursor)
        self.state.acked = self.state.cursor
        self.state.save()
        return int(newly)

    # ---- push: hub → back office ----

    def push_once(self, result: PassResult) -> None:
        after = 0
        for _ in range(self.max_pages):
            items = self.hub.inbox(limit=self.page_size, after=after)
            if not items:
                return
            done: list[int] = []
            for item in items:
                after = max(after, int(item["id"]))
                if item["id"] in self._skipped:
                    continue
                try:
                    new = self.backoffice.deliver(_for_backoffice(item))
                except SourceRefused as err:
                    code = getattr(err, "code", None) or "refused"
                    self._skipped.add(item["id"])
                    self._reject("delivery", str(item["id"]), str(err), flow=item.get("flow"),
                                 message_id=item.get("message_id"), code=code)
                    result.refuse(code)
                    continue
                result.delivered += new
                result.redelivered += not new
                done.append(int(item["id"]))
                self.fault("push.delivered")
            if done:
                answers = self.hub.acknowledge(done)
                result.acked += sum(1 for v in answers.values() if v in ("acknowledged", "already"))
                self.fault("push.acked")
            if len(items) < self.page_size:
                return

    # ---- the loop ----

    def run_once(self, result: PassResult | None = None) -> PassResult:
        """One pull pass and one push pass, counted in `result` (a new one by default); trouble on one
        side does not keep the other from running (the first error is raised after both)."""
        result = result if result is not None else PassResult()
        failed: Exception | None = None
        try:
            self.pull_once(result)
        except (SourceUnavailable, SourceRefused) as err:
            failed = err
        self.push_once(result)
        if failed is not None:
            raise failed
        return result

    @property
    def _backoff(self) -> Backoff:
        return Backoff(base_s=self.backoff_base_s, cap_s=self.backoff_cap_s, jitter=1.0)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: a pass, then wait `interval_s` (no wait while there is work); on
        trouble, wait with full-jitter exponential backoff up to `backoff_cap_s`."""
        failures = 0
        while not stop.is_set():
            try:
                result = self.run_once()
            except (SourceUnavailable, SourceRefused) as err:
                failures += 1
                delay = self._backoff.delay(failures, self.rng)
                log.warning("poller pass failed", party=self.party, error=type(err).__name__,
                            retry_in_s=round(delay, 2))
                stop.wait(delay)
                continue
            except Exception as err:  # noqa: BLE001 - a long-running loop outlives one bad pass
                failures += 1
                log.error("poller pass crashed", party=self.party, error=type(err).__name__, where=where(err))
                stop.wait(self._backoff.ceiling(failures))
                continue
            failures = 0
            if result.busy or result.rejected:
                log.info("poller pass", party=self.party, **result.counts())
            if not result.busy:
                stop.wait(self.interval_s)

    def _reject(self, kind: str, ident: str, reason: str, **ids: Any) -> None:
        line = {"at": utcnow().isoformat(), "kind": kind, "id": ident, "reason": reason, **ids}
        with open(self.state_dir / f"{self.party}.rejected.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        log.error("refused for good", party=self.party, kind=kind, id=ident, code=ids.get("code"),
                  flow=ids.get("flow"), message_id=ids.get("message_id"))

    def rejected(self) -> list[dict[str, Any]]:
        path = self.state_dir / f"{self.party}.rejected.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _for_backoffice(item: dict[str, Any]) -> dict[str, Any]:
    """The inbox item as the back office's HubMessage: only the contract's fields, and `delivered_at`
    with its offset (a hub on SQLite gives naive UTC timestamps; the contract wants RFC 3339)."""
    keep = ("id", "message_id", "flow", "sender", "dossier_id", "correlation_id", "purpose", "data_categories",
            "payload", "delivered_at", "attachments")
    out = {k: item[k] for k in keep if k in item}
    stamp = out.get("delivered_at")
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError:
            return out
        if parsed.tzinfo is None:
            out["delivered_at"] = parsed.replace(tzinfo=timezone.utc).isoformat()
    return out
