"""Report to monitor from Python.

    from monitor_client import Client, Op

    client = Client(server_id=7)
    orders = client.attr("Shop.Api", "Orders.Placed", Op.SUM | Op.COUNT)
    orders.report(3)                                      # -> Status.OK
    client.report("Shop.Api", "Request.LatencyUs", 7, 1250, Op.HIST)

Reports are lines of the agent's native socket form (docs/socket.md), batched
into datagrams to the local monitor-agent's Unix socket: a datagram goes when
it is full (60 000 bytes by default) and at least every 50 ms from a
background thread, and at fork (before it) and at exit. Nothing on the report
path blocks or raises: a bad name, a bad value, an absent agent or a full
socket is a returned Status and a counter in Client.stats().
"""
from __future__ import annotations

import atexit
import collections
import enum
import math
import os
import re
import socket
import sys
import threading
import time
import weakref
from typing import Dict, Optional

__all__ = ["Client", "Attr", "Op", "Status", "SUM", "MAX", "MIN", "AVG", "FIRST", "LAST", "COUNT", "HIST",
           "is_valid_name", "name_error", "default_socket_path"]


class Op(enum.IntFlag):
    """The ops of the data model (DESIGN.md section 1); combine with |."""
    SUM = 1
    MAX = 2
    MIN = 4
    AVG = 8
    FIRST = 16
    LAST = 32
    COUNT = 64
    HIST = 128


SUM, MAX, MIN, AVG, FIRST, LAST, COUNT, HIST = (Op.SUM, Op.MAX, Op.MIN, Op.AVG, Op.FIRST, Op.LAST, Op.COUNT,
                                                Op.HIST)
_ALL_OPS = 0xFF
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class Status(enum.IntEnum):
    """What became of one report. Only OK means it is on its way."""
    OK = 0
    BAD_NAME = 1   # a service or attr name breaks the naming rule
    BAD_VALUE = 2  # not a finite number in the int64 range, or a bad server id
    BAD_OPS = 3    # an op mask of no op or of unknown bits
    CLOSED = 4     # the client was closed


MAX_NAME_BYTES = 64
_NAME = re.compile(r"[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+\Z")


def is_valid_name(name: str) -> bool:
    """[A-Z][A-Za-z0-9]*(.[A-Z][A-Za-z0-9]*)+, at most 64 bytes: the C++ API's rule."""
    return isinstance(name, str) and len(name.encode("utf-8", "replace")) <= MAX_NAME_BYTES and \
        _NAME.match(name) is not None


def name_error(what: str, name: str) -> str:
    """The message monitorctl gives for a bad name, for logs and Attr.error."""
    return (f'{what} name "{name}" is not valid: it must be dot-separated parts that each start with a capital '
            "letter followed by letters and digits, at least two parts, at most 64 bytes (e.g. Shop.Api)")


def default_socket_path() -> str:
    """Where monitor-agent listens by default: $MONITOR_SOCKET, else as docs/agent.md says."""
    chosen = os.environ.get("MONITOR_SOCKET")
    if chosen:
        return chosen
    if os.geteuid() == 0:
        return "/run/monitor/agent.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "monitor", "agent.sock")
    return f"/tmp/monitor-{os.getuid()}/agent.sock"


def _ops_ok(ops: int) -> bool:
    return isinstance(ops, int) and 0 < ops <= _ALL_OPS


def _value_text(value) -> Optional[str]:
    # Integers as they are; floats rounded to the nearest integer (report
    # microseconds, not fractional milliseconds), as the agent does for statsd.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if _INT64_MIN <= value <= _INT64_MAX else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = round(value)
        return str(rounded) if _INT64_MIN <= rounded <= _INT64_MAX else None
    return None


def _server_id_ok(server_id) -> bool:
    """A server id is an int in [0, 2^63): what the agent takes."""
    return isinstance(server_id, int) and not isinstance(server_id, bool) and 0 <= server_id <= _INT64_MAX


class Attr:
    """A (service, attr, ops) whose names were checked once; report() is the fast path."""

    __slots__ = ("_client", "_prefix", "_suffix", "error", "service", "attr", "ops")

    def __init__(self, client: "Client", service: str, attr: str, ops: int) -> None:
        self._client = client
        self.service, self.attr, self.ops = service, attr, ops
        self.error: Optional[str] = None
        if not is_valid_name(service):
            self.error = name_error("service", service)
        elif not is_valid_name(attr):
            self.error = name_error("attr", attr)
        elif not _ops_ok(ops):
            self.error = f"ops {ops!r}: combine Op values (1 to 255)"
        self._prefix = f"{service} {attr} ".encode() if self.error is None else b""
        self._suffix = f" {int(ops)} 0\n".encode() if self.error is None else b""

    @property
    def valid(self) -> bool:
        return self.error is None

    def report(self, value, server_id: Optional[int] = None) -> Status:
        """One report of `value` for `server_id` (default: the client's). Never raises."""
        client = self._client
        # The common case first: an int value for the client's server (checked once, when the client was made).
        if server_id is None and type(value) is int and _INT64_MIN <= value <= _INT64_MAX and self.error is None \
                and client._server_id_ok:
            return client._append(b"%s%d %d%s" % (self._prefix, client.server_id, value, self._suffix))
        try:
            if self.error is not None:
                bad_ops = self.error.startswith("ops")
                client._count("bad_ops" if bad_ops else "bad_names")
                return Status.BAD_OPS if bad_ops else Status.BAD_NAME
            text = _value_text(value)
            server = client.server_id if server_id is None else server_id
            if text is None or not _server_id_ok(server):
                client._count("bad_values")
                return Status.BAD_VALUE
            return client._append(b"%s%d %s%s" % (self._prefix, server, text.encode(), self._suffix))
        except Exception:  # nothing in monitoring may break the caller
            client._count("bad_values")
            return Status.BAD_VALUE


_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


class Client:
    """Batches reports into datagrams to the local monitor-agent. Thread-safe."""

    def __init__(self, socket_path: Optional[str] = None, server_id: int = 0, max_datagram: int = 60000,
                 flush_interval: float = 0.05, max_pending_bytes: int = 4 << 20) -> None:
        self.socket_path = socket_path or default_socket_path()
        # A bad default server id (-1, "7") is not raised here: each report
        # for it returns BAD_VALUE, as a bad id passed to report() does.
        self.server_id = server_id
        self._server_id_ok = _server_id_ok(server_id)
        # The agent reads datagrams up to 64 KiB; a line is at most 1 KiB.
        self.max_datagram = max(1024, min(int(max_datagram), 65000))
        self.flush_interval = max(0.001, float(flush_interval))
        # Datagrams the agent's socket had no room for yet, sent first at the
        # next flush; past this many bytes new ones are dropped and counted.
        self.max_pending_bytes = max(0, int(max_pending_bytes))
        self._pending: "collections.deque[tuple[bytes, int]]" = collections.deque()
        self._pending_bytes = 0
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._lines = 0
        self._stats: Dict[str, int] = {"lines_sent": 0, "datagrams_sent": 0, "dropped_no_agent": 0,
                                       "dropped_socket_full": 0, "dropped_error": 0, "bad_names": 0, "bad_ops": 0,
                                       "bad_values": 0}
        self._socket: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._wake = threading.Event()
        self._closed = False
        _clients.add(self)

    # ---- the report path ------------------------------------------------------

    def attr(self, service: str, attr: str, ops: int) -> Attr:
        """A handle that checks the names once; see Attr.valid and Attr.error."""
        return Attr(self, service, attr, ops)

    def report(self, service: str, attr: str, server_id: int, value, ops: int) -> Status:
        """One report, as monitor(service, attr, server_id, value, op_mask) in C++. Never raises."""
        try:
            if not is_valid_name(service) or not is_valid_name(attr):
                self._count("bad_names")
                return Status.BAD_NAME
            if not _ops_ok(ops):
                self._count("bad_ops")
                return Status.BAD_OPS
            text = _value_text(value)
            if text is None or not _server_id_ok(server_id):
                self._count("bad_values")
                return Status.BAD_VALUE
            return self._append(f"{service} {attr} {server_id} {text} {int(ops)} 0\n".encode())
        except Exception:  # nothing in monitoring may break the caller
            self._count("bad_values")
            return Status.BAD_VALUE

    def _append(self, line: bytes) -> Status:
        if self._closed:
            return Status.CLOSED
        with self._lock:
            if len(self._buffer) + len(line) > self.max_datagram:
                self._send_locked()
            self._buffer += line
            self._lines += 1
        if self._thread is None:
            self._start_thread()
        return Status.OK

    # ---- sending ----------------------------------------------------------------

    def flush(self) -> None:
        """Sends what is batched now. Never blocks on the agent, never raises."""
        with self._lock:
            self._send_locked()

    def _send_locked(self) -> None:
        if self._buffer:
            if self._pending_bytes + len(self._buffer) > self.max_pending_bytes and self._pending:
                self._stats["dropped_socket_full"] += self._lines  # the agent is this far behind
            else:
                self._pending.append((bytes(self._buffer), self._lines))
                self._pending_bytes += len(self._buffer)
            self._buffer.clear()
            self._lines = 0
        while self._pending:
            data, lines = self._pending[0]
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._socket.setblocking(False)  # a full agent never stalls the caller
                self._socket.sendto(data, self.socket_path)
                self._stats["lines_sent"] += lines
                self._stats["datagrams_sent"] += 1
            except (BlockingIOError, InterruptedError):
                return  # no room now: kept, tried again at the next flush
            except (FileNotFoundError, ConnectionRefusedError):
                self._stats["dropped_no_agent"] += lines
            except Exception:
                self._stats["dropped_error"] += lines
            self._pending.popleft()
            self._pending_bytes -= len(data)

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._flush_loop, name="monitor-client-flush", daemon=True)
            self._thread.start()

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self.flush()

    def stats(self) -> Dict[str, int]:
        """Counters since the client was made: sent, dropped by reason, refused reports, and
        pending_lines: held because the agent's socket had no room yet (sent at the next flush)."""
        with self._lock:
            return dict(self._stats, pending_lines=sum(lines for _, lines in self._pending) + self._lines)

    def close(self) -> None:
        """Flushes, waits up to 2 s for datagrams the agent's socket had no room for, and stops
        the background thread; later reports return Status.CLOSED."""
        if self._closed:
            return
        self.flush()
        # What the agent's socket had no room for yet: a bounded wait for it to
        # drain (close is not the report path); what is left after 2 s is dropped.
        deadline = time.monotonic() + 2
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.001)
            self.flush()
        with self._lock:
            self._stats["dropped_socket_full"] += sum(lines for _, lines in self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- fork and exit --------------------------------------------------------------

    def _after_fork(self) -> None:
        # The child starts empty: what the parent held was flushed before the fork.
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._lines = 0
        self._pending = collections.deque()
        self._pending_bytes = 0
        self._socket = None
        self._thread = None
        self._wake = threading.Event()


def _flush_all() -> None:
    for client in list(_clients):
        try:
            client.flush()
        except Exception:
            pass


def _flush_at_exit() -> None:
    # The last chance to send, and to say what never reached the agent: after
    # this nobody can read Client.stats(), so the count goes to stderr.
    for client in list(_clients):
        try:
            if client._closed:
                continue
            client.close()  # flushes; waits up to 2 s for a full socket
            stats = client.stats()
            lost = stats["dropped_no_agent"] + stats["dropped_socket_full"] + stats["dropped_error"]
            if lost:
                sys.stderr.write(f"monitor_client: {lost} reports never reached the agent at {client.socket_path} "
                                 f"({stats['dropped_no_agent']} no agent, {stats['dropped_socket_full']} its socket "
                                 f"full, {stats['dropped_error']} send errors)\n")
        except Exception:
            pass


def _reset_all_in_child() -> None:
    for client in list(_clients):
        client._after_fork()


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_flush_all, after_in_child=_reset_all_in_child)
