"""Batch enrichment, the daily pattern of a protocol agreement (seeds/004): a list of INSZ (with a
date and a postcode) is linked to employment data from Dimona and one result file is written per
competent authority (the region of the postcode, else of the place of work).

Also the follow-up of Art. 10 6°: every holder of an active permit checked against Dimona, listing
those with no running employment for the region that must control them.

The source's bulk consultation is used in chunks, several chunks in flight at once; a naive
one-request-per-person loop is kept beside it for the benchmark.
"""
from __future__ import annotations

import csv
import hashlib
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from hub.audit import AuditEvent, Recorder
from hub.domain.categories import SOCIAL_SECURITY
from hub.domain.parties import PLATFORM
from hub.ports import EnrichmentRecord, Subject
from hub.domain.identifiers import is_valid_insz
from hub.domain.territory import region_of_postcode

OUT_COLUMNS = ("insz", "reference_date", "postcode", "employed", "employer", "nsso_number",
               "joint_committee", "period_id", "period_start", "period_end")
UNASSIGNED = "unassigned"


class BatchInputError(ValueError):
    """The input file is not a list of INSZ; names the line."""


@dataclass(frozen=True)
class Line:
    number: int
    insz: str
    reference_date: date
    postcode: str | None


@dataclass
class BatchResult:
    total: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)    # (line, reason) — no INSZ in it
    per_authority: Counter = field(default_factory=Counter)
    employed: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.total / self.elapsed_s if self.elapsed_s else 0.0


def read_lines(path: Path, today: date) -> tuple[list[Line], list[tuple[int, str]]]:
    """CSV with a column insz (or INSZ alone per line), optional date (YYYY-MM-DD) and postcode."""
    lines, rejected = [], []
    with path.open(newline="", encoding="utf-8-sig") as f:
        first = f.readline()
        header = [h.strip().lower() for h in first.split(",")]
        if "insz" not in header:
            if first.strip() and not first.strip().split(",")[0].isdigit():
                raise BatchInputError(f"line 1: expected a header with a column 'insz', got {first.strip()[:60]!r}")
            f.seek(0)
            header = ["insz", "date", "postcode"]
        reader = csv.reader(f)
        at = {name: header.index(name) for name in ("insz", "date", "postcode") if name in header}
        for number, row in enumerate(reader, start=2 if "insz" in first.lower() else 1):
            if not row or not any(cell.strip() for cell in row):
                continue
            insz = _cell(row, at.get("insz")).replace(".", "").replace("-", "")
            if not is_valid_insz(insz):
                rejected.append((number, "not a valid INSZ"))
                continue
            raw_date = _cell(row, at.get("date"))
            try:
                day = date.fromisoformat(raw_date) if raw_date else today
            except ValueError:
                rejected.append((number, "date is not YYYY-MM-DD"))
                continue
            lines.append(Line(number, insz, day, _cell(row, at.get("postcode")) or None))
    return lines, rejected


def _cell(row: Sequence[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def active_period(record: EnrichmentRecord, day: str) -> dict[str, Any] | None:
    """The Dimona period running on `day` (ISO date; ISO dates compare as strings), if any."""
    for p in record.data.get("periods", []):
        end = p.get("end")
        if p["start"] <= day and (end is None or end >= day):
            return p
    return None


def out_row(line: Line, record: EnrichmentRecord) -> tuple[str, tuple[str, ...]]:
    """(competent authority, result line in the order of OUT_COLUMNS) for one person."""
    day = line.reference_date.isoformat()
    period = active_period(record, day)
    postcode = line.postcode or (period or {}).get("postcode") or ""
    authority = region_of_postcode(postcode) or UNASSIGNED
    if period is None:
        return authority, (line.insz, day, postcode, "no", "", "", "", "", "", "")
    return authority, (line.insz, day, postcode, "yes", period.get("employer", ""), period.get("nsso_number", ""),
                       period.get("joint_committee", ""), period.get("period_id", ""), period.get("start", ""),
                       period.get("end") or "")


class _Writers:
    """One CSV per competent authority, opened on first use."""

    def __init__(self, out_dir: Path, stamp: str):
        self.out_dir, self.stamp = out_dir, stamp
        self.files: dict[str, Any] = {}
        self.writers: dict[str, Any] = {}
        self.paths: dict[str, Path] = {}

    def write(self, authority: str, row: tuple[str, ...]) -> None:
        if authority not in self.writers:
            path = self.out_dir / f"{self.stamp}-{authority}.csv"
            f = path.open("w", newline="", encoding="utf-8")
            self.files[authority], self.paths[authority] = f, path
            self.writers[authority] = csv.writer(f)
            self.writers[authority].writerow(OUT_COLUMNS)
        self.writers[authority].writerow(row)

    def close(self) -> dict[str, Path]:
        for f in self.files.values():
            f.close()
        return self.paths


def enrich_batch(source: Any, lines: Sequence[Line], out_dir: Path, *, legal_context: str, chunk: int = 500,
                 parallel: int = 4, stamp: str | None = None,
                 progress: Callable[[int], None] = lambda n: None) -> BatchResult:
    """Link every line to its Dimona data through the source's bulk consultation, `parallel` chunks
    in flight; results go to one file per competent authority as chunks come back."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = BatchResult(total=len(lines))
    writers = _Writers(out_dir, stamp or datetime.now().strftime("%Y%m%d"))
    started = time.perf_counter()

    def run(part: Sequence[Line]) -> list[tuple[Line, EnrichmentRecord]]:
        subjects = [Subject(insz=l.insz, reference_date=l.reference_date, legal_context=legal_context,
                            ticket=f"batch-{l.number}") for l in part]
        return list(zip(part, source.fetch_many(subjects, running_only=True)))

    try:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="batch") as pool:
            parts: Iterator[Sequence[Line]] = (lines[i:i + chunk] for i in range(0, len(lines), chunk))
            running = set()
            for part in parts:
                running.add(pool.submit(run, part))
                if len(running) >= parallel * 2:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    _collect(finished, writers, result, progress)
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                _collect(finished, writers, result, progress)
    finally:
        result.files = writers.close()
    result.elapsed_s = time.perf_counter() - started
    return result


def _collect(finished: Iterable[Any], writers: _Writers, result: BatchResult,
             progress: Callable[[int], None]) -> None:
    for future in finished:
        pairs = future.result()
        for line, record in pairs:
            authority, row = out_row(line, record)
            writers.write(authority, row)
            result.per_authority[authority] += 1
            result.employed += row[3] == "yes"
        progress(len(pairs))


def naive_loop(source: Any, lines: Sequence[Line], *, legal_context: str) -> tuple[int, float]:
    """The baseline: one request per person, one after the other. Returns (records, seconds)."""
    started = time.perf_counter()
    for l in lines:
        source.fetch(Subject(insz=l.insz, reference_date=l.reference_date, legal_context=legal_context,
                             ticket=f"naive-{l.number}"))
    return len(lines), time.perf_counter() - started


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_files(recorder: Recorder, result: BatchResult, source: str) -> None:
    """One `batch_enriched` audit event per file handed to an authority: counts and the file's hash only."""
    recorder.record([AuditEvent("batch_enriched", actor=PLATFORM, recipient=authority,
                                data_categories=["identification", SOCIAL_SECURITY],
                                reason=f"{result.per_authority[authority]} lines from {source}",
                                payload_hash=file_digest(path))
                     for authority, path in result.files.items()])
