#!/usr/bin/env python3
"""A web handler's reports, as a Python service writes them. Run beside a
monitor-agent (scripts/demo.sh starts one; MONITOR_SOCKET names its socket):

    MONITOR_SOCKET=.data/demo/agent.sock python3 bindings/python/examples/example.py
"""
import random
import sys
import time

sys.path.insert(0, __file__.rsplit("/examples/", 1)[0] + "/src")  # run from the source tree

from monitor_client import Client, Op, Status  # noqa: E402

client = Client(server_id=7)
orders = client.attr("Shop.Api", "Orders.Placed", Op.SUM)
latency = client.attr("Shop.Api", "Request.LatencyUs", Op.HIST)
for _ in range(10_000):
    started = time.perf_counter()
    # ... handle a request ...
    latency.report((time.perf_counter() - started) * 1e6 + random.randint(100, 900))
    if random.random() < 0.25:
        orders.report(1)
status = client.report("Shop.Api", "Queue.Depth", 7, 12, Op.MAX | Op.MIN)
assert status is Status.OK
client.flush()
print(client.stats())
