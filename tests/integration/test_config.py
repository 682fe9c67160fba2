"""socks5d -t (configuration check) and -v: exit status and `FILE:LINE:` errors."""

import os
import re
import shutil
import tempfile
import unittest

from harness import config_text, needs_socks5d, run_daemon_cmd, SANITIZER_MARKERS

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


@needs_socks5d
class ConfigCheck(unittest.TestCase):

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
