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

from harness import (Daemon, Pattern, TcpServer, Thread, echo_handler,
                     echo_roundtrip, finish_daemon, local_addr, needs_socks5d,
                     open_session, parse_kv, recv_hash, wait_until)
import harness
import pwd
import re
import shutil


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


def kv_lines(text, kind):
    """The key=value fields of every line of text that starts with kind."""
    return [parse_kv(l[len(kind) + 1:]) for l in text.splitlines()
            if l.startswith(kind + " ")]


METRIC_LINE = re.compile(r'^(socks5d_[a-z_]+)(\{[a-z]+="[a-z_]+"\})? (\d+)$')


def parse_metrics(text):
    """{(name, labels): value}; fails on any line that is not a HELP or
    TYPE comment or a sample of a metric that has both."""
    helped, typed, samples = set(), {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge"), line
            typed[name] = kind
        else:
            m = METRIC_LINE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert m.group(1) in helped and m.group(1) in typed, line
            samples[(m.group(1), m.group(2) or "")] = int(m.group(3))
    return samples, typed


@needs_socks5d
class Control(unittest.TestCase):
    """socks5d status, status --metrics and reload, through the control
    socket (control.socket: each test daemon has its own)."""

    def setUp(self):
        if harness.IS_MICROSOCKS:
            self.skipTest("socks5d only")
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def status(self, d):
        r = d.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_status_shows_pool_live_session_and_totals(self):
        d = self.start(workers=dict(min_spare=2, max_spare=4))
        out = self.status(d)
        daemon = kv_lines(out, "daemon")[0]
        self.assertEqual(daemon["pid"], str(d.pid))
        self.assertEqual(daemon["generation"], "1")
        pool = kv_lines(out, "pool")[0]
        self.assertGreaterEqual(int(pool["workers"]), 2)
        self.assertEqual(pool["hubs"], "1")
        self.assertEqual(kv_lines(out, "totals")[0]["sessions"], "0")
        s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with s:
            echo_roundtrip(s, b"x" * 1000)
            client = "%s:%d" % local_addr(s)

            def listed():
                for sess in kv_lines(self.status(d), "session"):
                    if sess["client"] == client and sess["up"] == "1000":
                        return sess
                return None
            sess = wait_until(listed, 10, "the session in the status")
            self.assertEqual(sess["cmd"], "connect")
            self.assertEqual(sess["dst"], "%s:%d" % self.echo.addr)
            self.assertEqual(sess["down"], "1000")
            self.assertEqual(sess["user"], "-")
            self.assertEqual(sess["parked"], "0")
        d.session(local_addr(s))

        def counted():
            t = kv_lines(self.status(d), "totals")[0]
            return t if t["sessions"] == "1" else None
        t = wait_until(counted, 10, "the ended session in the totals")
        self.assertEqual((t["up"], t["down"]), ("1000", "1000"))
        self.assertEqual(kv_lines(self.status(d), "session"), [])

    def test_parked_session_is_counted(self):
        d = self.start(relay_extra=dict(park_after=1))
        s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with s:
            echo_roundtrip(s, b"ping")
            wait_until(lambda: kv_lines(self.status(d), "pool")[0]["parked"] == "1",
                       15, "one parked session in the pool line")
            client = "%s:%d" % local_addr(s)
            # Listed by its hub, with the bytes as of the hub's last scan.
            echo_roundtrip(s, b"more bytes")

            def listed():
                for sess in kv_lines(self.status(d), "session"):
                    if sess["client"] == client and sess["up"] == "14":
                        return sess
                return None
            sess = wait_until(listed, 10, "the parked session listed with its bytes")
            self.assertEqual((sess["parked"], sess["cmd"], sess["down"]), ("1", "connect", "14"))
            self.assertEqual(sess["dst"], "%s:%d" % self.echo.addr)
            self.assertIn(sess["pid"], [str(p) for p in d.children()])
            samples, _ = parse_metrics(d.ctl("status", "--metrics").stdout)
            self.assertEqual(samples[("socks5d_live_sessions", '{state="parked"}')], 1)
            self.assertEqual(samples[("socks5d_parked_total", "")], 1)
        wait_until(lambda: kv_lines(self.status(d), "pool")[0]["parked"] == "0",
                   15, "no parked session once it ended")

    def test_metrics_are_prometheus_text(self):
        d = self.start(workers=dict(min_spare=2, max_spare=4))
        s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with s:
            echo_roundtrip(s, b"abc")
        d.session(local_addr(s))

        def ended():
            r = d.ctl("status", "--metrics")
            self.assertEqual(r.returncode, 0, r.stderr)
            samples, typed = parse_metrics(r.stdout)
            if samples.get(("socks5d_sessions_total", '{end="client"}')) == 1:
                return samples, typed
            return None
        samples, typed = wait_until(ended, 10, "the ended session in the metrics")
        # A real Prometheus parser reads the same text.
        from prometheus_client.parser import text_string_to_metric_families
        text = d.ctl("status", "--metrics").stdout
        families = {f.name: f for f in text_string_to_metric_families(text)}
        # No two metrics share a family (a gauge foo beside a counter
        # foo_total would).
        self.assertEqual(len(families), text.count("# TYPE "))
        # The client library names a counter without its _total suffix.
        self.assertEqual(families["socks5d_sessions"].type, "counter")
        got = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for s in families["socks5d_sessions"].samples}
        self.assertEqual(got[("socks5d_sessions_total", (("end", "client"),))], 1)
        self.assertEqual(families["socks5d_workers"].type, "gauge")
        self.assertIn("socks5d_bytes", families)
        self.assertEqual(typed["socks5d_sessions_total"], "counter")
        self.assertEqual(typed["socks5d_workers"], "gauge")
        self.assertEqual(samples[("socks5d_bytes_total", '{direction="up"}')], 3)
        self.assertEqual(samples[("socks5d_generation", "")], 1)
        self.assertGreaterEqual(samples[("socks5d_workers", '{state="idle"}')], 1)
        self.assertEqual(samples[("socks5d_hubs", "")], 1)

    def test_reload_reports_result(self):
        d = self.start()
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^reload generation=2 config=")
        d.wait_log(r"\breload generation=2")
        d.write_config(workers=dict(max=0))
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(d.conf + ":", r.stderr)
        self.assertIn("reload-failed", r.stderr)
        self.assertEqual(kv_lines(self.status(d), "daemon")[0]["generation"], "2")
        # A file that libconfig cannot parse: the socket is named.
        with open(d.conf, "a") as f:
            f.write("\nthis is ( not libconfig\n")
        r = d.ctl("-S", d.control_path, "reload")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(d.conf) + r":\d+: ")

    def test_reloads_lose_no_session_with_data_in_flight(self):
        """Four echo sessions move 24 MiB each way while the daemon is
        reloaded three times (SIGHUP, socks5d reload, SIGHUP with the other
        relay mode): every byte comes back, hash-checked, and every
        session ends as the client ended it."""
        d = self.start(workers=dict(min_spare=4, max_spare=8))
        pats = [Pattern(24 << 20, seed=100 + i) for i in range(4)]
        started = [threading.Event() for _ in pats]
        socks = []
        for _ in pats:
            s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
            s.settimeout(60)
            socks.append(s)
            self.addCleanup(s.close)

        def send(s, pat, ev):
            for i, c in enumerate(pat.chunks(256 << 10)):
                s.sendall(c)
                if i == 1:
                    ev.set()
            s.shutdown(socket.SHUT_WR)
        senders = [Thread(send, s, p, e) for s, p, e in zip(socks, pats, started)]
        readers = [Thread(recv_hash, s) for s in socks]
        for t in senders + readers:
            t.start()
        for e in started:
            self.assertTrue(e.wait(30), "a transfer did not start")
        mark = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_log(r"\breload generation=2", mark)
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        d.relay = "copy"
        d.write_config()
        d.signal(signal.SIGHUP)
        d.wait_log(r"\breload generation=4", mark)
        for t, pat in zip(readers, pats):
            self.assertEqual(t.join_result(120), (pat.length, pat.sha256()))
        for t in senders:
            t.join_result(60)
        for s in socks:
            addr = local_addr(s)
            s.close()
            line = d.session(addr)
            self.assertEqual((line["up"], line["down"], line["end"]),
                             (str(24 << 20), str(24 << 20), "client"))
        self.assertNotIn("reload-failed", d.text(mark))

    def test_socket_root_only_and_removed_at_exit(self):
        d = self.start()
        st = os.stat(d.control_path)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")

            def drop():
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            r = subprocess.run([harness.DAEMON, "--control", d.control_path, "status"],
                               capture_output=True, text=True, timeout=15,
                               preexec_fn=drop, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 1)
            self.assertIn("Permission denied", r.stderr)
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(d.control_path))
        r = d.ctl("status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("is socks5d running", r.stderr)

    def test_bad_command_line_and_no_socket(self):
        d = Daemon()
        d.control_path = ""
        d.start()
        self.addCleanup(finish_daemon, d)
        r = d.ctl("status", "--bogus")
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage:", r.stderr)
        r = d.ctl("status")
        self.assertEqual(r.returncode, 1)
        self.assertIn('control.socket is ""', r.stderr)


@needs_socks5d
class Accounting(unittest.TestCase):
    """Session ids on every line of a session, log.interim's
    session-update lines (from the worker and, once parked, from the hub)
    and log.session_start's line."""

    def setUp(self):
        if harness.IS_MICROSOCKS:
            self.skipTest("socks5d only")
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def test_interim_lines_in_worker_and_hub_then_the_session_line(self):
        d = self.start(log_extra=dict(interim=1), relay_extra=dict(park_after=2))
        s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        me = "%s:%d" % local_addr(s)
        with s:
            echo_roundtrip(s, b"x" * 300)
            pat = r"\bsession-update sid=(\d+) client=%s .* up=300 down=300 secs=\S+" % re.escape(me)
            first = d.wait_log(pat + r"$", 0, 10)
            sid = re.search(r"sid=(\d+)", first).group(1)
            self.assertIn("cmd=connect", first)
            self.assertNotIn("end=", first)
            # Parked after 2 s: the hub goes on with parked=1.
            parked = d.wait_log(pat + r" parked=1$", 0, 15)
            self.assertIn(f"sid={sid} ", parked)
            echo_roundtrip(s, b"y" * 11)
            d.wait_log(r"\bsession-update sid=%s .* up=311 down=311 .*parked=1$" % sid, 0, 10)
        f = d.session(local_addr(s))
        self.assertEqual((f["sid"], f["up"], f["parked"]), (sid, "311", "1"))

    def test_busy_session_still_gets_interim_lines(self):
        """A session that moves bytes all the time is not idle once: the
        worker's loop checks the interim on every pass."""
        d = self.start(log_extra=dict(interim=1))
        s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with s:
            me = "%s:%d" % local_addr(s)
            mark = d.mark()

            def updated():
                echo_roundtrip(s, b"z" * 1000)
                return d.find(r"\bsession-update sid=\d+ client=%s " % re.escape(me), mark)
            wait_until(updated, 10, "a session-update line while bytes move", interval=0)

    def test_session_start_and_ids(self):
        d = self.start(log_extra=dict(session_start="true"))
        ids = []
        for _ in range(3):
            s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
            me = "%s:%d" % local_addr(s)
            with s:
                line = d.wait_log(r"\bsession-start sid=\d+ client=%s " % re.escape(me))
                self.assertRegex(line, r"cmd=connect dst=%s addr=%s rule=1 secs=0$" %
                                 (re.escape("%s:%d" % self.echo.addr),
                                  re.escape("%s:%d" % self.echo.addr)))
                echo_roundtrip(s, b"q")
            f = d.session(local_addr(s))
            self.assertIn(f"sid={f['sid']} ", line)
            ids.append(int(f["sid"]))
        self.assertEqual(len(set(ids)), 3, ids)
        self.assertEqual(ids, sorted(ids))

    def test_bad_log_settings_are_errors(self):
        d = Daemon(log_extra=dict(interim=-1, session_start=3))
        d.write_config()
        self.addCleanup(shutil.rmtree, d.tmp, True)
        r = subprocess.run([harness.DAEMON, "-t", "-f", d.conf], capture_output=True,
                           text=True, timeout=15, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(d.conf) + r":\d+: .*log\.interim")
        self.assertIn("log.session_start must be true or false", r.stderr)


if __name__ == "__main__":
    unittest.main()
