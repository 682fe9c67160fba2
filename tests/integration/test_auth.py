"""Username/password logins (RFC 1929) checked by real PAM in the auth
helpers: libpam with pam_wrapper and pam_matrix (see pamtest.py)."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import pamtest
from harness import (DAEMON, IS_ROOT, Daemon, TcpServer, connect_proxy, echo_handler,
                     echo_roundtrip, finish_daemon, local_addr, needs_socks5d,
                     read_reply, recv_exact, request_bytes, wait_closed,
                     wait_until)

USERS = {
    "alice": ("wonderland", pamtest.SERVICE),
    "old": ("timer", "another-service"),        # fails the account stage
    "u" * 255: ("p" * 255, pamtest.SERVICE),    # the longest RFC 1929 allows
    "sleepy": ("zzz", pamtest.SERVICE),
}


def userpass(user, password):
    user = user.encode() if isinstance(user, str) else user
    password = password.encode() if isinstance(password, str) else password
    return bytes([1, len(user)]) + user + bytes([len(password)]) + password


class AuthDaemon(Daemon):
    def __init__(self, methods=("username",), **kw):
        super().__init__(**kw)
        self.methods = list(methods)

    def listeners(self):
        ls = [dict(address="127.0.0.1", port=self.port, methods=self.methods)]
        if self.v6port:
            ls.append(dict(address="::1", port=self.v6port, v6only=True, methods=self.methods))
        return ls


@needs_socks5d
@unittest.skipIf(pamtest.available(DAEMON), pamtest.available(DAEMON))
class AuthBase(unittest.TestCase):
    relay = "splice"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="socks5d-pam-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def start(self, users=USERS, delay_us=0, hang_user=None, auth="", methods=("username",),
              **kw):
        self.pam = pamtest.PamFiles(self.tmp, users, delay_us, hang_user, DAEMON)
        extra = "auth = { helpers = 2; timeout = 3; " + auth + " };\n"
        d = AuthDaemon(methods=methods, relay=self.relay, env=self.pam.env(),
                       extra=extra + kw.pop("extra", ""), **kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def greet(self, d, offer=b"\x02", v6=False):
        s = connect_proxy(("::1", d.v6port) if v6 else ("127.0.0.1", d.port))
        s.sendall(b"\x05" + bytes([len(offer)]) + offer)
        return s

    def login(self, d, user, password, v6=False):
        """Greeting with method 02 and the credentials: (socket, status)."""
        s = self.greet(d, v6=v6)
        self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        s.sendall(userpass(user, password))
        return s, recv_exact(s, 2)

    def connect_echo(self, s):
        s.sendall(request_bytes(*self.echo.addr))
        self.assertEqual(read_reply(s)[1], 0)


class Auth(AuthBase):

    def test_good_login_relays_and_logs_the_user(self):
        d = self.start()
        s, st = self.login(d, "alice", "wonderland")
        with s:
            self.assertEqual(st, b"\x01\x00")
            self.connect_echo(s)
            echo_roundtrip(s, b"logged in")
        f = d.session(local_addr(s))
        self.assertEqual((f["user"], f["cmd"], f["end"]), ("alice", "connect", "client"), f)

    def test_parked_session_keeps_its_user(self):
        d = self.start(relay_extra=dict(park_after=1), debug=True)
        mark = d.mark()
        s, st = self.login(d, "alice", "wonderland")
        with s:
            self.assertEqual(st, b"\x01\x00")
            self.connect_echo(s)
            echo_roundtrip(s, b"before parking")
            me = local_addr(s)
            d.wait_log(r"\bpark client=" + re.escape(f"{me[0]}:{me[1]}") + r" hub=\d+", mark, 10)
            echo_roundtrip(s, b"after parking")
        f = d.session(me, mark)
        self.assertEqual((f["user"], f["method"], f.get("parked")), ("alice", "username", "1"), f)

    def test_wrong_password(self):
        d = self.start()
        mark = d.mark()
        s, st = self.login(d, "alice", "looking-glass")
        with s:
            self.assertEqual(st, b"\x01\x01")
            self.assertEqual(wait_closed(s), b"")
            me = local_addr(s)
        line = d.wait_log(r"auth-fail sid=\d+ client=127\.0\.0\.1:%d user=alice reason=password" % me[1], mark)
        self.assertNotIn("looking-glass", d.text())
        f = d.session(me)
        self.assertEqual((f["user"], f["end"]), ("-", "auth"), f)

    def test_unknown_user(self):
        d = self.start()
        mark = d.mark()
        s, st = self.login(d, "mallory", "x")
        with s:
            self.assertEqual(st, b"\x01\x01")
        d.wait_log(r"auth-fail sid=\d+ client=\S+ user=mallory reason=password", mark)

    def test_account_stage_refuses(self):
        d = self.start()
        mark = d.mark()
        s, st = self.login(d, "old", "timer")
        with s:
            self.assertEqual(st, b"\x01\x01")
        d.wait_log(r"auth-fail sid=\d+ client=\S+ user=old reason=account", mark)

    def test_longest_user_and_password(self):
        d = self.start()
        s, st = self.login(d, "u" * 255, "p" * 255)
        with s:
            self.assertEqual(st, b"\x01\x00")
            self.connect_echo(s)
            echo_roundtrip(s, b"long names")
        self.assertEqual(d.session(local_addr(s))["user"], "u" * 255)

    def test_pipelined_greeting_credentials_request(self):
        d = self.start()
        s = connect_proxy(("127.0.0.1", d.port))
        with s:
            s.sendall(b"\x05\x01\x02" + userpass("alice", "wonderland")
                      + request_bytes(*self.echo.addr) + b"early bytes")
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            self.assertEqual(recv_exact(s, 2), b"\x01\x00")
            self.assertEqual(read_reply(s)[1], 0)
            self.assertEqual(recv_exact(s, 11), b"early bytes")

    def test_password_is_never_logged(self):
        d = self.start(debug=True)
        for pw in ("wonderland", "secret-wrong-1"):
            s, st = self.login(d, "alice", pw)
            s.close()
        wait_until(lambda: len(re.findall(r"\bsession ", d.text())) >= 2, 10, "two session lines")
        self.assertNotIn("wonderland", d.text())
        self.assertNotIn("secret-wrong-1", d.text())


class Methods(AuthBase):

    def test_username_listener_never_picks_none(self):
        d = self.start()
        s = self.greet(d, b"\x00")
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\xff")
            self.assertEqual(wait_closed(s), b"")
        s = self.greet(d, b"\x00\x02")
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")

    def test_order_of_preference(self):
        d = self.start(methods=("none", "username"))
        s = self.greet(d, b"\x02\x00")
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        s = self.greet(d, b"\x02")
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        d2 = self.start(methods=("username", "none"))
        s = self.greet(d2, b"\x00\x02")
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")


    def test_client_rule_chooses_the_methods(self):
        """Browsers cannot send SOCKS credentials: none from one network,
        username from everywhere else."""
        clients = ('clients = (\n'
                   '  { action = "pass"; from = [ "127.0.0.2" ]; methods = [ "none" ]; },\n'
                   '  { action = "pass"; methods = [ "username" ]; }\n);\n')
        d = self.start(methods=("username", "none"), clients=clients)
        s = self.greet(d, b"\x00\x02")
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        s = self.greet(d, b"\x00")
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\xff")
        s = socket.socket()
        s.settimeout(10)
        with s:
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", d.port))
            s.sendall(b"\x05\x02\x00\x02")
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            self.connect_echo(s)
            echo_roundtrip(s, b"no login from 127.0.0.2")


class BadInput(AuthBase):

    def bad(self, d, data, why="protocol"):
        mark = d.mark()
        s = self.greet(d)
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            s.sendall(data)
            self.assertEqual(recv_exact(s, 2), b"\x01\x01")
            self.assertEqual(wait_closed(s), b"")
        return d.wait_log(r"auth-fail sid=\d+ client=\S+ user=\S+ reason=" + why, mark)

    def test_malformed_subnegotiation(self):
        d = self.start()
        self.bad(d, b"\x05\x05alice\x0awonderland")      # VER 05
        self.bad(d, b"\x01\x00\x0awonderland")            # ULEN 0
        self.bad(d, b"\x01\x05alice\x00")                 # PLEN 0
        self.bad(d, b"\x01\x03a\x00b\x02pw")              # NUL in the user
        self.bad(d, request_bytes(*self.echo.addr))       # a request instead

    def test_control_bytes_in_the_user_are_escaped(self):
        d = self.start()
        line = self.bad(d, userpass(b"ev\nil \xff=x", b"pw\n"), "password")
        self.assertIn("user=ev\\x0ail\\x20\\xff\\x3dx reason=password", line)

    def test_client_stops_mid_credentials(self):
        d = self.start(timeouts=dict(negotiate=1))
        s = self.greet(d)
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            s.sendall(b"\x01\x0aali")   # ULEN 10, 3 bytes sent
            self.assertEqual(wait_closed(s, 5), b"")
            me = local_addr(s)
        self.assertEqual(d.session(me)["end"], "timeout")


class Helpers(AuthBase):

    def test_failure_delay_does_not_stall_the_pool(self):
        """50 wrong logins pay pam_faildelay's 2 s in their own workers; a
        right one sent after them is answered while they all still wait."""
        d = self.start(delay_us=2000000, workers=dict(min_spare=8, max_spare=64, max=80))
        wrong = []
        for i in range(50):
            s = self.greet(d)
            wrong.append(s)
        for s in wrong:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            s.sendall(userpass("alice", f"wrong-{id(s)}"))
        s, st = self.login(d, "alice", "wonderland")
        with s:
            self.assertEqual(st, b"\x01\x00")
            ready, _, _ = select.select(wrong, [], [], 0)
            self.assertEqual(ready, [], "a wrong login was answered before the right one")
        for w in wrong:
            with w:
                self.assertEqual(recv_exact(w, 2, 15), b"\x01\x01")

    def test_hanging_module_is_bounded_by_the_timeout(self):
        d = self.start(hang_user="sleepy")
        mark = d.mark()
        t0 = time.monotonic()
        s, st = self.login(d, "sleepy", "zzz")
        with s:
            self.assertEqual(st, b"\x01\x01")
        self.assertLess(time.monotonic() - t0, 3 + 2)
        d.wait_log(r"auth-fail sid=\d+ client=\S+ user=sleepy reason=timeout", mark)
        d.wait_log(r"auth-helper-stuck pid=\d+", mark, 10)
        # The pool still serves logins.
        s, st = self.login(d, "alice", "wonderland")
        s.close()
        self.assertEqual(st, b"\x01\x00")

    def test_one_worker_after_a_timeout(self):
        # A worker keeps its reply socket pair from one login to the next;
        # after a timeout (the stuck helper holds the pair's other end) it
        # makes a new one, and keeps no more descriptors than before.
        d = self.start(hang_user="sleepy", workers=dict(min_spare=1, max_spare=1, max=1))
        for _ in range(2):
            s, st = self.login(d, "alice", "wonderland")
            s.close()
            self.assertEqual(st, b"\x01\x00")
        worker = wait_until(lambda: d.workers_pids(), 10, "the worker")[0]
        # (It may still hold the last client's socket: at most this many.)
        fds = len(os.listdir(f"/proc/{worker}/fd"))
        mark = d.mark()
        s, st = self.login(d, "sleepy", "zzz")
        s.close()
        self.assertEqual(st, b"\x01\x01")
        d.wait_log(r"auth-fail sid=\d+ client=\S+ user=sleepy reason=timeout", mark)
        for _ in range(3):
            s, st = self.login(d, "alice", "wonderland")
            s.close()
            self.assertEqual(st, b"\x01\x00")
        self.assertEqual(d.workers_pids(), [worker], "the same worker")
        wait_until(lambda: len(os.listdir(f"/proc/{worker}/fd")) <= fds, 5,
                   f"the worker back at {fds} descriptors or fewer")
        d.wait_log(r"auth-helper-stuck pid=\d+", mark, 10)

    @unittest.skipUnless(IS_ROOT, "finding the helper needs its /proc entries")
    def test_helper_killed_mid_request(self):
        d = self.start(hang_user="sleepy")
        mark = d.mark()
        s = self.greet(d)
        with s:
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            s.sendall(userpass("sleepy", "zzz"))
            busy = wait_until(lambda: [p for p in d.helper_pids() if d.has_child_named(p, "sleep")],
                              5, "a helper running the hanging module")
            os.kill(busy[0], signal.SIGKILL)
            self.assertEqual(recv_exact(s, 2, 2), b"\x01\x01")
        d.wait_log(r"auth-fail sid=\d+ client=\S+ user=sleepy reason=helper", mark)
        wait_until(lambda: len(d.helper_pids()) == 2, 10, "the helper replaced")
        s, st = self.login(d, "alice", "wonderland")
        s.close()
        self.assertEqual(st, b"\x01\x00")

    @unittest.skipUnless(IS_ROOT, "uids are only switched as root")
    def test_workers_are_not_root_and_have_no_capabilities(self):
        d = self.start()
        pids = wait_until(lambda: d.workers_pids(), 10, "workers")
        for pid in pids:
            with open(f"/proc/{pid}/status") as f:
                st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
            self.assertNotIn("0", st["Uid"].split(), st["Uid"])
            for cap in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
                if cap == "CapBnd":
                    continue
                self.assertEqual(int(st[cap].strip(), 16), 0, (pid, cap, st[cap]))
            self.assertEqual(st["NoNewPrivs"].strip(), "1")
        self.assertEqual(len(d.helper_pids()), 2)


class Clients(AuthBase):

    def test_curl_proxy_user(self):
        if not shutil.which("curl"):
            self.skipTest("curl not installed")
        from harness import HttpServer
        body = os.urandom(100000)
        web = HttpServer(body)
        self.addCleanup(web.close)
        url = f"http://127.0.0.1:{web.port}/file"
        d = self.start()
        for proxy in (["--proxy", f"socks5://127.0.0.1:{d.port}", "--proxy-user", "alice:wonderland"],
                      ["--proxy", f"socks5h://alice:wonderland@127.0.0.1:{d.port}"]):
            r = subprocess.run(["curl", "-sS", "--max-time", "10"] + proxy + [url],
                               capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, body)
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--proxy",
                            f"socks5h://alice:nope@127.0.0.1:{d.port}", url],
                           capture_output=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)

    def test_pysocks_with_credentials(self):
        import socks
        d = self.start()
        s = socks.socksocket()
        s.set_proxy(socks.SOCKS5, "127.0.0.1", d.port, username="alice", password="wonderland")
        s.settimeout(10)
        with s:
            s.connect(self.echo.addr)
            echo_roundtrip(s, b"pysocks")
        s = socks.socksocket()
        s.set_proxy(socks.SOCKS5, "127.0.0.1", d.port, username="alice", password="bad")
        s.settimeout(10)
        with s:
            with self.assertRaises(socks.ProxyError):
                s.connect(self.echo.addr)

    def test_ncat_proxy_auth(self):
        if not shutil.which("ncat"):
            self.skipTest("ncat not installed")
        d = self.start()
        r = subprocess.run(["ncat", "--proxy", f"127.0.0.1:{d.port}", "--proxy-type", "socks5",
                            "--proxy-auth", "alice:wonderland", "-w", "10",
                            self.echo.addr[0], str(self.echo.addr[1])],
                           input=b"through ncat\n", capture_output=True, timeout=20)
        self.assertEqual(r.stdout, b"through ncat\n", r.stderr)


class Cache(AuthBase):

    def logins(self, d, n, pw="wonderland"):
        for _ in range(n):
            s, st = self.login(d, "alice", pw)
            s.close()
            self.assertEqual(st, b"\x01\x00" if pw == "wonderland" else b"\x01\x01")

    def test_off_every_login_asks_pam(self):
        d = self.start()
        self.logins(d, 5)
        self.assertEqual(self.pam.pam_runs(), 5)

    def test_on_a_good_login_is_remembered(self):
        d = self.start(auth="cache_ttl = 60; cache_watch = [ \"%s\" ];" % os.path.join(self.tmp, "passdb"))
        self.logins(d, 5)
        self.assertEqual(self.pam.pam_runs(), 1)
        # A wrong password is never taken from the cache.
        self.logins(d, 1, "wrong")
        self.assertEqual(self.pam.pam_runs(), 2)

    def test_changed_password_stops_matching_at_once(self):
        d = self.start(auth="cache_ttl = 60; cache_watch = [ \"%s\" ];" % os.path.join(self.tmp, "passdb"))
        self.logins(d, 2)
        self.assertEqual(self.pam.pam_runs(), 1)
        users = dict(USERS, alice=("new-password", pamtest.SERVICE))
        self.pam.write_users(users)
        s, st = self.login(d, "alice", "wonderland")
        s.close()
        self.assertEqual(st, b"\x01\x01", "the old password still worked from the cache")
        s, st = self.login(d, "alice", "new-password")
        s.close()
        self.assertEqual(st, b"\x01\x00")

    def status(self, d, user, pw):
        s, st = self.login(d, user, pw)
        s.close()
        return st

    def test_every_change_of_the_file_stops_matching(self):
        # The helpers learn of changes from inotify: a file replaced by
        # rename is a new inode, watched afresh, so the second and third
        # changes count as much as the first; and a file rewritten in place.
        passdb = os.path.join(self.tmp, "passdb")
        d = self.start(auth="cache_ttl = 60; cache_watch = [ \"%s\" ];" % passdb)
        old = "wonderland"
        for new in ("second", "third"):
            self.assertEqual(self.status(d, "alice", old), b"\x01\x00")
            self.assertEqual(self.status(d, "alice", old), b"\x01\x00")
            self.pam.write_users(dict(USERS, alice=(new, pamtest.SERVICE)))
            self.assertEqual(self.status(d, "alice", old), b"\x01\x01",
                             f"{old!r} still worked from the cache")
            old = new
        self.assertEqual(self.status(d, "alice", old), b"\x01\x00")
        runs = self.pam.pam_runs()
        self.assertEqual(self.status(d, "alice", old), b"\x01\x00")
        self.assertEqual(self.pam.pam_runs(), runs, "not taken from the cache")
        with open(passdb, "r+") as f:
            text = f.read().replace(f"alice:{old}:", "alice:fourth:")
            f.seek(0)
            f.write(text)
            f.truncate()
        self.assertEqual(self.status(d, "alice", old), b"\x01\x01",
                         "the file rewritten in place went unnoticed")
        self.assertEqual(self.status(d, "alice", "fourth"), b"\x01\x00")

    def test_watched_file_that_appears_later(self):
        # A watched file missing at start is watched through its directory.
        extra = os.path.join(self.tmp, "appears-later")
        d = self.start(auth="cache_ttl = 60; cache_watch = [ \"%s\", \"%s\" ];"
                       % (os.path.join(self.tmp, "passdb"), extra))
        self.logins(d, 2)
        runs = self.pam.pam_runs()
        with open(extra, "w") as f:
            f.write("x\n")
        self.logins(d, 1)
        self.assertEqual(self.pam.pam_runs(), runs + 1, "the new file did not count")

    def test_entries_expire(self):
        d = self.start(auth="cache_ttl = 1; cache_watch = [ \"%s\" ];" % os.path.join(self.tmp, "passdb"))
        self.logins(d, 1)
        self.assertEqual(self.pam.pam_runs(), 1)
        # Log in until PAM is asked again: the entry expired.
        wait_until(lambda: self.logins(d, 1) or self.pam.pam_runs() >= 2, 10,
                   "the cached entry to expire", interval=0.2)
        self.assertEqual(self.pam.pam_runs(), 2)


FILTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "packaging", "fail2ban", "filter.d", "socks5d.conf")


class Fail2ban(AuthBase):

    def syslog_file(self, d, mark):
        """The daemon's auth-fail lines as rsyslog writes them to a file:
        its timestamp and host before the message the daemon logged."""
        path = os.path.join(self.tmp, "syslog")
        with open(path, "w") as f:
            for line in d.text(mark).splitlines():
                m = re.match(r"socks5d\[(\d+)\](?: \S+)?: (.*)$", line)
                if m and m.group(2).startswith(("auth-fail", "session ")):
                    f.write(time.strftime("%b %e %H:%M:%S") +
                            f" testhost socks5d[{m.group(1)}]: {m.group(2)}\n")
        return path

    @unittest.skipUnless(shutil.which("fail2ban-regex"), "fail2ban is not installed")
    def test_filter_matches_the_client_failures(self):
        d = self.start(v6=True, hang_user="sleepy")
        mark = d.mark()
        for user, pw, v6 in (("alice", "bad1", False), ("mallory", "x", True),
                             ("old", "timer", False), ("alice", "wonderland", False)):
            s, _ = self.login(d, user, pw, v6)
            s.close()
        s = self.greet(d)
        with s:
            recv_exact(s, 2)
            s.sendall(b"\x05\x05alice\x02pw")   # protocol
            recv_exact(s, 2)
        s, st = self.login(d, "sleepy", "zzz")   # timeout: not the client's doing
        s.close()
        self.assertEqual(st, b"\x01\x01")
        wait_until(lambda: len(re.findall(r"auth-fail", d.text(mark))) >= 5, 10, "five auth-fail lines")
        log = self.syslog_file(d, mark)
        # The shipped filter as installed: beside fail2ban's common.conf.
        fdir = os.path.join(self.tmp, "filter.d")
        os.makedirs(fdir)
        shutil.copy(FILTER, fdir)
        shutil.copy("/etc/fail2ban/filter.d/common.conf", fdir)
        r = subprocess.run(["fail2ban-regex", "--print-all-matched", log,
                            os.path.join(fdir, "socks5d.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(int(m.group(3)), 4, r.stdout)   # bad1, mallory (IPv6), old, protocol
        self.assertIn("::1", r.stdout)
        self.assertIn("127.0.0.1", r.stdout)
        self.assertNotIn("reason=timeout", r.stdout.split("Missed line")[0] if "Missed line" in r.stdout else "")


class AuthCopy(Auth):
    relay = "copy"
