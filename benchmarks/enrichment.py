"""Batch enrichment of N INSZ against the Dimona simulator, next to a naive one-request-at-a-time
loop over the same client, in the same run.

    .venv/bin/python benchmarks/enrichment.py [--count 100000] [--naive 2000] [--parallel 4] [--chunk 500]

The simulator runs in its own process (as a real source would); the client side is the code of
`wib-hub enrich-batch`: read the CSV, bulk consultations in chunks with several in flight, one
result file per competent authority. The naive loop asks one person per request over the same
keep-alive client; it runs on the first --naive lines and its rate is extrapolated to --count.
The batch runs twice: in the first pass the simulator makes its synthetic people up as they are
asked for (~50 µs each, a cost a real source does not have); the second pass, the one compared
with the naive loop (which also finds them made), measures the client and the serving alone.
Peak memory is the client process's maximum resident set size.
"""
from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from adapters.oauth import generate_key
from adapters.population import Population
from adapters.simulator import Faults, free_port
from bench.measure import cpu_seconds
from hub.lifecycle.batch import enrich_batch, naive_loop, read_lines
from hub.messaging.resilience import Resilient
from hub.ports import SimulatorConfig, SourceConfig, load_adapters

SOURCE = "onss.dimona"
LEGAL_CONTEXT = "Single-permit cooperation agreement Art. 14 §1"


def _serve(port: int, public_pem: bytes) -> None:
    import uvicorn
    app = load_adapters()[SOURCE].make_simulator(SimulatorConfig(Population(2026), Faults(), {"wib-hub": public_pem}))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def _wait_up(url: str) -> None:
    import httpx
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/_sim/faults", timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("simulator did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--naive", type=int, default=2_000)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=500)
    args = ap.parse_args()

    private, public = generate_key()
    port = free_port()
    server = mp.get_context("spawn").Process(target=_serve, args=(port, public), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url)
        config = SourceConfig(url, timeout_s=30, client_id="wib-hub", private_key_pem=private)
        source = Resilient(load_adapters()[SOURCE].make_enricher(config))
        with tempfile.TemporaryDirectory() as tmp:
            input_file = Path(tmp) / "input.csv"
            t0 = time.perf_counter()
            with input_file.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(("insz", "date", "postcode"))
                w.writerows((insz, date.today().isoformat(), pc) for insz, pc in Population(2026).sample(args.count))
            gen_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            lines, rejected = read_lines(input_file, date.today())
            read_s = time.perf_counter() - t0
            assert not rejected and len(lines) == args.count

            source.fetch_many([])  # token fetched before the clock starts, for both sides alike
            # first pass: the simulator makes its synthetic people up as they are asked for (a cost a
            # real source, whose data exist, does not have); the second pass is the one compared
            cold = enrich_batch(source, lines, Path(tmp) / "cold", legal_context=LEGAL_CONTEXT,
                                chunk=args.chunk, parallel=args.parallel)
            cpu = cpu_seconds(), cpu_seconds(server.pid)
            result = enrich_batch(source, lines, Path(tmp) / "out", legal_context=LEGAL_CONTEXT,
                                  chunk=args.chunk, parallel=args.parallel)
            batch_cpu = cpu_seconds() - cpu[0], cpu_seconds(server.pid) - cpu[1]
            cpu = cpu_seconds(), cpu_seconds(server.pid)
            naive_n, naive_s = naive_loop(source, lines[: args.naive], legal_context=LEGAL_CONTEXT)
            naive_cpu = cpu_seconds() - cpu[0], cpu_seconds(server.pid) - cpu[1]
            files = {a: sum(1 for _ in p.open()) - 1 for a, p in result.files.items()}
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        server.terminate()
        server.join(5)

    naive_rate = naive_n / naive_s
    print(f"machine: {platform.machine()}, {mp.cpu_count()} cores, Python {platform.python_version()}")
    print(f"input: {args.count:,} lines generated in {gen_s:.1f} s, read and checked in {read_s:.2f} s")
    print(f"first pass (simulator making its people up): {cold.total:,} records in {cold.elapsed_s:.2f} s "
          f"= {cold.rate:,.0f} records/s")
    print(f"batch  (bulk {args.chunk}/request, {args.parallel} in flight): {result.total:,} records in "
          f"{result.elapsed_s:.2f} s = {result.rate:,.0f} records/s; {result.employed:,} with a running period")
    print(f"naive  (1 request/record, sequential):  {naive_n:,} records in {naive_s:.2f} s = {naive_rate:,.0f} records/s"
          f" → {args.count / naive_rate:,.0f} s for {args.count:,} (extrapolated)")
    print(f"ratio  batch / naive: {result.rate / naive_rate:.1f}×")
    print(f"CPU µs per record, client + simulator: batch {batch_cpu[0] / result.total * 1e6:.0f} + "
          f"{batch_cpu[1] / result.total * 1e6:.0f}; naive {naive_cpu[0] / naive_n * 1e6:.0f} + "
          f"{naive_cpu[1] / naive_n * 1e6:.0f} (2 cores = {2e6 / result.rate:.0f} core-µs per record available at the batch rate)")
    print("files  per authority: " + ", ".join(f"{a} {n:,}" for a, n in sorted(files.items())))
    print(f"peak memory (client process, max RSS): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
