"""The parts of benchmarks/throughput.py (its docstring says what it measures and how).

    core.py        the message, the load, the figures of one run, and the checks after a hub run
    setup.py       the two hub configurations, and `wib-hub` in a process of its own
    in_process.py  the hub in this process (its relay and routers here, or in `wib-hub worker`)
    over_http.py   the hub as `wib-hub serve`, driven through its API (--http)
    raw.py         the raw pika baselines
    tables.py      the tables printed at the end
"""
