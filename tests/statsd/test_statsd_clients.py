"""Real statsd clients, unchanged, against a real monitor-agent (issue 11):
Debian's python3-statsd (UDP and its Unix stream client), hot-shots from npm
(UDP and uds) and Debian's datadog-go (UDP and unix://), each sending
counters, gauges, timers, histograms, distributions and sets with tags and
sample rates, as their users write them.

The clients sample at random, so a relay in front of each agent socket keeps
what they really sent; the agent's aggregates must equal the mapping of
docs/socket.md applied to exactly that (`expected_from`). Counts use rates of
1/2 and 1/4, whose weights are whole, so the per-second rounding of a sum
cannot hide a difference; the unit tests (tests/unit/statsd_test.cpp) cover
rates like 0.75 and 0.4.

Environment (ctest sets it): MONITOR_AGENT, the agent binary;
STATSD_NODE_MODULES, where `npm ci` put hot-shots; GO_CACHE_DIR.
"""
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python", "tests"))

from test_client import Agent, wait_for  # noqa: E402  (the binding tests' agent harness)


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Relay:
    """Forwards what a client sends to the agent, keeping every payload with the
    second it arrived in. kind: udp, unixgram or unixstream."""

    def __init__(self, kind, listen, target):
        self.kind, self.target, self.payloads, self.lock = kind, target, [], threading.Lock()
        family = socket.AF_INET if kind == "udp" else socket.AF_UNIX
        sock_type = socket.SOCK_STREAM if kind == "unixstream" else socket.SOCK_DGRAM
        self.sock = socket.socket(family, sock_type)
        self.sock.bind(listen)
        self.out = socket.socket(family, socket.SOCK_DGRAM) if kind != "unixstream" else None
        if kind == "unixstream":
            self.sock.listen(8)
        self.address = self.sock.getsockname()
        self.closed = False
        self.connections_done = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _keep(self, data):
        with self.lock:
            self.payloads.append((int(time.time()), data))

    def _serve(self):
        while not self.closed:
            try:
                if self.kind == "unixstream":
                    conn, _ = self.sock.accept()
                    threading.Thread(target=self._pipe, args=(conn,), daemon=True).start()
                    continue
                data = self.sock.recv(65536)
            except OSError:
                return
            self._keep(data)
            self.out.sendto(data, self.target)

    def _pipe(self, conn):
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.target)
        pending = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            upstream.sendall(data)
            pending += data
            cut = pending.rfind(b"\n")
            if cut >= 0:
                self._keep(pending[:cut + 1])
                pending = pending[cut + 1:]
        if pending:
            self._keep(pending)
        upstream.close()
        conn.close()
        with self.lock:
            self.connections_done += 1

    def lines(self):
        """(second, line, payload) for every line sent; payload numbers the
        datagram or stream read it came in (across relays: id of the relay)."""
        with self.lock:
            return [(second, line, (id(self), n)) for n, (second, data) in enumerate(self.payloads)
                    for line in data.decode().split("\n") if line]

    def close(self):
        self.closed = True
        self.sock.close()


def transform(text, prefix="Statsd"):
    """docs/socket.md, "Names": the agent's transform, for the oracle."""
    segments = []
    for seg in text.split("."):
        out, word_start = "", True
        for c in seg:
            if not (c.isascii() and c.isalnum()):
                word_start = True
                continue
            if not out and c.isdigit():
                out = "N"
            out += c.upper() if word_start and "a" <= c <= "z" else c
            word_start = False
        if out:
            segments.append(out)
    if len(segments) == 1:
        segments.insert(0, prefix)
    return ".".join(segments)


def map_name(name, tags, config):
    for rule in config.get("rules", []):
        pattern = "^" + re.escape(rule["match"]).replace(r"\*", "([^.]+)") + "$"
        m = re.match(pattern, name)
        if m:
            sub = lambda t: re.sub(r"\$(\d)", lambda g: m.group(int(g.group(1))), t)  # noqa: E731
            return transform(sub(rule["service"])), transform(sub(rule["attr"]))
    if "service" in tags:
        return transform(tags["service"]), transform(name)
    if config.get("default_service"):
        return config["default_service"], transform(name)
    parts = transform(name).split(".")
    assert len(parts) >= 4, f"the oracle cannot map {name}"
    return ".".join(parts[:2]), ".".join(parts[2:])


def expected_from(lines, config, server_id):
    """The documented mapping of what was sent: (service, attr, server, op) ->
    value summed over seconds (SUM, COUNT, HIST count), or the extreme (MAX,
    MIN), or the final value (LAST)."""
    out, gauges, set_members = {}, {}, {}
    events = checks = 0
    delta_gauges = config.get("gauge_sign", "delta") == "delta"

    def add(key, value):
        out[key] = out.get(key, 0) + value

    def extreme(key, value, pick):
        out[key] = pick(out[key], value) if key in out else value

    def negative_pair(j):
        """Lines j and j+1, in one datagram: a gauge set to 0, then a negative
        delta of the same series. They are one value (docs/socket.md)."""
        if not delta_gauges or j < 0 or j + 1 >= len(lines) or lines[j][2] != lines[j + 1][2]:
            return False
        (head0, *rest0), (head1, *rest1) = lines[j][1].split("|"), lines[j + 1][1].split("|")
        if ":" not in head0 or ":" not in head1 or rest0[:1] != ["g"] or rest0 != rest1:
            return False
        (name0, value0), (name1, value1) = head0.split(":", 1), head1.split(":", 1)
        return (name0 == name1 and value0[:1] not in "+-" and round(float(value0)) == 0
                and value1[:1] == "-" and round(float(value1)) < 0)

    for i, (second, line, payload) in enumerate(lines):
        if line.startswith("_e{"):
            events += 1
            continue
        if line.startswith("_sc|"):
            checks += 1
            continue
        head, *fields = line.split("|")
        name, value = head.split(":", 1)
        kind, rate, tags = fields[0], 1.0, {}
        for f in fields[1:]:
            if f.startswith("@"):
                rate = float(f[1:])
            elif f.startswith("#"):
                tags.update(t.split(":", 1) for t in f[1:].split(",") if ":" in t)
        service, attr = map_name(name, tags, config)
        server = int(tags.get("server", server_id))
        key = lambda op: (service, attr, server, op)  # noqa: E731
        if kind == "c":
            add(key("SUM"), round(float(value)) / rate)
            add(key("COUNT"), 1 / rate)
        elif kind in ("ms", "h", "d"):
            v = round(float(value))
            add(key("COUNT"), 1 / rate)
            add(key("HIST"), 1 / rate)
            extreme(key("MAX"), v, max)
            extreme(key("MIN"), v, min)
        elif kind == "g":
            v = round(float(value))
            state = gauges.get((service, attr, server), 0)
            delta = delta_gauges and value[0] in "+-"
            if negative_pair(i):
                continue  # the next line says what this 0 is
            state = v if negative_pair(i - 1) or not delta else state + v
            gauges[(service, attr, server)] = state
            out[key("LAST")] = state
            extreme(key("MAX"), state, max)
            extreme(key("MIN"), state, min)
        elif kind == "s":
            set_members.setdefault((service, attr, server, second), set()).add(value)
    for (service, attr, server, _), members in set_members.items():
        add((service, attr, server, "SUM"), len(members))
    return {k: (round(v) if isinstance(v, float) else v) for k, v in out.items()}, events, checks


def agent_view(agent):
    """The agent's aggregates, folded the way expected_from folds them."""
    out = {}
    if not os.path.exists(agent.output):
        return out
    with open(agent.output) as f:
        rows = [json.loads(line) for line in f if line.endswith("\n")]
    for row in sorted(rows, key=lambda r: r["ts"]):
        key = (row["service"], row["attr"], row["server_id"], row["op"])
        if row["op"] in ("SUM", "COUNT"):
            out[key] = out.get(key, 0) + row["value"]
        elif row["op"] == "HIST":
            out[key] = out.get(key, 0) + sum(count for _, count in row["buckets"])
        elif row["op"] == "MAX":
            out[key] = max(out.get(key, row["value"]), row["value"])
        elif row["op"] == "MIN":
            out[key] = min(out.get(key, row["value"]), row["value"])
        elif row["op"] == "LAST":
            out[key] = row["value"]
    return out


class StatsdAgent(Agent):
    """The binding tests' agent, with statsd on UDP and a stream socket, a
    statsd config, and /metrics."""

    def __init__(self, tmp, statsd_config):
        self.udp_port, self.metrics_port = free_port(), free_port(socket.SOCK_STREAM)
        config = os.path.join(tmp, "agent.json")
        with open(config, "w") as f:
            json.dump({"statsd": statsd_config, "server_id": 5}, f)
        self.stream = os.path.join(tmp, "statsd.sock")
        super().__init__(tmp, ["--config", config, "--udp", f"127.0.0.1:{self.udp_port}", "--statsd-socket",
                               self.stream, "--metrics-listen", f"127.0.0.1:{self.metrics_port}"])
        wait_for(lambda: os.path.exists(self.stream), 10, "the statsd stream socket")

    def metric(self, name):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None


class StatsdClientsTest(unittest.TestCase):
    def start(self, statsd_config):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.config = statsd_config
        self.agent = StatsdAgent(self.tmp.name, statsd_config)
        self.addCleanup(self.agent.stop)
        self.udp = Relay("udp", ("127.0.0.1", 0), ("127.0.0.1", self.agent.udp_port))
        self.addCleanup(self.udp.close)

    def relay(self, kind):
        path = os.path.join(self.tmp.name, f"relay-{kind}.sock")
        relay = Relay(kind, path, self.agent.stream if kind == "unixstream" else self.agent.socket)
        self.addCleanup(relay.close)
        return relay

    def check(self, relays, expect_events=0, expect_checks=0):
        # A client's last datagrams may still be on their way through the relay
        # when it exits; its events and checks are what it sends last.
        def sent():
            lines = [line for relay in relays for line in relay.lines()]
            return (lines, *expected_from(lines, self.config, 5))
        try:
            wait_for(lambda: sent()[2:] == (expect_events, expect_checks), 10, "the clients' last datagrams")
        except AssertionError:
            pass  # the assertion below says what arrived
        lines, expected, events, checks = sent()
        self.assertEqual((events, checks), (expect_events, expect_checks), "the clients sent what the test asked")
        self.assertGreaterEqual(len(expected), 10, expected)
        try:
            wait_for(lambda: all(agent_view(self.agent).get(k) == v for k, v in expected.items()), 30,
                     "the agent's aggregates equal the mapping of what was sent")
        finally:
            view = agent_view(self.agent)
            for key, value in sorted(expected.items()):
                self.assertEqual(view.get(key), value, key)
        self.assertEqual(self.agent.metric("monitor_agent_statsd_events_total"), events)
        self.assertEqual(self.agent.metric("monitor_agent_statsd_service_checks_total"), checks)
        self.assertEqual(self.agent.metric("monitor_agent_socket_bad_lines_total"), 0)
        return expected

    def test_python_statsd_over_udp_and_its_unix_stream_client(self):
        import statsd  # Debian's python3-statsd

        self.start({"default_service": "Py.Checkout",
                    "rules": [{"match": "http.*.requests", "service": "Py.Web", "attr": "Requests.$1"}]})
        stream_relay = self.relay("unixstream")
        host, port = self.udp.address
        udp = statsd.StatsClient(host, port)
        stream = statsd.UnixSocketStatsClient(stream_relay.address)
        for client in (udp, stream):
            for i in range(300):
                client.incr("orders.placed")
                client.incr("orders.items", 3, rate=0.5)
                client.incr("http.2xx.requests", rate=0.25)
                client.timing("request.latency", 10 + i * 0.5, rate=0.5)
            client.gauge("queue.depth", 10)
            client.gauge("queue.depth", 5, delta=True)
            client.gauge("queue.depth", -20, delta=True)
            client.gauge("temperature.c", -7)  # python-statsd sends 0 then -7
            with client.pipeline() as pipe:
                for member in ("alice", "bob", "alice", "carol", "bob"):
                    pipe.set("users.seen", member)
        stream.close()
        wait_for(lambda: stream_relay.connections_done == 1, 10, "the stream client's lines through the relay")
        self.check([self.udp, stream_relay])

    def run_node(self, env, *args):
        modules = os.environ.get("STATSD_NODE_MODULES")
        self.assertTrue(modules, "set STATSD_NODE_MODULES to the node_modules holding hot-shots (ctest does)")
        subprocess.run(["node", os.path.join(HERE, "node", "send.js"), *args], check=True, timeout=60,
                       env={**os.environ, "NODE_PATH": modules, **env})

    def test_hot_shots_over_udp_and_uds_with_dd_service(self):
        self.start({})
        uds = self.relay("unixgram")
        env = {"DD_SERVICE": "checkout-node", "DD_ENV": "prod", "DD_VERSION": "1.4.2"}
        self.run_node(env, "udp", str(self.udp.address[1]))
        self.run_node(env, "uds", uds.address)
        self.check([self.udp, uds], expect_events=2, expect_checks=2)

    def run_go(self, *args):
        gopath = os.path.join(self.tmp.name, "gopath")
        os.makedirs(os.path.join(gopath, "src"), exist_ok=True)
        os.symlink(os.path.join(HERE, "go"), os.path.join(gopath, "src", "statsdsend"))
        cache = os.environ.get("GO_CACHE_DIR") or os.path.join(self.tmp.name, "gocache")
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{gopath}:/usr/share/gocode", "GOCACHE": cache}
        binary = os.path.join(self.tmp.name, "statsdsend")
        subprocess.run(["go", "build", "-o", binary, "statsdsend"], check=True, timeout=300, env=env)
        for a in args:
            subprocess.run([binary, a], check=True, timeout=60)

    def test_datadog_go_over_udp_and_unix_with_service_tags(self):
        # A DogStatsD fleet: "-5|g" is a value, not a delta.
        self.start({"gauge_sign": "value"})
        uds = self.relay("unixgram")
        self.run_go(f"127.0.0.1:{self.udp.address[1]}", f"unix://{uds.address}")
        self.check([self.udp, uds], expect_events=2, expect_checks=2)


class StatsdFailurePathsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_stream_socket_bounds_clients_and_lines_and_counts_what_it_refuses(self):
        agent = StatsdAgent(self.tmp.name, {"default_service": "Py.Limits", "max_connections": 2})
        self.addCleanup(agent.stop)
        clients = []
        for _ in range(3):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(agent.stream)
            clients.append(c)
        wait_for(lambda: agent.metric("monitor_agent_statsd_stream_refused_total") == 1, 10,
                 "the third client refused")
        clients[2].settimeout(5)
        self.assertEqual(clients[2].recv(10), b"", "the refused client is closed at once")
        # A line of 5000 bytes is cut and counted; the lines around it count.
        clients[0].sendall(b"good.lines:1|c\n" + b"x" * 5000 + b":1|c\ngood.lines:1|c\n")
        # Split across writes, and a last line without its newline.
        clients[1].sendall(b"good.li")
        time.sleep(0.05)  # a real pause between the two writes, so the agent reads the halves apart
        clients[1].sendall(b"nes:1|c\ngood.lines:1|c")
        clients[0].close()
        clients[1].close()
        wait_for(lambda: agent_view(agent).get(("Py.Limits", "Good.Lines", 5, "SUM")) == 4, 15,
                 "the four good lines")
        self.assertEqual(agent.metric("monitor_agent_lines_too_long_total"), 1)
        self.assertEqual(agent.metric("monitor_agent_socket_bad_lines_total"), 1)

    def test_unmapped_names_are_counted_by_reason_and_logged(self):
        agent = StatsdAgent(self.tmp.name, {})
        self.addCleanup(agent.stop)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"web.requests.count:1|c\nweb.requests.count:1|c\n!!!:1|c|#service:x\nshop.api.a.b:1|zz\n",
                      ("127.0.0.1", agent.udp_port))
        sender.close()
        wait_for(lambda: agent.metric("monitor_agent_socket_bad_lines_total") == 4, 10, "four refused lines")
        self.assertEqual(agent.metric("monitor_agent_lines_no_service_total"), 2)
        self.assertEqual(agent.metric("monitor_agent_lines_bad_name_total"), 1)
        self.assertEqual(agent.metric("monitor_agent_lines_bad_type_total"), 1)
        with open(os.path.join(self.tmp.name, "agent.log")) as f:
            self.assertIn("(no_service): \"web.requests.count:1|c\"", f.read())

    def test_the_default_udp_port_taken_by_another_daemon_is_skipped_with_a_warning(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            holder.bind(("127.0.0.1", 8125))
        except OSError:
            pass  # another process has it already: the same case for the agent
        self.addCleanup(holder.close)
        agent = Agent(self.tmp.name)  # no --udp: the default address
        self.addCleanup(agent.stop)
        log = os.path.join(self.tmp.name, "agent.log")
        wait_for(lambda: "is taken by another process" in pathlib.Path(log).read_text(), 10, "the warning")
        self.assertIsNone(agent.process.poll(), "the agent runs on")


if __name__ == "__main__":
    unittest.main()
