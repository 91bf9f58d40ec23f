"""monitor_client against a real monitor-agent: the agent's per-second
aggregates equal what was sent; bad input, an absent agent and a stopped one
are statuses and counters, never an exception or a stall; a forking and an
exiting process deliver what they hold, once.

MONITOR_AGENT names the agent binary (ctest sets it to the build's); without
it the tests that need an agent fail, saying so.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from monitor_client import Client, Op, Status, name_error  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def wait_for(predicate, timeout, what):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s (last: {last!r})")


class Agent:
    """A real monitor-agent on its own ring and socket, aggregates to a file."""

    def __init__(self, tmp, extra_args=()):
        binary = os.environ.get("MONITOR_AGENT")
        if not binary:
            raise AssertionError("set MONITOR_AGENT to a monitor-agent binary (ctest does)")
        self.socket = os.path.join(tmp, "agent.sock")
        self.output = os.path.join(tmp, "aggregates.jsonl")
        self.ring = f"/mt-python-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
        self.log = open(os.path.join(tmp, "agent.log"), "w")
        self.process = subprocess.Popen(
            [binary, "--ring", self.ring, "--socket", self.socket, "--output", self.output, "--journal", "none",
             "--spool-dir", os.path.join(tmp, "spool"), "--no-self-metrics", "--no-host-metrics", "--late-window", "5", *extra_args],
            stdout=subprocess.DEVNULL, stderr=self.log)
        wait_for(lambda: os.path.exists(self.socket), 10, "the agent's socket")

    def totals(self):
        """(attr, server, op) -> summed value (HIST: its count) over every second written so far."""
        out = {}
        if not os.path.exists(self.output):
            return out
        with open(self.output) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written
                row = json.loads(line)
                key = (row["attr"], row["server_id"], row["op"])
                out[key] = out.get(key, 0) + (row["count"] if row["op"] == "HIST" else row["value"])
        return out

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=20)
        self.log.close()
        try:
            os.unlink("/dev/shm" + self.ring)
        except OSError:
            pass


class WithoutAgentTest(unittest.TestCase):
    def test_bad_input_is_a_status_never_an_exception(self):
        client = Client(socket_path="/nonexistent/agent.sock")
        self.assertEqual(client.report("shop.api", "Orders.Placed", 1, 1, Op.SUM), Status.BAD_NAME)
        self.assertEqual(client.report("Shop.Api", "Orders", 1, 1, Op.SUM), Status.BAD_NAME)  # one part
        self.assertEqual(client.report("Shop.Api", "Orders.Placed", 1, 1, 0), Status.BAD_OPS)
        self.assertEqual(client.report("Shop.Api", "Orders.Placed", 1, 1, 256), Status.BAD_OPS)
        for value in [float("nan"), float("inf"), 1 << 63, "3", None, True]:
            self.assertEqual(client.report("Shop.Api", "Orders.Placed", 1, value, Op.SUM), Status.BAD_VALUE, value)
        for server in [-1, 1 << 63, "7", None]:
            self.assertEqual(client.report("Shop.Api", "Orders.Placed", server, 1, Op.SUM), Status.BAD_VALUE, server)
        self.assertEqual(client.report("A." + "B" * 63, "Orders.Placed", 1, 1, Op.SUM), Status.BAD_NAME)  # 65 bytes
        handle = client.attr("Shop.Api", "orders", Op.SUM)
        self.assertFalse(handle.valid)
        self.assertEqual(handle.error, name_error("attr", "orders"))
        self.assertIn("must be dot-separated parts that each start with a capital letter", handle.error)
        self.assertEqual(handle.report(1), Status.BAD_NAME)
        stats = client.stats()
        self.assertEqual(stats["bad_names"], 4)
        self.assertEqual(stats["bad_ops"], 2)
        self.assertEqual(stats["bad_values"], 10)
        client.close()
        self.assertEqual(client.report("Shop.Api", "Orders.Placed", 1, 1, Op.SUM), Status.CLOSED)

    def test_a_bad_default_server_id_is_a_status_never_ok_or_an_exception(self):
        # Issue 23: Client(server_id=-1) returned OK for reports the agent refused, and "7" raised TypeError.
        for server in [-1, "7", 1 << 63, None, True, 2.5]:
            client = Client(socket_path="/nonexistent/agent.sock", server_id=server)
            handle = client.attr("Shop.Api", "Orders.Placed", Op.SUM)
            self.assertEqual(handle.report(1), Status.BAD_VALUE, server)
            self.assertEqual(handle.report(1.5), Status.BAD_VALUE, server)
            self.assertEqual(handle.report(1, server_id=3), Status.OK, server)  # an explicit good id still goes
            self.assertEqual(client.stats()["bad_values"], 2, server)
            client.close()

    def test_what_never_reached_the_agent_is_said_at_exit(self):
        # Issue 23: at exit, what could not be sent was lost without a word.
        script = ("import sys; sys.path.insert(0, %r)\n"
                  "from monitor_client import Client, Op\n"
                  "client = Client(socket_path='/nonexistent/agent.sock')\n"
                  "for i in range(5): client.report('Shop.Api', 'Orders.Placed', 1, i, Op.SUM)\n") % SRC
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("monitor_client: 5 reports never reached the agent at /nonexistent/agent.sock (5 no agent",
                      run.stderr)

    def test_an_absent_agent_is_counted_not_raised(self):
        client = Client(socket_path="/nonexistent/agent.sock")
        for i in range(100):
            self.assertEqual(client.report("Shop.Api", "Orders.Placed", 1, i, Op.SUM), Status.OK)
        client.flush()
        self.assertEqual(client.stats()["dropped_no_agent"], 100)
        self.assertEqual(client.stats()["lines_sent"], 0)
        client.close()


class WithAgentTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.agent = Agent(self.tmp.name)

    def tearDown(self):
        self.agent.stop()
        self.tmp.cleanup()

    def test_the_agents_aggregates_equal_what_was_sent(self):
        client = Client(socket_path=self.agent.socket, server_id=7, max_datagram=4000)
        orders = client.attr("Py.Test", "Orders.Placed", Op.SUM | Op.COUNT | Op.MAX)
        latency = client.attr("Py.Test", "Latency.Us", Op.HIST)
        expected = {}
        for i in range(3000):
            server = 1 + i % 3
            self.assertEqual(orders.report(i % 11, server_id=server), Status.OK)
            for op, v in (("SUM", i % 11), ("COUNT", 1)):
                expected[("Orders.Placed", server, op)] = expected.get(("Orders.Placed", server, op), 0) + v
        for i in range(500):
            self.assertEqual(latency.report(100 + i * 3.4), Status.OK)  # floats: rounded
        expected[("Latency.Us", 7, "HIST")] = 500
        self.assertEqual(client.report("Py.Test", "Queue.Depth", 2, -5, Op.SUM), Status.OK)
        expected[("Queue.Depth", 2, "SUM")] = -5
        client.flush()
        try:
            totals = wait_for(lambda: (lambda t: t if all(t.get(k) == v for k, v in expected.items()) else None)(
                self.agent.totals()), 15, "the agent's aggregates to reach what was sent")
        except AssertionError:
            self.fail(f"expected {expected}\nthe agent wrote {self.agent.totals()}\nstats {client.stats()}")
        for key, value in expected.items():
            self.assertEqual(totals[key], value, key)
        stats = client.stats()
        self.assertEqual(stats["lines_sent"], 3501)
        self.assertGreater(stats["datagrams_sent"], 3501 * 30 // 4000)  # batched, within the size asked
        self.assertEqual(stats["dropped_no_agent"] + stats["dropped_socket_full"] + stats["dropped_error"], 0)
        client.close()

    def test_a_stopped_agent_never_stalls_the_caller(self):
        client = Client(socket_path=self.agent.socket)
        self.agent.process.send_signal(signal.SIGSTOP)  # its socket buffer fills and stays full
        started = time.monotonic()
        for i in range(400000):
            client.report("Py.Test", "Flood.Count", 1, 1, Op.SUM)
        client.flush()
        elapsed = time.monotonic() - started
        stats = client.stats()
        self.agent.process.send_signal(signal.SIGCONT)
        # What the socket and the bounded pending queue could not hold is dropped and counted; the rest is sent.
        self.assertGreater(stats["dropped_socket_full"], 0, stats)
        self.assertEqual(stats["lines_sent"] + stats["pending_lines"] + stats["dropped_socket_full"], 400000, stats)
        wait_for(lambda: (client.flush(), client.stats()["pending_lines"] == 0)[1], 10, "the pending datagrams sent")
        print(f"\n  400000 reports into a stopped agent returned in {elapsed:.2f} s; {stats}", file=sys.stderr)
        client.close()

    def test_a_forking_and_exiting_process_delivers_what_it_holds_once(self):
        script = textwrap.dedent(f"""
            import os, sys
            sys.path.insert(0, {SRC!r})
            from monitor_client import Client, Op
            client = Client(socket_path={self.agent.socket!r}, flush_interval=3600)  # only fork and exit flush
            for _ in range(250):
                client.report("Py.Fork", "Lines.Count", 1, 1, Op.SUM)
            pid = os.fork()
            if pid == 0:
                for _ in range(100):
                    client.report("Py.Fork", "Lines.Count", 2, 1, Op.SUM)
                sys.exit(0)  # atexit flushes the child's 100
            os.waitpid(pid, 0)
            for _ in range(50):
                client.report("Py.Fork", "Lines.Count", 1, 1, Op.SUM)
            # no flush: the parent's exit sends its 50
        """)
        subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
        want = {("Lines.Count", 1, "SUM"): 300, ("Lines.Count", 2, "SUM"): 100}
        totals = wait_for(lambda: (lambda t: t if all(t.get(k) == v for k, v in want.items()) else None)(
            self.agent.totals()), 15, "the forked and exiting processes' reports")
        self.assertEqual({k: totals[k] for k in want}, want)


if __name__ == "__main__":
    unittest.main()
