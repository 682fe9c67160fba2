"""Least privilege: what workers and hubs hold (/proc/PID/status), the
seccomp filter (a forbidden call kills the process and the master says
which role died and why), `sandbox = false`, and configuration files that
others could change (refused unless --allow-unsafe-config)."""

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import unittest

import pamtest
from harness import (DAEMON, IS_ROOT, Daemon, TcpServer, echo_handler, echo_roundtrip,
                     finish_daemon, needs_netns, needs_socks5d, open_session,
                     run_daemon_cmd,
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


DNS_NAME = "dns-only.socks5d.test"


class DnsServer:
    """A name server on 127.0.0.1:53 of the test's namespace that knows one
    name: A 127.0.0.1, AAAA none. Counts the queries it answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self.queries = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            self.sock.sendto(self.answer(q), peer)

    def answer(self, q):
        qid, qd_end = q[:2], 12
        while q[qd_end] != 0:
            qd_end += q[qd_end] + 1
        name = b".".join(self.labels(q[12:qd_end])).decode().lower()
        qtype = struct.unpack("!H", q[qd_end + 1:qd_end + 3])[0]
        question = q[12:qd_end + 5]
        known = name == DNS_NAME
        answers = b""
        if known and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + \
                socket.inet_aton("127.0.0.1")
        self.queries += 1
        rcode = 0 if known else 3
        return qid + struct.pack("!HHHHH", 0x8180 | rcode, 1, 1 if answers else 0, 0, 0) \
            + question + answers

    @staticmethod
    def labels(raw):
        i = 0
        while i < len(raw):
            n = raw[i]
            yield raw[i + 1:i + 1 + n]
            i += 1 + n

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@needs_socks5d
@needs_netns
class NameService(unittest.TestCase):
    """getaddrinfo in a filtered worker with NSS files and dns: a name
    that only the namespace's name server knows is resolved (the filter
    allows the reads of nsswitch.conf, hosts, resolv.conf, gai.conf, the
    UDP sockets and sendmmsg of the stub resolver, the netlink socket of
    the address sorting) and the session relays."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="socks5d-dns-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)
        for name, text in (("nsswitch.conf", "hosts: files dns\n"),
                           ("resolv.conf", "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")):
            path = os.path.join(self.tmp, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
            subprocess.run(["mount", "--bind", path, "/etc/" + name], check=True)
            self.addCleanup(subprocess.run, ["umount", "/etc/" + name], check=True)
        self.dns = DnsServer()
        self.addCleanup(self.dns.close)
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def test_name_from_dns_under_the_filter(self):
        d = Daemon().start()
        self.addCleanup(finish_daemon, d)
        mark = d.mark()
        s, rep = open_session(("127.0.0.1", d.port), DNS_NAME, self.echo.addr[1])
        with s:
            echo_roundtrip(s, b"resolved by dns")
        self.assertGreaterEqual(self.dns.queries, 1, "the name server was asked")
        line = d.wait_log(r"\bsession .*dst=%s:%d " % (re.escape(DNS_NAME), self.echo.addr[1]),
                          mark, 10)
        self.assertIn(" addr=127.0.0.1:%d rule=1 rep=0 " % self.echo.addr[1], line)
        self.assertIsNone(d.find(r"signal=SIGSYS", mark))


@needs_socks5d
@unittest.skipUnless(IS_ROOT, "needs root (root-owned parents)")
class UnsafeReload(unittest.TestCase):
    def test_reload_of_a_file_made_unsafe_is_refused(self):
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        d = Daemon().start()
        self.addCleanup(finish_daemon, d)
        mark = d.mark()
        os.chmod(d.conf, 0o664)
        d.signal(signal.SIGHUP)
        d.wait_log(r"config-error %s: cannot read: unsafe file: writable by its group "
                   r"\(mode 0664\)" % re.escape(d.conf), mark, 15)
        d.wait_log(r"reload-failed config=%s: still serving generation 1" % re.escape(d.conf),
                   mark, 15)
        s, _ = open_session(("127.0.0.1", d.port), *echo.addr)
        with s:
            echo_roundtrip(s, b"generation 1 serves on")
