#!/usr/bin/env python3
"""Issue 21's figure "host registered -> its metrics queryable": a fresh host
whose agent starts with nothing configured, through the production path

  monitor-agent (host metrics, every second) -> Bonnie (registers Host.System's
  new attrs on first sight, auto_attrs) -> monitor-judger (the minute final
  once the agent's watermark has passed its end, docs/judger.md)

and `monitorctl query --server HOSTNAME` asked every 0.2 s until it answers
the host's first minute. Printed: how long after that minute's end it was
queryable, beside the floor (the agent's late window, 2 s, during which a
second still takes reports) and the judger's fixed grace (7 s) for senders
that send no watermark. Goal: within minute end + the judger's finality.
Each run is a new registry, judger, Bonnie and agent: a host never seen.

  bench/host_registration_bench.py [BUILD_DIR] [RUNS]     (default build, 3; about 1.5 minutes a run)
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from bench_processes import Processes, free_port

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
late_window, grace = 2, 7
host = socket.gethostname()
results = []
for run in range(runs):
    tmp = tempfile.mkdtemp(prefix="monitor-host-registration.")
    processes = Processes("host_registration_bench", tmp)
    registry = f"file:{tmp}/registry"
    os.makedirs(f"{tmp}/registry")
    ring = f"/monitor-host-registration-{os.getpid()}-{run}"

    def ctl(*args, check=True):
        return subprocess.run([f"{build}/console/monitorctl", *args, "--registry", registry],
                              capture_output=True, text=True, check=check)

    try:
        processes.start([f"{build}/judger/monitor-judger", "--name", "judger-1", "--listen",
                         f"127.0.0.1:{free_port()}", "--query-listen", f"127.0.0.1:{free_port()}", "--data-dir",
                         os.path.join(tmp, "judger"), "--registry", registry, "--no-self-metrics", "--no-placement"],
                        "judger.log")
        processes.await_true(lambda: " live" in ctl("judger", "list").stdout, 20, "the judger registering")
        ctl("service", "add", "Host.System", "--auto-attrs", "2000", "--judger", "judger-1")
        processes.start([f"{build}/proxy/monitor-proxy", "--role", "bonnie", "--name", "bonnie-1", "--listen",
                         f"127.0.0.1:{free_port()}", "--dc", "dc1", "--registry", registry, "--data-dir",
                         os.path.join(tmp, "bonnie"), "--no-self-metrics"], "bonnie.log")
        processes.await_true(lambda: "bonnie-1" in ctl("status").stdout, 20, "Bonnie registering")
        # Start a few seconds into a minute, as a host booting at any time would.
        started = time.time()
        processes.start([f"{build}/agent/monitor-agent", "--ring", ring, "--socket", "", "--udp", "none",
                         "--statsd-socket", "none", "--output", "none", "--registry", registry, "--dc", "dc1",
                         "--spool-dir", os.path.join(tmp, "spool"), "--server-id", "7", "--plugin-dir", "none",
                         "--no-self-metrics"], "agent.log")
        answered = {}

        def queryable():
            out = ctl("query", "--service", "Host.System", "--attr", "Mem.TotalBytes", "--op", "LAST", "--server",
                      host, "--from", "-10m", "--output", "json", check=False)
            if out.returncode != 0:
                return False
            points = json.loads(out.stdout)["points"]
            if not points:
                return False
            answered["minute"], answered["at"] = points[0][0], time.time()
            return True

        processes.await_true(queryable, 150, "the host's first minute queryable")
        after_end = answered["at"] - (answered["minute"] + 60)
        results.append(after_end)
        print(f"run {run + 1}: agent started {started % 60:.1f} s into a minute; its first minute queryable "
              f"{after_end:.2f} s after that minute ended ({answered['at'] - started:.1f} s after the agent started)",
              flush=True)
    finally:
        processes.finish(ring)
median = statistics.median(results)
print(f"host registered -> its metrics queryable: median {median:.2f} s after the minute's end, max "
      f"{max(results):.2f} s over {runs} runs")
print(f"  beside the agent's late window, the floor: {late_window} s -> {median / late_window:.2f}x")
print(f"  beside the judger's fixed grace for senders without watermarks: {grace} s -> {median / grace:.2f}x")
