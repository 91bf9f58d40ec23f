#!/usr/bin/env python3
"""Issue 10's export figure: how long after a minute is final its points can
be read from VictoriaMetrics, in steady state, through the whole path:

  lines on the agent's socket -> monitor-agent -> Bonnie -> monitor-judger
  (the minute final at its end + grace, stored, queued for export) -> the
  exporter's post -> VictoriaMetrics (Debian's victoria-metrics) -> /api/v1/export.

1000 series (100 servers x 10 attrs) report every second. For each of RUNS
minutes the bench polls VictoriaMetrics every 50 ms for the minute's total of
the last attr, and notes when it appears. Printed beside the floor: the
minute's end plus the judger's grace (7 s), when the minute becomes final;
the goal is <= 5 s after it. The judger's own figure (queued -> delivered,
from /api/health) is printed too.

  bench/export_lag_bench.py [BUILD_DIR] [RUNS]     (default build, 5; about RUNS + 1 minutes)
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from bench_processes import Processes, free_port

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
grace = 7
tmp = tempfile.mkdtemp(prefix="monitor-export-lag.")
processes = Processes("export_lag_bench", tmp)
start, await_true = processes.start, processes.await_true
registry = f"file:{tmp}/registry"
os.makedirs(f"{tmp}/registry")
ring = f"/monitor-export-lag-{os.getpid()}"


def ctl(*args):
    return subprocess.run([f"{build}/console/monitorctl", *args, "--registry", registry],
                          capture_output=True, text=True, check=True).stdout


def get(port, target):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=5) as reply:
        return reply.read().decode()


stop = threading.Event()
try:
    vm_port = free_port()
    start(["/usr/bin/victoria-metrics", f"-storageDataPath={tmp}/vm", f"-httpListenAddr=127.0.0.1:{vm_port}",
           "-retentionPeriod=100y", "-dedup.minScrapeInterval=1s", "-loggerLevel=ERROR"], "victoria-metrics.log")
    await_true(lambda: get(vm_port, "/health") is not None, 30, "victoria-metrics answering")
    judger_port, query_port = free_port(), free_port()
    start([f"{build}/judger/monitor-judger", "--name", "judger-1", "--listen", f"127.0.0.1:{judger_port}",
           "--query-listen", f"127.0.0.1:{query_port}", "--data-dir", os.path.join(tmp, "judger"), "--registry",
           registry, "--grace", str(grace), "--no-self-metrics",
           "--export", f"vm=victoriametrics:http://127.0.0.1:{vm_port}/write"], "judger.log")
    await_true(lambda: " live" in ctl("judger", "list"), 20, "the judger registering")
    ctl("service", "add", "Bench.Export", "--judger", "judger-1")
    for attr in range(10):
        ctl("attr", "add", "Bench.Export", f"Attr.A{attr}")
    start([f"{build}/proxy/monitor-proxy", "--role", "bonnie", "--name", "bonnie-1", "--listen",
           f"127.0.0.1:{free_port()}", "--dc", "dc1", "--registry", registry, "--data-dir",
           os.path.join(tmp, "bonnie"), "--no-self-metrics"], "bonnie.log")
    await_true(lambda: "bonnie-1" in ctl("status"), 20, "Bonnie registering")
    sock_path = os.path.join(tmp, "agent.sock")
    start([f"{build}/agent/monitor-agent", "--ring", ring, "--socket", sock_path, "--output", "none", "--registry",
           registry, "--dc", "dc1", "--spool-dir", os.path.join(tmp, "agent-spool"), "--journal", "none",
           "--no-self-metrics"], "agent.log")
    await_true(lambda: os.path.exists(sock_path), 20, "the agent's socket")

    def report():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        while not stop.is_set():
            now = time.time()
            for attr in range(10):
                lines = "".join(f"Bench.Export Attr.A{attr} {server} {server + attr} SUM 0\n" for server in range(100))
                s.sendto(lines.encode(), sock_path)
            stop.wait(1 - now % 1 + 0.01)

    threading.Thread(target=report, daemon=True).start()
    # The first measured minute is the first whole one after reports began.
    first = (int(time.time()) // 60 + 1) * 60
    print(f"export_lag_bench: 1000 series a second, {runs} minutes from {time.strftime('%H:%M', time.gmtime(first))} "
          f"UTC, judger grace {grace} s; about {(first + 60 * runs + 20 - time.time()) / 60:.0f} minutes", flush=True)
    match = urllib.parse.quote('{__name__="monitor_sum",service="Bench.Export",attr="Attr.A9",server="total"}')

    def exported_minutes():
        out = set()
        for line in get(vm_port, f"/api/v1/export?match[]={match}").splitlines():
            if line:
                out.update(ts // 60000 * 60 for ts in json.loads(line)["timestamps"])
        return out

    lags, delivery = [], []
    for k in range(runs):
        minute = first + 60 * k
        final = minute + 60 + grace
        while time.time() < final - 1:
            time.sleep(0.2)
        end = final + 60
        while minute not in exported_minutes():
            if time.time() > end:
                raise SystemExit(f"export_lag_bench: minute {minute} not in VictoriaMetrics 60 s after it was final "
                                 f"(logs in {tmp})")
            time.sleep(0.05)
        lags.append(time.time() - final)
        health = json.loads(get(query_port, "/api/health"))
        delivery.append(health["export"][0]["last_delivery_ms"] / 1000)
        print(f"  minute {time.strftime('%H:%M', time.gmtime(minute))}: readable in VictoriaMetrics "
              f"{lags[-1]:.2f} s after final (judger: queued -> delivered {delivery[-1]:.3f} s)", flush=True)
    stop.set()
    median = statistics.median(lags)
    print(f"export lag, final minute -> readable in VictoriaMetrics: median {median:.2f} s over {runs} minutes "
          f"(max {max(lags):.2f}); goal <= 5 s")
    print(f"  beside the floor, a minute's end + grace ({60 + grace} s after its start): "
          f"{(60 + grace + median) / (60 + grace):.3f}x the floor; the judger's own share (queued -> delivered) "
          f"median {statistics.median(delivery):.3f} s, the rest is storing the minute and VictoriaMetrics making it "
          f"searchable")
finally:
    stop.set()
    processes.finish(ring)
