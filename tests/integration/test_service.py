"""Running under a service manager: systemd's readiness protocol
(sd_notify: READY, RELOADING, STOPPING, STATUS) and the pid file (-p).
The notify socket is a datagram socket of the test's own, named in
NOTIFY_SOCKET as systemd would."""

import os
import signal
import socket
import subprocess
import tempfile
import threading
import unittest

from harness import (Daemon, finish_daemon, needs_socks5d, wait_until)
import harness


class NotifySocket:
    """A datagram socket that collects what the daemon sends (one message
    per datagram, newline-separated assignments)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="socks5d-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)  # so that the reader sees close() soon
        self.closing = False
        self.messages = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.closing:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            with self.cond:
                self.messages.append(data.decode())
                self.cond.notify_all()

    def assignments(self):
        with self.cond:
            return [a for m in self.messages for a in m.split("\n") if a]

    def wait_for(self, value, after=0, timeout=15, prefix=False):
        """Index (in assignments()) of the first `value` (or, with prefix,
        of an assignment that starts with it) at or after index `after`."""
        def found():
            a = self.assignments()
            for i in range(after, len(a)):
                if a[i] == value or (prefix and a[i].startswith(value)):
                    return i + 1
            return None
        return wait_until(found, timeout, f"{value!r} on the notify socket") - 1

    def close(self):
        self.closing = True
        self.thread.join(5)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.rmdir(self.dir)


@needs_socks5d
class Notify(unittest.TestCase):
    def setUp(self):
        if harness.IS_MICROSOCKS:
            self.skipTest("socks5d only")
        self.ns = NotifySocket()
        self.addCleanup(self.ns.close)

    def start(self, **kw):
        d = Daemon(env={"NOTIFY_SOCKET": self.ns.path}, **kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def test_ready_status_reload_stop(self):
        d = self.start()
        ready = self.ns.wait_for("READY=1")
        # READY only once a worker accepts: a client is served at once.
        self.assertIsNotNone(d.find(r"\bstart "))
        status = self.ns.wait_for("STATUS=", prefix=True)
        self.assertRegex(self.ns.assignments()[status],
                         r"^STATUS=generation 1: \d+ workers \(\d+ busy\), 1 hubs, \d+ auth helpers$")
        d.signal(signal.SIGHUP)
        reloading = self.ns.wait_for("RELOADING=1", after=ready + 1)
        a = self.ns.assignments()
        self.assertTrue(a[reloading + 1].startswith("MONOTONIC_USEC="), a)
        again = self.ns.wait_for("READY=1", after=reloading)
        d.wait_log(r"\breload generation=2")
        self.ns.wait_for("STATUS=generation 2:", after=again, prefix=True)
        self.assertEqual(d.stop(), 0)
        self.ns.wait_for("STOPPING=1", after=again)

    def test_failed_reload_is_ready_again(self):
        d = self.start()
        ready = self.ns.wait_for("READY=1")
        with open(d.conf, "a") as f:
            f.write("\nnot valid libconfig (\n")
        d.signal(signal.SIGHUP)
        d.wait_log(r"\breload-failed ")
        reloading = self.ns.wait_for("RELOADING=1", after=ready + 1)
        self.ns.wait_for("READY=1", after=reloading)

    def test_without_notify_socket_nothing_changes(self):
        d = Daemon().start()
        self.addCleanup(finish_daemon, d)
        d.signal(signal.SIGHUP)
        d.wait_log(r"\breload generation=2")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(self.ns.assignments(), [])


@needs_socks5d
class Pidfile(unittest.TestCase):
    def setUp(self):
        if harness.IS_MICROSOCKS:
            self.skipTest("socks5d only")
        self.dir = tempfile.mkdtemp(prefix="socks5d-pid-")
        self.path = os.path.join(self.dir, "socks5d.pid")

    def tearDown(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def read_pid(self):
        with open(self.path) as f:
            text = f.read()
        self.assertRegex(text, r"^\d+\n$")
        return int(text)

    def test_written_locked_and_removed(self):
        d = Daemon(args=["-p", self.path]).start()
        self.addCleanup(finish_daemon, d)
        self.assertEqual(self.read_pid(), d.pid)
        # A second daemon with the same pid file refuses to start and
        # names the running one.
        other = Daemon(args=["-p", self.path])
        other.write_config()
        rc = subprocess.run([harness.DAEMON, "-F", "-f", other.conf, "-p", self.path],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=15, env=dict(os.environ, **harness.SANITIZER_ENV))
        self.assertEqual(rc.returncode, 1, rc.stderr)
        self.assertIn(f"held by pid {d.pid}", rc.stderr.decode())
        self.assertEqual(self.read_pid(), d.pid, "the running daemon's file is untouched")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(self.path), "removed at exit")

    def test_stale_file_is_taken_over(self):
        with open(self.path, "w") as f:
            f.write("999999\n")
        d = Daemon(args=["--pidfile", self.path]).start()
        self.addCleanup(finish_daemon, d)
        self.assertEqual(self.read_pid(), d.pid)
        # Workers do not hold the lock: with the master gone (SIGKILL, its
        # workers still finishing), a new master can take the file.
        d.remember_children()
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(10)
        new = Daemon(args=["-p", self.path])
        self.addCleanup(finish_daemon, new)
        new.start()
        self.assertEqual(self.read_pid(), new.pid)

    def test_unwritable_pidfile_is_an_error(self):
        d = Daemon()
        d.write_config()
        bad = os.path.join(self.dir, "missing", "socks5d.pid")
        rc = subprocess.run([harness.DAEMON, "-F", "-f", d.conf, "-p", bad],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=15, env=dict(os.environ, **harness.SANITIZER_ENV))
        self.assertEqual(rc.returncode, 1, rc.stderr)
        self.assertIn(f"pidfile {bad}: No such file or directory", rc.stderr.decode())
        os.unlink(d.conf)
        os.rmdir(d.tmp)


if __name__ == "__main__":
    unittest.main()
