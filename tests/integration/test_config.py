"""socks5d -t (configuration check) and -v: exit status and `FILE:LINE:` errors."""

import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from harness import (config_text, Daemon, echo_handler, echo_roundtrip,
                     finish_daemon, needs_socks5d, open_session, run_daemon_cmd,
                     SANITIZER_MARKERS, TcpServer)

# A good file, one setting per line, so that a test can break one line and
# know which line number the error must name.
GOOD = """\
user = "nobody";
workers = { min_spare = 2; max_spare = 4; max = 16; max_sessions = 1000; };
timeouts = { negotiate = 10; connect = 10; idle = 600; shutdown = 5; };
log = { facility = "daemon"; level = "info"; };
relay = { mode = "splice"; };
listeners = (
  { address = "127.0.0.1"; port = 1080; methods = [ "none" ]; },
  { address = "::1"; port = 1081; methods = [ "none" ]; v6only = true; }
);
clients = ( { action = "pass"; from = [ "127.0.0.0/8", "::1" ]; } );
rules = ( { action = "pass"; } );
"""
LINES = GOOD.splitlines()


def replace_line(n, text):
    """GOOD with line n (1-based) replaced by text."""
    lines = list(LINES)
    lines[n - 1] = text
    return "\n".join(lines) + "\n"


def insert_line(n, text):
    """GOOD with text inserted as line n."""
    lines = list(LINES)
    lines.insert(n - 1, text)
    return "\n".join(lines) + "\n"


# (test name, file text, line the error must name)
BAD = [
    ("unknown_key", insert_line(2, "colour = \"blue\";"), 2),
    ("unknown_key_in_group", replace_line(3, "timeouts = { negotiate = 10; connect = 10; idle = 600; shutdown = 5; bogus = 1; };"), 3),
    ("wrong_type", replace_line(2, 'workers = { min_spare = "two"; max_spare = 4; max = 16; max_sessions = 1000; };'), 2),
    ("wrong_type_port", replace_line(7, '  { address = "127.0.0.1"; port = "1080"; methods = [ "none" ]; },'), 7),
    ("bad_address", replace_line(7, '  { address = "127.0.0.256"; port = 1080; methods = [ "none" ]; },'), 7),
    ("bad_address_v6", replace_line(8, '  { address = "::1::2"; port = 1081; methods = [ "none" ]; v6only = true; }'), 8),
    ("bad_client_cidr", replace_line(10, 'clients = ( { action = "pass"; from = [ "127.0.0.0/33", "::1" ]; } );'), 10),
    ("min_spare_gt_max_spare", replace_line(2, "workers = { min_spare = 8; max_spare = 4; max = 16; max_sessions = 1000; };"), 2),
    ("max_lt_min_spare", replace_line(2, "workers = { min_spare = 2; max_spare = 4; max = 1; max_sessions = 1000; };"), 2),
    ("port_zero", replace_line(7, '  { address = "127.0.0.1"; port = 0; methods = [ "none" ]; },'), 7),
    ("port_too_big", replace_line(7, '  { address = "127.0.0.1"; port = 65536; methods = [ "none" ]; },'), 7),
    ("timeout_zero", replace_line(3, "timeouts = { negotiate = 0; connect = 10; idle = 600; shutdown = 5; };"), 3),
    ("timeout_negative", replace_line(3, "timeouts = { negotiate = 10; connect = -1; idle = 600; shutdown = 5; };"), 3),
    ("unknown_user", replace_line(1, 'user = "no-such-user-socks5d-it";'), 1),
    ("unknown_facility", replace_line(4, 'log = { facility = "nosuchfacility"; level = "info"; };'), 4),
    ("unknown_level", replace_line(4, 'log = { facility = "daemon"; level = "chatty"; };'), 4),
    ("unknown_relay_mode", replace_line(5, 'relay = { mode = "teleport"; };'), 5),
    ("unknown_method", replace_line(7, '  { address = "127.0.0.1"; port = 1080; methods = [ "carrier-pigeon" ]; },'), 7),
    ("syntax_error", replace_line(5, 'relay = { mode = = "splice"; };'), 5),
]


class ConfigBase(unittest.TestCase):
    """A temporary directory for files to check with socks5d -t."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="socks5d-it-conf-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, text, name="socks5d.conf"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, path):
        r = run_daemon_cmd(["-t", "-f", path])
        for m in SANITIZER_MARKERS:
            self.assertNotIn(m, r.stderr, "sanitizer report")
        return r


@needs_socks5d
class ConfigCheck(ConfigBase):

    def test_good_file(self):
        path = self.write(GOOD)
        r = self.check(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{path}: configuration OK", r.stderr)

    def test_generated_file(self):
        # The harness's own generator must produce a file -t accepts.
        path = self.write(config_text([dict(address="127.0.0.1", port=1080),
                                       dict(address="::1", port=1081, v6only=True)],
                                      relay="copy"))
        r = self.check(path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_missing_file(self):
        path = os.path.join(self.tmp, "absent.conf")
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(path, r.stderr)

    def test_reports_every_error(self):
        # STYLE.md: "Config errors are file:line: message, all of them, not
        # just the first" (two semantic errors on lines 1 and 5).
        text = replace_line(5, 'relay = { mode = "teleport"; };')
        text = text.replace('user = "nobody";', 'user = "no-such-user-socks5d-it";')
        path = self.write(text)
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{path}:1:", r.stderr)
        self.assertIn(f"{path}:5:", r.stderr)

    def test_version(self):
        r = run_daemon_cmd(["-v"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout + r.stderr, r"\d+\.\d+")

    def test_long_options(self):
        r = run_daemon_cmd(["--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^socks5d \d+\.\d+")
        r = run_daemon_cmd(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in ("--config", "--test", "--foreground", "--debug", "--version", "--help"):
            self.assertIn(opt, r.stdout)
        r = run_daemon_cmd(["--no-such-option"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage:", r.stderr)
        path = self.write("\n".join(LINES) + "\n")
        for argv in (["--test", "--config", path], ["--test", f"--config={path}"],
                     ["-t", "-f", path]):
            r = run_daemon_cmd(argv)
            self.assertEqual(r.returncode, 0, (argv, r.stderr))
            self.assertIn(f"{path}: configuration OK", r.stderr, argv)


@needs_socks5d
class ConfigFileChecks(ConfigBase):
    """Include cycles, integers beyond 32 bits, and what start would refuse."""

    def errors(self, r):
        return [l for l in r.stderr.splitlines() if l and "warning:" not in l]

    def test_include_cycle_is_one_error_fast(self):
        path = self.write('@include "socks5d.conf"\n' * 3)
        t0 = time.monotonic()
        r = self.check(path)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(self.errors(r), [
            f"{path}:1: include cycle: {path} -> {self.tmp}/socks5d.conf"], r.stderr)
        self.assertLess(elapsed, 5, "the check follows the cycle")

    def test_include_cycle_two_files(self):
        self.write('# b\n@include "a.conf"\n', "b.conf")
        path = self.write(GOOD + '@include "b.conf"\n', "a.conf")
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(self.errors(r), [
            f"{self.tmp}/b.conf:2: include cycle: {path} -> {self.tmp}/b.conf"
            f" -> {self.tmp}/a.conf"], r.stderr)

    def test_integers_beyond_32_bits(self):
        # Kept in 32 bits by libconfig, 4294968376 would read as 1080.
        text = replace_line(7, '  { address = "127.0.0.1"; port = 4294968376; methods = [ "none" ]; },')
        text = text.replace("max_sessions = 1000;", "max_sessions = 4294967297;")
        text = text.replace('rules = ( { action = "pass"; } );',
                            'rules = ( { action = "pass"; ports = ( 4294967376 ); } );')
        path = self.write(text)
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(self.errors(r), [
            f"{path}:2: workers.max_sessions = 4294967297 is out of range (0..2000000000)",
            f"{path}:7: listener.port = 4294968376 is out of range (1..65535)",
            f"{path}:11: ports: 4294967376 is out of range (1..65535)"], r.stderr)

    def test_listener_in_use_by_running_daemon(self):
        """Checking the file of a running daemon (before a reload) passes:
        its listeners being in use is a warning, not an error."""
        d = Daemon().start()
        self.addCleanup(finish_daemon, d)
        r = self.check(d.conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, re.escape(f"{d.conf}:") + r"\d+: warning: "
                         + re.escape(f"listener 127.0.0.1:{d.port}: bind: ")
                         + "Address already in use")
        self.assertIn("configuration OK", r.stderr)
        self.assertTrue(d.alive())
        # Nothing was started: the daemon still gets every client.
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        for _ in range(20):
            c, _ = open_session(("127.0.0.1", d.port), *echo.addr)
            with c:
                echo_roundtrip(c, b"still served")

    def test_listener_address_not_local(self):
        # 192.0.2.1 (TEST-NET-1) is on no interface: bind fails as at start.
        path = self.write(replace_line(7, '  { address = "192.0.2.1"; port = 1080; methods = [ "none" ]; },'))
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{path}:7: listener 192.0.2.1:1080: bind: Cannot assign requested address",
                      r.stderr)

    def test_listener_in_included_file(self):
        self.write('# listeners\nlisteners = ( { address = "192.0.2.1"; port = 1080; } );\n',
                   "listeners.conf")
        text = "\n".join(l for l in LINES[:5] + LINES[9:]) + '\n@include "listeners.conf"\n'
        path = self.write(text)
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{self.tmp}/listeners.conf:2: listener 192.0.2.1:1080: bind: ",
                      r.stderr)

    def test_workers_limits(self):
        path = self.write(replace_line(2, "workers = { min_spare = 2; max_spare = 32; max = 16; max_sessions = 1000; };"))
        r = self.check(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{path}:2: warning: workers.max_spare (32) is above workers.max (16)",
                      r.stderr)


@needs_socks5d
class ReloadChecks(unittest.TestCase):
    """SIGHUP with a file -t refuses leaves the running configuration."""

    def reload_fails(self, text, want):
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        d = Daemon().start()
        self.addCleanup(finish_daemon, d)
        with open(d.conf, "w") as f:
            f.write(text(d))
        mark = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload-failed", mark, 10)
        errors = [l for l in d.text(mark).splitlines() if "config-error " in l]
        self.assertEqual(len(errors), 1, d.text(mark))
        self.assertIn(want(d), errors[0])
        self.assertTrue(d.alive())
        s, _ = open_session(("127.0.0.1", d.port), *echo.addr)
        with s:
            echo_roundtrip(s, b"still serving")
        self.assertEqual(d.stop(), 0)

    def test_sighup_include_cycle_keeps_serving(self):
        self.reload_fails(
            lambda d: d.config() + '@include "socks5d.conf"\n' * 3,
            lambda d: f"config-error {d.conf}:{d.config().count(chr(10)) + 1}: include cycle: ")

    def test_sighup_wrapped_port_keeps_serving(self):
        self.reload_fails(
            lambda d: d.config(workers=dict(max_sessions=4294967297)),
            lambda d: "workers.max_sessions = 4294967297 is out of range")


def _make_bad(name, text, line):
    def test(self):
        path = self.write(text)
        r = self.check(path)
        self.assertEqual(r.returncode, 1, f"exit {r.returncode}, stderr: {r.stderr!r}")
        self.assertRegex(r.stderr, re.escape(f"{path}:{line}:") + r" \S",
                         f"want an error naming {path}:{line}:, file:\n{text}")
        self.assertNotIn("configuration OK", r.stderr)
    test.__name__ = f"test_bad_{name}"
    return test


for _name, _text, _line in BAD:
    setattr(ConfigCheck, f"test_bad_{_name}", _make_bad(_name, _text, _line))
