"""Logs cannot be forged: every byte a client controls that reaches a log
line (the name in a CONNECT, BIND or UDP ASSOCIATE request, the RFC 1929
user name) is escaped as log_escape does (printable ASCII but space, '"',
'\\' and '=' kept, anything else \\xHH), so a newline, a control byte, a
byte that is not UTF-8 or a fake key=value cannot make a line of its own
or a field of its own. Each test asserts the exact escaped text and that
no line of the injected text appears. The daemon logs at debug level, so
the debug lines that name the destination are checked too."""

import re
import unittest

import pamtest
from harness import (DAEMON, Daemon, connect_proxy, finish_daemon,
                     needs_socks5d, read_reply, recv_exact, request_bytes,
                     wait_closed)

FORGED = b"FORGED sid=1 client=192.0.2.1:1 user=root"


def escaped(raw):
    """What log_escape (log.c) makes of raw: the expected log text."""
    out = []
    for c in raw:
        if 0x20 < c < 0x7f and c not in b'"\\=':
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


class EscapeBase(unittest.TestCase):
    def assert_not_forged(self, d, mark):
        """No line since mark starts with, or holds, the injected text
        raw (a forged line or a forged field)."""
        for line in d.text(mark).splitlines():
            self.assertNotIn("FORGED sid", line, line)
            self.assertFalse(re.match(r"^\s*FORGED", line), line)
            self.assertNotIn("\x1b", line, repr(line))
            self.assertNotIn("\r", line, repr(line))
            self.assertNotIn("\ufffd", line, repr(line))  # undecodable bytes

    def one_session_line(self, d, mark, pattern):
        d.wait_log(pattern, mark, 10)
        lines = [l for l in d.text(mark).splitlines() if re.search(pattern, l)]
        self.assertEqual(len(lines), 1, lines)
        return lines[0]


@needs_socks5d
class RequestNames(EscapeBase):
    """The DST name of each command: the session line's dst= field (and
    the debug lines that name it)."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(level="debug").start()

    @classmethod
    def tearDownClass(cls):
        finish_daemon(cls.d)

    def request(self, name, cmd, port=80):
        """Sends a request for name; returns (the expected dst text, the
        client's address), after the session has ended."""
        mark = self.d.mark()
        s = connect_proxy(("127.0.0.1", self.d.port))
        with s:
            s.sendall(b"\x05\x01\x00")
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            s.sendall(request_bytes(name, port, cmd=cmd))
            me = s.getsockname()
            if cmd == 3:
                read_reply(s)   # the association lives until we close
            else:
                wait_closed(s)
        dst = escaped(name) + ":%d" % port
        cmdname = {1: "connect", 2: "bind", 3: "udp"}[cmd]
        line = self.one_session_line(
            self.d, mark, r"\bsession sid=\d+ client=127\.0\.0\.1:%d " % me[1])
        self.assertIn(" cmd=%s dst=%s addr=" % (cmdname, dst), line)
        self.assert_not_forged(self.d, mark)
        return line

    def test_connect_name_with_newline(self):
        line = self.request(b"a.test\n" + FORGED, 1)
        self.assertIn(r"dst=a.test\x0aFORGED\x20sid\x3d1\x20client\x3d192.0.2.1:1"
                      r"\x20user\x3droot:80 ", line)

    def test_connect_name_with_control_bytes(self):
        line = self.request(b"x\r\x1b[31m\t\x7f\x01\x08y", 1)
        self.assertIn(r"dst=x\x0d\x1b[31m\x09\x7f\x01\x08y:80 ", line)

    def test_connect_name_not_utf8(self):
        line = self.request(b"\xff\xfe\xc3(.test", 1)
        self.assertIn(r"dst=\xff\xfe\xc3(.test:80 ", line)

    def test_connect_name_utf8_is_escaped_too(self):
        line = self.request("é.test".encode(), 1)
        self.assertIn(r"dst=\xc3\xa9.test:80 ", line)

    def test_connect_name_with_fake_fields(self):
        line = self.request(b'a b="c" rep=00 \\x41', 1)
        self.assertIn(r"dst=a\x20b\x3d\x22c\x22\x20rep\x3d00\x20\x5cx41:80 ", line)
        self.assertEqual(len(re.findall(r"\brep=", line)), 1, line)

    def test_bind_name_with_newline(self):
        line = self.request(b"b.test\n" + FORGED, 2, port=21)
        self.assertIn(r"dst=b.test\x0aFORGED\x20sid", line)

    def test_udp_name_with_newline(self):
        line = self.request(b"u.test\r\n" + FORGED, 3, port=53)
        self.assertIn(r"dst=u.test\x0d\x0aFORGED\x20sid", line)


def userpass(user, password):
    return bytes([1, len(user)]) + user + bytes([len(password)]) + password


@needs_socks5d
@unittest.skipIf(pamtest.available(DAEMON), pamtest.available(DAEMON))
class UserNames(EscapeBase):
    """The RFC 1929 user name of a failed login: the auth-fail line's
    user= field (the session line says user=-: only a name that logged in
    is the session's user, and it goes through the same log_escape)."""

    def setUp(self):
        import shutil
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="socks5d-pam-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        pam = pamtest.PamFiles(self.tmp, {"alice": ("wonderland", pamtest.SERVICE)},
                               0, None, DAEMON)

        class UserDaemon(Daemon):
            def listeners(self):
                return [dict(address="127.0.0.1", port=self.port, methods=["username"])]
        self.d = UserDaemon(env=pam.env(), level="debug",
                            extra="auth = { helpers = 1; timeout = 3; };\n").start()
        self.addCleanup(finish_daemon, self.d)

    def login_fails(self, user):
        mark = self.d.mark()
        s = connect_proxy(("127.0.0.1", self.d.port))
        with s:
            s.sendall(b"\x05\x01\x02")
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            s.sendall(userpass(user, b"wrong"))
            self.assertEqual(recv_exact(s, 2), b"\x01\x01")
            me = s.getsockname()
            wait_closed(s)
        fail = self.one_session_line(
            self.d, mark, r"\bauth-fail sid=\d+ client=127\.0\.0\.1:%d " % me[1])
        self.assertIn(" user=%s reason=password" % escaped(user), fail)
        session = self.one_session_line(
            self.d, mark, r"\bsession sid=\d+ client=127\.0\.0\.1:%d " % me[1])
        # A name that did not log in is not the session's user.
        self.assertIn(" method=username user=- cmd=", session)
        self.assert_not_forged(self.d, mark)
        return fail

    def test_user_with_newline(self):
        line = self.login_fails(b"bob\n" + FORGED)
        self.assertIn(r"user=bob\x0aFORGED\x20sid\x3d1\x20client\x3d192.0.2.1:1"
                      r"\x20user\x3droot reason=password", line)

    def test_user_with_control_bytes(self):
        line = self.login_fails(b"\x1b]0;x\x07\rbob")
        self.assertIn(r"user=\x1b]0;x\x07\x0dbob reason=password", line)

    def test_user_not_utf8(self):
        line = self.login_fails(b"\xc0\xafbob\xff")
        self.assertIn(r"user=\xc0\xafbob\xff reason=password", line)

    def test_user_with_fake_fields(self):
        line = self.login_fails(b"bob reason=ok")
        self.assertIn(r"user=bob\x20reason\x3dok reason=password", line)
        self.assertEqual(len(re.findall(r"\breason=", line)), 1, line)
