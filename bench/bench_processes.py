"""What the Python benches share: free loopback ports, the daemons they start
(each logging into the bench's directory, all stopped at the end), and
waiting on a condition with a bound."""
import os
import shutil
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Processes:
    def __init__(self, name, tmp):
        self.name, self.tmp, self.procs = name, tmp, []

    def start(self, args, log, env=None):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, log), "w"), env=env)
        self.procs.append(p)
        return p

    def await_true(self, fn, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if fn():
                    return
            except Exception:
                pass
            time.sleep(0.01)
        raise SystemExit(f"{self.name}: {what} did not happen within {timeout:.0f} s (logs in {self.tmp})")

    def stop_all(self):
        """SIGTERM in the reverse order of their start; killed if not gone within 20 s."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    def finish(self, ring=None):
        """stop_all(), then remove the bench's ring and (unless KEEP=1) its directory."""
        self.stop_all()
        if ring:
            try:
                os.unlink(f"/dev/shm{ring}")
            except OSError:
                pass
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
