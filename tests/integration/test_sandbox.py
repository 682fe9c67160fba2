"""Least privilege: what workers and hubs hold (/proc/PID/status), the
seccomp filter (a forbidden call kills the process and the master says
which role died and why), `sandbox = false`, and configuration files that
others could change (refused unless --allow-unsafe-config)."""

import os
import pwd
import shutil
import signal
import stat
import tempfile
import unittest

import pamtest
from harness import (DAEMON, IS_ROOT, Daemon, TcpServer, echo_handler, echo_roundtrip,
                     finish_daemon, needs_socks5d, open_session, run_daemon_cmd,
                     wait_until)

SIGSYS_EXIT = r"status=signal:%d signal=SIGSYS reason=seccomp" % signal.SIGSYS


def proc_status(pid):
    """The fields of /proc/PID/status as a dict of strings."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


@needs_socks5d
class Privileges(unittest.TestCase):
    """A worker and a hub of a default daemon: no root, no capabilities at
    all, no_new_privs, filter mode 2 (seccomp filter), not dumpable."""

    def setUp(self):
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def roles(self, d):
        worker = wait_until(lambda: (d.workers_pids() or [None])[0], 10, "a worker")
        hub = wait_until(lambda: (d.hub_pids() or [None])[0], 10, "a hub")
        return {"worker": worker, "hub": hub}

    def assert_unprivileged(self, d, seccomp):
        d.wait_log(r"\bsandbox (on|off)\b", 0, 5)
        # Sanitizer builds stay dumpable (LeakSanitizer ptraces at exit).
        dumpable = pamtest.daemon_has_asan(DAEMON)
        for role, pid in self.roles(d).items():
            st = proc_status(pid)
            with self.subTest(role=role, pid=pid):
                if IS_ROOT:
                    self.assertTrue(all(u != "0" for u in st["Uid"].split()), st["Uid"])
                    self.assertTrue(all(g != "0" for g in st["Gid"].split()), st["Gid"])
                    self.assertEqual(int(st["CapBnd"], 16), 0, "bounding set")
                for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                    self.assertEqual(int(st[cap], 16), 0, cap)
                self.assertEqual(st["NoNewPrivs"], "1")
                self.assertEqual(st["Seccomp"], "2" if seccomp else "0")
                # Not dumpable: the kernel makes the files of /proc/PID/
                # root's (a dumpable process owns them).
                owner = os.stat(f"/proc/{pid}/status").st_uid
                if IS_ROOT and not dumpable:
                    self.assertEqual(owner, 0, "/proc/PID/status is root's: not dumpable")
                elif IS_ROOT:
                    self.assertNotEqual(owner, 0, "dumpable (sanitizer build)")
        s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with s:
            echo_roundtrip(s, b"still serves")

    def test_worker_and_hub_hold_nothing(self):
        d = self.start()
        line = d.wait_log(r"\bsandbox on: workers and hubs: seccomp filter", 0, 5)
        self.assertIn("no capabilities, empty bounding set, no_new_privs, "
                      + ("dumpable (sanitizer build)" if pamtest.daemon_has_asan(DAEMON)
                         else "not dumpable"), line)
        self.assert_unprivileged(d, seccomp=True)

    def test_sandbox_false_turns_only_the_filter_off(self):
        d = self.start(extra="sandbox = false;\n")
        d.wait_log(r"\bsandbox off: workers and hubs run without a seccomp "
                   r"filter \(sandbox = false\)", 0, 5)
        self.assert_unprivileged(d, seccomp=False)


@needs_socks5d
class ForbiddenCall(unittest.TestCase):
    """SOCKS5D_TEST_FORBIDDEN_CALL=ROLE makes each process of that role
    call personality(2) right after its filter is loaded: the kernel kills
    it with SIGSYS and the master's exit line names the role and why."""

    def start(self, role, **kw):
        d = Daemon(env={"SOCKS5D_TEST_FORBIDDEN_CALL": role}, **kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def test_forbidden_call_kills_a_worker(self):
        d = self.start("worker")
        line = d.wait_log(r"worker-exit pid=\d+ generation=1 " + SIGSYS_EXIT, 0, 10)
        self.assertRegex(line, r"status=signal:31 signal=SIGSYS reason=seccomp( |$)")
        self.assertTrue(d.alive(), "the master lives on")

    def test_forbidden_call_kills_a_hub(self):
        d = self.start("hub")
        d.wait_log(r"hub-exit pid=\d+ generation=1 " + SIGSYS_EXIT
                   + r": its parked sessions are lost", 0, 10)
        self.assertTrue(d.alive(), "the master lives on")

    def test_without_the_filter_the_same_call_is_harmless(self):
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        d = self.start("worker", extra="sandbox = false;\n")
        s, _ = open_session(("127.0.0.1", d.port), *echo.addr)
        with s:
            echo_roundtrip(s, b"no filter, no kill")
        self.assertIsNone(d.find(r"signal=SIGSYS"))


GOOD = """user = "nobody";
listeners = ( { address = "127.0.0.1"; port = 1080; } );
clients = ( { action = "pass"; from = [ "127.0.0.0/8" ]; } );
rules = ( { action = "pass"; } );
"""


@needs_socks5d
@unittest.skipUnless(IS_ROOT, "needs root (chown, and root-owned parents)")
class UnsafeConfig(unittest.TestCase):
    """sshd's StrictModes for the configuration: the file, its includes and
    every directory above them must be root's (or ours) and writable by
    nobody else; a directory with the sticky bit (/tmp) is fine."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="socks5d-unsafe-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, text, name="socks5d.conf", mode=0o644, where=None):
        path = os.path.join(where or self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def check(self, path, *more):
        return run_daemon_cmd(["-t", "-f", path, *more])

    def assert_refused(self, path, message):
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(message, r.stderr)
        self.assertIn("(--allow-unsafe-config reads it anyway)", r.stderr)
        ok = self.check(path, "--allow-unsafe-config")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("configuration OK", ok.stderr)

    def test_safe_file_is_read(self):
        r = self.check(self.write(GOOD))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_world_writable_file(self):
        path = self.write(GOOD, mode=0o666)
        self.assert_refused(path, f"{path}: cannot read: unsafe file: "
                                  "writable by others (mode 0666)")

    def test_group_writable_file(self):
        path = self.write(GOOD, mode=0o664)
        self.assert_refused(path, f"{path}: cannot read: unsafe file: "
                                  "writable by its group (mode 0664)")

    def test_file_of_another_user(self):
        path = self.write(GOOD)
        nobody = pwd.getpwnam("nobody").pw_uid
        os.chown(path, nobody, -1)
        self.assert_refused(path, f"{path}: cannot read: unsafe file: "
                                  f"owned by uid {nobody} (neither root nor us)")

    def test_directory_others_can_write(self):
        sub = os.path.join(self.tmp, "open")
        os.mkdir(sub)
        os.chmod(sub, 0o777)
        path = self.write(GOOD, where=sub)
        self.assert_refused(path, f"{path}: cannot read: unsafe directory {sub}: "
                                  "writable by others (mode 0777)")

    def test_directory_of_another_user(self):
        sub = os.path.join(self.tmp, "theirs")
        os.mkdir(sub, 0o755)
        nobody = pwd.getpwnam("nobody").pw_uid
        os.chown(sub, nobody, -1)
        path = self.write(GOOD, where=sub)
        self.assert_refused(path, f"{path}: cannot read: unsafe directory {sub}: "
                                  f"owned by uid {nobody} (neither root nor us)")

    def test_sticky_directory_is_safe(self):
        sub = os.path.join(self.tmp, "sticky")
        os.mkdir(sub)
        os.chmod(sub, 0o1777)
        r = self.check(self.write(GOOD, where=sub))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_unsafe_include_names_its_line(self):
        inc = self.write("# included\n", name="inc.conf", mode=0o646)
        path = self.write(GOOD + '@include "inc.conf"\n')
        line = GOOD.count("\n") + 1
        self.assert_refused(path, f'{path}:{line}: @include "{inc}": unsafe file: '
                                  "writable by others (mode 0646)")

    def unsafe_daemon(self, **kw):
        """A Daemon whose file is mode 0666 each time it is written."""
        d = Daemon(**kw)
        self.addCleanup(finish_daemon, d)
        write = d.write_config

        def write_unsafe(*a, **k):
            write(*a, **k)
            os.chmod(d.conf, 0o666)
        d.write_config = write_unsafe
        return d

    def test_daemon_does_not_start_on_an_unsafe_file(self):
        d = self.unsafe_daemon()
        with self.assertRaises(AssertionError):
            d.start(timeout=10)
        d.reader.join(5)
        self.assertEqual(d.proc.returncode, 1)
        self.assertIn(f"config-error {d.conf}: cannot read: unsafe file: "
                      "writable by others (mode 0666)", d.text())

    def test_daemon_started_with_the_switch_reloads_too(self):
        d = self.unsafe_daemon(args=["--allow-unsafe-config"])
        d.start()
        self.assertEqual(stat.S_IMODE(os.stat(d.conf).st_mode), 0o666)
        mark = d.mark()
        d.write_config()
        d.signal(signal.SIGHUP)
        d.wait_log(r"\breload\b.*generation=2", mark, 15)
        self.assertIsNone(d.find(r"config-error", mark))
