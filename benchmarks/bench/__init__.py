"""What the benchmarks in benchmarks/ share, and the parts of the throughput benchmark.

    services.py    PostgreSQL and RabbitMQ: where they are, a throw-away schema, removing queues
    measure.py     the machine, the CPU a process used, percentiles, how a figure is printed
    throughput/    the parts of benchmarks/throughput.py (the hub in process, over HTTP, raw pika)

Each benchmark stays one command, `benchmarks/<name>.py`. This package is imported from there (a
script's own directory is first on sys.path); it is not installed with the hub, so that nothing
the hub ships depends on it.
"""
