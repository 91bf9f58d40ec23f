#!/usr/bin/env python3
"""Issue 11's Python figure: reports per second from one thread, with
bindings/python (monitor_client) into a real monitor-agent that drains them,
beside Debian's python3-statsd client (statsd.StatsClient, its usual use: one
UDP datagram per call) sending the same reports to a UDP socket another
process drains. Same interpreter, same machine, same run.

  bench/binding_python_bench.py [BUILD_DIR] [REPORTS]    (default build, 500000)
"""
import os
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "bindings", "python", "src"))

import statsd  # noqa: E402  Debian's python3-statsd

from bench_processes import Processes, free_port  # noqa: E402
from monitor_client import Client, Op  # noqa: E402

build = sys.argv[1] if len(sys.argv) > 1 else "build"
reports = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
tmp = tempfile.mkdtemp(prefix="monitor-binding-python.")
processes = Processes("binding_python_bench", tmp)
ring = f"/monitor-binding-python-{os.getpid()}"
try:
    sock = os.path.join(tmp, "agent.sock")
    processes.start([f"{build}/agent/monitor-agent", "--ring", ring, "--socket", sock, "--output", "/dev/null",
                     "--journal", "none", "--spool-dir", os.path.join(tmp, "spool"), "--no-self-metrics"],
                    "agent.log")
    processes.await_true(lambda: os.path.exists(sock), 10, "the agent's socket")
    udp_port = free_port()
    # The peer's receiver: a process of its own draining the UDP socket, as the agent drains ours.
    processes.start([sys.executable, "-c",
                     "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                     f"s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)\ns.bind(('127.0.0.1', {udp_port}))\n"
                     "while True: s.recv(65536)\n"], "udp-sink.log")
    time.sleep(0.3)

    def ours():
        client = Client(socket_path=sock, server_id=7)
        orders = client.attr("Bench.Py", "Orders.Placed", Op.SUM)
        started = time.perf_counter()
        for i in range(reports):
            orders.report(i & 7)
        client.flush()
        elapsed = time.perf_counter() - started
        stats = client.stats()
        client.close()
        return elapsed, stats

    def peer():
        client = statsd.StatsClient("127.0.0.1", udp_port)
        started = time.perf_counter()
        for i in range(reports):
            client.incr("bench.py.orders.placed", i & 7)
        return time.perf_counter() - started

    runs_ours, runs_peer, last_stats = [], [], None
    for _ in range(3):
        elapsed, last_stats = ours()
        runs_ours.append(elapsed)
        runs_peer.append(peer())
    best_ours, best_peer = min(runs_ours), min(runs_peer)
    print(f"{'figure':<62} {'ours':>12} {'peer':>12} {'ratio':>7}")
    print(f"{'Python, one thread: reports/s (best of 3, %d reports)' % reports:<62} "
          f"{reports / best_ours:>12,.0f} {reports / best_peer:>12,.0f} {best_peer / best_ours:>6.2f}x"
          "   (goal >= 2x; peer: python3-statsd StatsClient.incr over UDP)")
    print(f"  ours, last run: {last_stats}")
finally:
    processes.finish(ring)
