"""Exhaustion and crashes: too few file descriptors (at start, and for an
accept), fork failing under RLIMIT_NPROC, the master SIGKILLed with a
session in progress, a client flood beyond workers.max, and the per-user
pipe page limit. Each test runs its own daemon."""

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import (finish_daemon, Daemon, IS_ROOT, TcpServer,
                     echo_handler, echo_roundtrip, needs_socks5d, open_session,
                     wait_until)

UNUSED_UID = 64123  # no process of the machine runs as it: nproc is ours


@contextlib.contextmanager
def wrapped_daemon(prefix):
    """Daemons started inside run `prefix... socks5d ...` (prlimit,
    setpriv: both exec, so the pid is the master's)."""
    tmp = tempfile.mkdtemp(prefix="socks5d-wrap-")
    real = os.path.abspath(harness.DAEMON)
    path = os.path.join(tmp, "socks5d")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(prefix) + f' "{real}" "$@"\n')
    os.chmod(path, 0o755)
    os.chmod(tmp, 0o755)
    saved = harness.DAEMON
    harness.DAEMON = path
    try:
        yield
    finally:
        harness.DAEMON = saved
        shutil.rmtree(tmp, ignore_errors=True)


def limits(pid, name):
    """(soft, hard) of the limit called name in /proc/PID/limits."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(name):
                soft, hard = line[len(name):].split()[:2]
                return tuple(1 << 62 if v == "unlimited" else int(v)
                             for v in (soft, hard))
    raise AssertionError(f"no {name} in /proc/{pid}/limits")


def soft_nofile(pid):
    return limits(pid, "Max open files")[0]


def set_soft(pid, resource, name, soft):
    """prlimit --pid as the process's own uid and gid: root here has no
    CAP_SYS_RESOURCE, and the kernel lets a process's own user change
    its limits; only the soft one, so it can be raised again."""
    st = os.stat(f"/proc/{pid}")
    hard = limits(pid, name)[1]
    hard = "unlimited" if hard == 1 << 62 else hard
    subprocess.run(["setpriv", f"--reuid={st.st_uid}", f"--regid={st.st_gid}",
                    "--clear-groups", "prlimit", f"--pid={pid}",
                    f"--{resource}={soft}:{hard}"], check=True)


def count(d, pattern):
    return len(re.findall(pattern, d.text()))


def refused(port):
    """True when a connect to port is refused (not accepted, not hanging)."""
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


@needs_socks5d
class NoFile(unittest.TestCase):
    def tearDown(self):
        for d in getattr(self, "daemons", []):
            finish_daemon(d)

    def daemon(self, **kw):
        d = Daemon(**kw)
        self.daemons = getattr(self, "daemons", []) + [d]
        return d

    def test_nofile_too_low_refused(self):
        """Under a hard limit of 14 the master does not start workers that
        would fail every accept: it says what it needs and exits 1."""
        d = self.daemon()
        with wrapped_daemon(["prlimit", "--nofile=14:14", "--"]):
            with self.assertRaises(AssertionError):
                d.start()
        self.assertEqual(d.proc.wait(10), 1)
        m = d.find(r"nofile-short role=worker need=(\d+) have=14 hard=14 .*"
                   r"raise LimitNOFILE= in the unit, or ulimit -n")
        self.assertIsNotNone(m, d.text())
        self.assertEqual(count(d, r"nofile-short"), 1, d.text())

    def test_nofile_soft_raised(self):
        """A soft limit below the need is raised (up to the hard one), and
        children inherit it."""
        d = self.daemon(relay_extra=dict(hubs=1, park_after=5))
        with wrapped_daemon(["prlimit", "--nofile=20:4096", "--"]):
            d.start()
        self.assertIsNone(d.find(r"nofile-short"), d.text())
        need = 16 + 128 + 2 * 16  # a hub: base, pipes, workers.max sessions
        self.assertGreaterEqual(soft_nofile(d.pid), need)
        for w in d.workers_pids():
            self.assertGreaterEqual(soft_nofile(w), need)
        srv = TcpServer(echo_handler)
        try:
            s, _ = open_session(("127.0.0.1", d.port), *srv.addr)
            echo_roundtrip(s, b"x" * 1000)
            s.close()
        finally:
            srv.close()

    def test_nofile_hub_short_warns(self):
        """A hard limit of 64 lets a hub park nothing: the master says so
        once, and serves."""
        d = self.daemon(relay_extra=dict(hubs=1, park_after=5))
        with wrapped_daemon(["prlimit", "--nofile=64:64", "--"]):
            d.start()
        self.assertIsNotNone(d.find(
            r"nofile-short role=hub need=\d+ have=64 hard=64 .*a hub parks fewer"), d.text())
        self.assertEqual(count(d, r"nofile-short"), 1, d.text())
        srv = TcpServer(echo_handler)
        try:
            s, _ = open_session(("127.0.0.1", d.port), *srv.addr)
            echo_roundtrip(s, b"y" * 1000)
            s.close()
        finally:
            srv.close()

    def test_nofile_checked_at_reload(self):
        """A reload that makes hubs park is checked against the limit too:
        one warning in the reload, and it is taken."""
        d = self.daemon(relay_extra=dict(park_after=0))
        with wrapped_daemon(["prlimit", "--nofile=64:64", "--"]):
            d.start()
        self.assertIsNone(d.find(r"nofile-short"), d.text())
        mark = d.mark()
        d.relay_extra = dict(hubs=1, park_after=5)
        d.write_config()
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"nofile-short role=hub need=\d+ have=64 hard=64")
        self.assertRegex(r.stdout, r"reload generation=2")
        # The reply can come before the log file has the line.
        d.wait_log(r"nofile-short role=hub", mark, 10)
        self.assertEqual(count(d, r"nofile-short"), 1, d.text(mark))

    def test_accept_failures_logged_once(self):
        """A worker whose accept fails for want of fds backs off and logs
        one line, not one per failure; once fds are back the client waiting
        in the backlog is served."""
        d = self.daemon(workers=dict(min_spare=2, max_spare=2, max=2))
        d.start()
        wait_until(lambda: len(d.workers_pids()) == 2, 10, "2 workers")
        workers = d.workers_pids()
        for w in workers:
            # Below what it holds (a count taken now may include an fd
            # about to close): every new fd fails, none that is open.
            self.assertGreater(len(os.listdir(f"/proc/{w}/fd")), 8)
            set_soft(w, "nofile", "Max open files", 8)
        srv = TcpServer(echo_handler)
        try:
            mark = d.mark()
            c = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            c.sendall(b"\x05\x01\x00")  # past TCP_DEFER_ACCEPT
            d.wait_log(r"accept-failed error=\"Too many open files\"", mark)
            time.sleep(3)  # the flood this test exists to rule out
            lines = count(d, r"accept-failed")
            self.assertLessEqual(lines, len(workers), d.text(mark))
            for w in workers:
                set_soft(w, "nofile", "Max open files", 1024)
            self.assertEqual(harness.recv_exact(c, 2, 10), b"\x05\x00")
            c.sendall(harness.request_bytes(*srv.addr))
            self.assertEqual(harness.read_reply(c)[1], 0)
            echo_roundtrip(c, b"z" * 5000)
            c.close()
            self.assertEqual(count(d, r"accept-failed"), lines)
        finally:
            srv.close()


@needs_socks5d
class ForkFails(unittest.TestCase):
    @unittest.skipUnless(IS_ROOT, "needs root to run the daemon as another uid")
    def test_fork_failure_backs_off(self):
        """A master (not root: root is not held to RLIMIT_NPROC) whose fork
        fails with EAGAIN logs once per interval, keeps serving with the
        workers it has, and grows again once forks work."""
        d = Daemon(workers=dict(min_spare=2, max_spare=4, max=8))
        os.chown(d.tmp, UNUSED_UID, UNUSED_UID)
        srv = TcpServer(echo_handler)
        held = []
        try:
            with wrapped_daemon(["setpriv", f"--reuid={UNUSED_UID}",
                                 f"--regid={UNUSED_UID}", "--clear-groups", "--"]):
                d.start()
            wait_until(lambda: len(d.workers_pids()) == 2, 10, "2 workers")
            # master + 2 workers: the next fork fails.
            set_soft(d.pid, "nproc", "Max processes", 3)
            mark = d.mark()
            for _ in range(2):
                s, _ = open_session(("127.0.0.1", d.port), *srv.addr)
                echo_roundtrip(s, b"a" * 100)
                held.append(s)
            d.wait_log(r"fork-failed role=worker error=\"Resource temporarily "
                       r"unavailable\" failures=1 not-logged=0: serving with the 2 workers", mark)
            # A third client waits in the backlog and is served when a
            # worker is free.
            result = {}

            def third():
                try:
                    s, _ = open_session(("127.0.0.1", d.port), *srv.addr, timeout=20)
                    echo_roundtrip(s, b"b" * 4000)
                    s.close()
                    result["ok"] = True
                except Exception as e:  # noqa: BLE001 - reported below
                    result["err"] = e
            t = threading.Thread(target=third)
            t.start()
            time.sleep(3)  # backoff and no flood while forks fail
            self.assertEqual(count(d, r"fork-failed"), 1, d.text(mark))
            self.assertEqual(len(d.workers_pids()), 2)
            held.pop().close()
            t.join(20)
            self.assertEqual(result, {"ok": True})
            set_soft(d.pid, "nproc", "Max processes", 64)
            d.wait_log(r"fork-recovered role=worker failures=\d+", mark)
            wait_until(lambda: len(d.workers_pids()) >= 3, 10, "the pool to grow")
            self.assertEqual(count(d, r"fork-failed"), 1, d.text(mark))
        finally:
            for s in held:
                s.close()
            srv.close()
            finish_daemon(d)


@needs_socks5d
class MasterKilled(unittest.TestCase):
    def test_sigkill_master_frees_port(self):
        """SIGKILL the master with a session in progress: its workers close
        the listeners at once (connect refused, not a hang), a new daemon
        binds the port at once, and the session in progress goes on."""
        d = Daemon(workers=dict(min_spare=3, max_spare=4, max=8),
                   timeouts=dict(shutdown=20))
        d2 = None
        srv = TcpServer(echo_handler)
        try:
            d.start()
            wait_until(lambda: len(d.workers_pids()) == 3, 10, "3 workers")
            s, _ = open_session(("127.0.0.1", d.port), *srv.addr)
            echo_roundtrip(s, b"before" * 1000)
            d.remember_children()
            os.kill(d.pid, signal.SIGKILL)
            d.proc.wait(5)
            t0 = time.monotonic()
            wait_until(lambda: refused(d.port), 2, "connects to be refused")
            refused_after = time.monotonic() - t0
            echo_roundtrip(s, b"during" * 100000)
            d2 = Daemon()
            d2.port = d.port
            d2.start()
            s2, _ = open_session(("127.0.0.1", d.port), *srv.addr)
            echo_roundtrip(s2, b"new" * 1000)
            s2.close()
            echo_roundtrip(s, b"after" * 1000)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(harness.read_until_closed(s), (b"", "eof"))
            s.close()
            self.assertLess(refused_after, 2)
        finally:
            srv.close()
            if d2 is not None:
                finish_daemon(d2)
            d.kill_all()
            shutil.rmtree(d.tmp, ignore_errors=True)


@needs_socks5d
class Flood(unittest.TestCase):
    def test_flood_beyond_max(self):
        """Clients beyond workers.max wait in the listen backlog: all are
        served once workers are free, the master logs pool-full once, not a
        line per client."""
        n = 40
        d = Daemon(workers=dict(min_spare=2, max_spare=2, max=2))
        srv = TcpServer(echo_handler)
        held, results = [], []
        lock = threading.Lock()
        try:
            d.start()
            for _ in range(2):
                s, _ = open_session(("127.0.0.1", d.port), *srv.addr)
                held.append(s)

            def client(i):
                try:
                    s, _ = open_session(("127.0.0.1", d.port), *srv.addr, timeout=30)
                    echo_roundtrip(s, bytes([i]) * 2000, timeout=30)
                    s.close()
                    r = True
                except Exception as e:  # noqa: BLE001 - reported below
                    r = e
                with lock:
                    results.append(r)
            threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            d.wait_log(r"pool-full workers=2 max=2: clients wait in the listen backlog")
            time.sleep(2)  # a line per client or per tick would show here
            self.assertEqual(results, [])
            for s in held:
                s.close()
            held = []
            for t in threads:
                t.join(60)
            self.assertEqual(results, [True] * n)
            self.assertEqual(count(d, r"pool-full"), 1, d.text())
            self.assertTrue(d.alive())
        finally:
            for s in held:
                s.close()
            srv.close()
            finish_daemon(d)


# Runs as a user of its own and takes that user's pipe pages up to
# fs.pipe-user-pages-soft (1 MiB pipes until F_SETPIPE_SZ says EPERM),
# so that the user's next pipes get the kernel's 2 pages: the limit is
# reached for this user alone, without changing the global sysctl.
PIPE_HOG = r"""
import fcntl, os, sys
pipes = []
while len(pipes) < 4096:
    r, w = os.pipe()
    pipes.append((r, w))
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    except PermissionError:
        break
r, w = os.pipe()
print(len(pipes), fcntl.fcntl(w, fcntl.F_GETPIPE_SZ), flush=True)
sys.stdin.read()
"""
# Users nothing else here runs as (the other tests run as nobody, and the
# pipe page limit is per user): these tests see their own pages.
PIPE_USER = "daemon"
PIPE_COUNT_USER = "bin"


class DaemonAs(Daemon):
    def __init__(self, user=PIPE_USER, **kw):
        super().__init__(**kw)
        self.user = user

    def config(self, **over):
        return super().config(**over).replace(
            'user = "nobody";', f'user = "{self.user}";', 1)


def pipe_sizes(pid):
    """The size of every pipe pid holds (one entry per fd)."""
    out = []
    d = f"/proc/{pid}/fd"
    for name in os.listdir(d):
        try:
            if not os.readlink(f"{d}/{name}").startswith("pipe:"):
                continue
            fd = os.open(f"{d}/{name}", os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            out.append(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
        finally:
            os.close(fd)
    return sorted(out)


@needs_socks5d
class PipePages(unittest.TestCase):
    def test_pipe_pages_counted_at_start(self):
        """workers.max busy workers that would need more pipe pages than
        fs.pipe-user-pages-soft: one notice at start. A worker's wake-up
        pipe takes one page, its two relay pipes relay.pipe_size each."""
        with open("/proc/sys/fs/pipe-user-pages-soft") as f:
            soft = int(f.read())
        if soft <= 0:
            self.skipTest("no pipe page limit")
        wmax = soft // 33 + 1
        d = DaemonAs(PIPE_COUNT_USER, workers=dict(min_spare=2, max_spare=4, max=wmax),
                     relay_extra=dict(park_after=0))
        try:
            d.start()
            self.assertIsNotNone(d.find(
                rf"pipe-pages-short need={wmax * 33} soft={soft} \(workers.max {wmax} x 33 pages\)"
                r": past about \d+ busy workers new pipes get 2 pages"), d.text())
            w = wait_until(lambda: d.workers_pids(), 10, "a worker")[0]
            sizes = pipe_sizes(w)
            # The wake-up pipe's two ends, the relay pipes' four; the
            # master's wake-up pipe (write end) is the default size.
            self.assertEqual(sizes.count(4096), 2, sizes)
            self.assertGreaterEqual(sizes.count(65536), 4, sizes)
        finally:
            finish_daemon(d)

    @unittest.skipUnless(IS_ROOT, "needs root to run as another user")
    def test_pipe_pages_spent(self):
        """With the workers' user past fs.pipe-user-pages-soft, a pipe comes
        back with 8 KiB: the worker says so once and copies through its
        64 KiB buffer instead of splicing 8 KiB at a time (bench --only
        pipes gives the throughput); many sessions at once all relay their
        bytes intact."""
        uid = pwd.getpwnam(PIPE_USER).pw_uid
        hog = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}",
                                "--clear-groups", "/usr/bin/python3", "-c", PIPE_HOG],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        d = DaemonAs(workers=dict(min_spare=8, max_spare=32, max=32))
        srv = TcpServer(echo_handler)
        try:
            npipes, size = (int(x) for x in hog.stdout.readline().split())
            if size >= 16384:
                self.skipTest(f"a pipe past the limit still gets {size} bytes")
            d.start()
            n, payload = 24, os.urandom(1 << 20)
            results = []
            lock = threading.Lock()

            def client():
                try:
                    s, _ = open_session(("127.0.0.1", d.port), *srv.addr, timeout=30)
                    for _ in range(2):
                        echo_roundtrip(s, payload, timeout=60)
                    s.close()
                    r = True
                except Exception as e:  # noqa: BLE001 - reported below
                    r = e
                with lock:
                    results.append(r)
            threads = [threading.Thread(target=client) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(results, [True] * n)
            small = count(d, rf"worker: pipe-small size={size} asked=65536: "
                             r"the user's pipe pages are spent")
            self.assertGreaterEqual(small, 1, d.text())
            # Once per worker at most, never per session.
            self.assertLessEqual(small, len(d.workers_pids()) + 8, d.text())
            self.assertIsNone(d.find(r"worker-exit .*status=signal"), d.text())
        finally:
            srv.close()
            finish_daemon(d)
            hog.stdin.close()
            hog.wait(10)


if __name__ == "__main__":
    unittest.main()
