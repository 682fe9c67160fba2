"""The outgoing source address (`external`), the client rules and the
request rules: a blocked client is closed before a byte is read, a block
rule answers 02 and names itself in the log, a refused name is never
looked up, a name that resolves into a blocked network is refused, `self`
covers this host's own addresses, users and groups match PAM logins, and
no match refuses (fail closed)."""

import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import pamtest
from harness import (DAEMON, IN_NETNS, finish_daemon, Daemon, TcpServer,
                     closed_port, connect_proxy, echo_handler, echo_roundtrip,
                     free_port, local_addr, needs_netns, needs_socks5d,
                     open_session, read_reply, recv_exact, request_bytes,
                     wait_closed, wait_until)


@needs_socks5d
class PolicyBase(unittest.TestCase):

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(self.finish, d)
        return d

    def finish(self, d):
        finish_daemon(d)

    def request(self, d, host, port, proxy=None):
        """Greets and sends a CONNECT; returns (REP, the session's fields)."""
        s = connect_proxy(proxy or ("127.0.0.1", d.port))
        with s:
            s.sendall(b"\x05\x01\x00")
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            s.sendall(request_bytes(host, port))
            rep = read_reply(s)[1]
            if rep != 0:
                self.assertEqual(wait_closed(s), b"")
            fields = d.session(s.getsockname(), 0, 10)
        return rep, fields


class External(PolicyBase):

    def test_outgoing_connections_use_the_external_addresses(self):
        echo4 = TcpServer(echo_handler)
        self.addCleanup(echo4.close)
        echo6 = TcpServer(echo_handler, host="::1")
        self.addCleanup(echo6.close)
        d = self.start(extra='external = [ "127.0.0.2", "::1" ];\n')
        s, (raw, rep, atyp, host, port) = open_session(("127.0.0.1", d.port), *echo4.addr)
        with s:
            echo_roundtrip(s, b"from the external address")
            # The target sees the configured source; the reply's BND says it.
            self.assertEqual(host, "127.0.0.2")
            wait_until(lambda: ("127.0.0.2", port) in echo4.peers, 5,
                       f"target to see 127.0.0.2:{port} (saw {echo4.peers})")
        s, (raw, rep, atyp, host, port) = open_session(("127.0.0.1", d.port), *echo6.addr)
        with s:
            echo_roundtrip(s, b"over IPv6")
            self.assertEqual((atyp, host), (4, "::1"))


class Rules(PolicyBase):

    RULES = ('rules = (\n'
             '  { action = "block"; to = [ "127.0.0.3" ]; },\n'
             '  { action = "block"; ports = ( "1-1023" ); },\n'
             '  { action = "pass"; to = [ "127.0.0.0/8", "::1" ]; commands = [ "connect" ]; }\n'
             ');\n')

    def test_block_rule_answers_02_and_is_logged(self):
        echo = TcpServer(echo_handler, host="127.0.0.1")
        self.addCleanup(echo.close)
        d = self.start(rules=self.RULES)
        rep, fields = self.request(d, "127.0.0.3", echo.port)
        self.assertEqual(rep, 2)
        self.assertEqual((fields["rule"], fields["end"], fields["addr"]),
                         ("1", "refused", "-"), fields)
        rep, fields = self.request(d, "127.0.0.1", 80)
        self.assertEqual((rep, fields["rule"]), (2, "2"), fields)
        # The pass rule lets the rest through.
        s, _ = open_session(("127.0.0.1", d.port), *echo.addr)
        with s:
            me = s.getsockname()
            echo_roundtrip(s, b"allowed")
        self.assertEqual(d.session(me, 0, 10)["rule"], "3")

    def test_no_match_refuses(self):
        d = self.start(rules='rules = ( { action = "pass"; to = [ "10.0.0.0/8" ]; } );\n')
        rep, fields = self.request(d, "127.0.0.1", 9)
        self.assertEqual((rep, fields["rule"], fields["end"]), (2, "0", "refused"), fields)

    @needs_netns
    def test_refused_name_is_not_looked_up(self):
        # Were the name looked up, ".invalid" would answer 04 (host
        # unreachable); refused before the lookup, it answers 02.
        d = self.start(rules='rules = ( { action = "block"; } );\n')
        rep, fields = self.request(d, "nothing.invalid", 80)
        self.assertEqual((rep, fields["end"]), (2, "refused"), fields)
        d2 = self.start(rules='rules = ( { action = "pass"; ports = ( 443 ); } );\n')
        rep, fields = self.request(d2, "nothing.invalid", 80)
        self.assertEqual(rep, 2, "no rule passes port 80: no lookup")
        rep, fields = self.request(d2, "nothing.invalid", 443)
        self.assertEqual(rep, 4, "a rule may pass port 443: looked up, not found")

    def test_rule_names_and_embedded_ipv4(self):
        rules = ('rules = (\n'
                 '  { action = "block"; name = "loopback"; to = [ "127.0.0.0/8" ]; },\n'
                 '  { action = "pass"; }\n'
                 ');\n')
        d = self.start(rules=rules)
        for host in ("127.0.0.1", "::ffff:127.0.0.1", "::127.0.0.1",
                     "64:ff9b::7f00:1", "2002:7f00:1::"):
            rep, fields = self.request(d, host, 80)
            self.assertEqual((rep, fields["rule"], fields["end"]),
                             (2, "loopback", "refused"), (host, fields))

    def test_ipv6_destinations(self):
        echo6 = TcpServer(echo_handler, host="::1")
        self.addCleanup(echo6.close)
        rules = ('rules = (\n'
                 '  { action = "block"; to = [ "::1" ]; ports = [ %d ]; },\n'
                 '  { action = "pass"; to = [ "::/0" ]; }\n'
                 ');\n' % echo6.port)
        d = self.start(rules=rules)
        rep, fields = self.request(d, "::1", echo6.port)
        self.assertEqual((rep, fields["rule"]), (2, "1"), fields)
        rep, fields = self.request(d, "::1", closed_port("::1"))
        self.assertEqual((rep, fields["rule"]), (5, "2"), fields)
        # An IPv4 destination is not in ::/0: no rule passes it.
        rep, fields = self.request(d, "127.0.0.1", 80)
        self.assertEqual((rep, fields["rule"]), (2, "0"), fields)

    def test_port_ranges(self):
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        p = echo.port
        rules = ('rules = (\n'
                 f'  {{ action = "block"; ports = ( "{p - 1}-{p + 1}", 7 ); }},\n'
                 f'  {{ action = "pass"; ports = ( "{p}-{p}", "1-65535" ); }}\n'
                 ');\n')
        d = self.start(rules=rules)
        rep, fields = self.request(d, "127.0.0.1", p)
        self.assertEqual((rep, fields["rule"]), (2, "1"), fields)
        rep, fields = self.request(d, "127.0.0.1", 7)
        self.assertEqual((rep, fields["rule"]), (2, "1"), fields)
        far = p + 2 if p < 65000 else p - 2
        rep, fields = self.request(d, "127.0.0.1", far)
        self.assertEqual(fields["rule"], "2", fields)

    @needs_netns
    def test_name_resolving_into_blocked_network_is_refused(self):
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        rules = ('rules = (\n'
                 '  { action = "block"; name = "local"; to = [ "127.0.0.0/8", "::1" ]; },\n'
                 '  { action = "pass"; name = "test-names"; to = [ ".socks5d.test" ]; }\n'
                 ');\n')
        d = self.start(rules=rules)
        for name in ("v4only.socks5d.test", "dual.socks5d.test", "V6ONLY.Socks5d.Test"):
            rep, fields = self.request(d, name, echo.port)
            self.assertEqual((rep, fields["rule"], fields["end"]),
                             (2, "local", "refused"), (name, fields))
        # The same name passes by its name when its address is not blocked.
        d2 = self.start(rules='rules = ( { action = "pass"; name = "by-name"; '
                              'to = [ "v4only.socks5d.test" ]; } );\n')
        s, _ = open_session(("127.0.0.1", d2.port), "v4only.socks5d.test", echo.port)
        with s:
            me = local_addr(s)
            echo_roundtrip(s, b"by name")
        self.assertEqual(d2.session(me)["rule"], "by-name")
        # The literal address is no name: no rule passes it.
        rep, fields = self.request(d2, "127.0.0.1", echo.port)
        self.assertEqual((rep, fields["rule"]), (2, "0"), fields)

    @needs_netns
    def test_many_rules_first_match_through_the_index(self):
        """Lists of 8 rules or more are matched through the index
        (rules_index.c): the verdicts and the rule named are those of the
        rules tried in order, for addresses, embedded IPv4, ports, names
        before resolution and the addresses a name resolves to."""
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        filler = "".join(
            f'  {{ action = "block"; name = "f{i}"; to = [ "10.{i}.0.0/16", '
            f'"host{i}.example.invalid", ".d{i}.invalid" ]; }},\n'
            for i in range(1, 21))
        rules = ('rules = (\n' + filler +
                 '  { action = "block"; name = "b3"; to = [ "127.0.0.3" ]; },\n'
                 '  { action = "block"; name = "low"; ports = ( "1-1023" ); },\n'
                 '  { action = "pass"; name = "by-name"; to = [ "v4only.socks5d.test" ]; },\n'
                 '  { action = "block"; name = "local"; to = [ "127.0.0.0/8", "::1" ]; },\n'
                 '  { action = "pass"; name = "rest"; }\n'
                 ');\n')
        clients = ('clients = (\n' + "".join(
            f'  {{ action = "block"; from = [ "10.{i}.0.0/16" ]; }},\n'
            for i in range(1, 10)) +
            '  { action = "pass"; from = [ "127.0.0.0/8", "::1" ]; }\n);\n')
        d = self.start(rules=rules, clients=clients)
        p = echo.port
        for host, port, rule in (
                ("127.0.0.3", p, "b3"), ("::ffff:127.0.0.3", p, "b3"),
                ("64:ff9b::7f00:3", p, "b3"), ("127.0.0.1", 80, "low"),
                ("127.0.0.1", p, "local"), ("::1", p, "local"),
                ("dual.socks5d.test", p, "local"), ("10.5.0.1", p, "f5"),
                ("10.20.255.255", p, "f20"), ("host7.example.invalid", p, "f7"),
                ("x.y.D9.invalid", p, "f9"), ("host7.example.invalid", 80, "f7")):
            rep, fields = self.request(d, host, port)
            self.assertEqual((rep, fields["rule"], fields["end"]),
                             (2, rule, "refused"), (host, port, fields))
        s, _ = open_session(("127.0.0.1", d.port), "v4only.socks5d.test", p)
        with s:
            me = local_addr(s)
            echo_roundtrip(s, b"through the index")
        self.assertEqual(d.session(me)["rule"], "by-name")

    def test_log_false_keeps_the_line_out_of_info(self):
        echo = TcpServer(echo_handler)
        self.addCleanup(echo.close)
        rules = ('rules = (\n'
                 f'  {{ action = "pass"; name = "quiet"; ports = [ {echo.port} ]; log = false; }},\n'
                 '  { action = "block"; name = "loud"; }\n'
                 ');\n')
        # One worker: the quiet session's line, had it been written, comes
        # before the next session's.
        d = self.start(rules=rules, workers=dict(min_spare=1, max_spare=1, max=1))
        mark = d.mark()
        s, _ = open_session(("127.0.0.1", d.port), *echo.addr)
        with s:
            quiet = local_addr(s)
            echo_roundtrip(s, b"not logged")
        rep, fields = self.request(d, "127.0.0.1", 9)
        self.assertEqual((rep, fields["rule"]), (2, "loud"), fields)
        self.assertIsNone(d.find(r"client=127\.0\.0\.1:%d " % quiet[1], mark), d.text(mark))


@needs_socks5d
class Clients(PolicyBase):

    def test_blocked_client_is_closed_before_negotiation(self):
        d = self.start(clients='clients = ( { action = "block"; name = "nobody-here"; '
                               'from = [ "127.0.0.0/8" ]; } );\n')
        s = connect_proxy(("127.0.0.1", d.port))
        with s:
            # The listener hands over a client once it has sent something
            # (TCP_DEFER_ACCEPT); the rule is checked before it is read:
            # no method selection comes back, only the close.
            s.sendall(b"\x05\x01\x00")
            self.assertEqual(wait_closed(s), b"")
            me = local_addr(s)
        f = d.session(me)
        self.assertEqual((f["rule"], f["end"], f["method"]), ("nobody-here", "refused", "-"), f)

    def test_listener_key(self):
        other = free_port()
        clients = ('clients = (\n'
                   f'  {{ action = "block"; listeners = [ "127.0.0.1:{other}" ]; }},\n'
                   '  { action = "pass"; }\n'
                   ');\n')
        d = self.start(clients=clients,
                       extra_listeners=[dict(address="127.0.0.1", port=other)])
        s = connect_proxy(("127.0.0.1", other))
        with s:
            s.sendall(b"\x05\x01\x00")
            self.assertEqual(wait_closed(s), b"")
            me = local_addr(s)
        self.assertEqual(d.session(me)["rule"], "1")
        rep, fields = self.request(d, "127.0.0.1", closed_port())
        self.assertEqual((rep, fields["rule"]), (5, "1"), fields)


@needs_socks5d
@needs_netns
class Self(PolicyBase):
    """`self` is every address of this host: an address outside 127/8
    added to lo of the test's own namespace gives it one that is not
    loopback (this kernel has no dummy interfaces)."""

    ADDR, LATER = "198.51.100.7", "198.51.100.8"

    def add_address(self, addr):
        subprocess.run(["ip", "addr", "add", addr + "/32", "dev", "lo"], check=True)
        self.addCleanup(subprocess.run, ["ip", "addr", "del", addr + "/32", "dev", "lo"],
                        check=False)

    def setUp(self):
        self.add_address(self.ADDR)

    def test_self_covers_interface_addresses_and_reloads(self):
        echo = TcpServer(echo_handler, host="0.0.0.0")
        self.addCleanup(echo.close)
        rules = ('rules = (\n'
                 '  { action = "block"; name = "self"; to = [ "self" ]; },\n'
                 '  { action = "pass"; }\n'
                 ');\n')
        # The listener on the dummy address too: its own address is self.
        lport = free_port(self.ADDR)
        d = self.start(rules=rules, extra_listeners=[dict(address=self.ADDR, port=lport)],
                       clients='clients = ( { action = "pass"; } );\n')
        for host in (self.ADDR, "127.0.0.1", "0.0.0.0", "::ffff:" + self.ADDR):
            rep, fields = self.request(d, host, echo.port, proxy=(self.ADDR, lport))
            self.assertEqual((rep, fields["rule"]), (2, "self"), (host, fields))
        # An address added later is self after a reload, not before.
        self.add_address(self.LATER)
        s, _ = open_session(("127.0.0.1", d.port), self.LATER, echo.port)
        with s:
            me = local_addr(s)
            echo_roundtrip(s, b"not yet self")
        self.assertEqual(d.session(me)["rule"], "2")
        mark = d.mark()
        old = set(d.workers_pids())
        d.signal(signal.SIGHUP)
        d.wait_log(r"\breload generation=", mark, 10)
        # An old worker may still take a client with the old rules (one it
        # was woken for): ask once they are gone.
        wait_until(lambda: not old & set(d.workers_pids()), 10, "old workers to exit")
        rep, fields = self.request(d, self.LATER, echo.port)
        self.assertEqual((rep, fields["rule"]), (2, "self"), fields)


def userpass(user, password):
    return bytes([1, len(user)]) + user.encode() + bytes([len(password)]) + password.encode()


class AuthDaemon(Daemon):
    def listeners(self):
        return [dict(address="127.0.0.1", port=self.port, methods=["username"])]


@needs_socks5d
@unittest.skipIf(pamtest.available(DAEMON), pamtest.available(DAEMON))
class UsersAndGroups(unittest.TestCase):
    """users and groups rules with real PAM logins (pamtest.py). "nobody"
    is known to the system (group nogroup); "alice" is PAM's only."""

    USERS = {"alice": ("wonderland", pamtest.SERVICE),
             "nobody": ("secret", pamtest.SERVICE),
             "bob": ("builder", pamtest.SERVICE)}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="socks5d-policy-pam-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def start(self, rules):
        pam = pamtest.PamFiles(self.tmp, self.USERS, daemon=DAEMON)
        d = AuthDaemon(env=pam.env(), rules=rules,
                       extra="auth = { helpers = 1; timeout = 5; };\n").start()
        self.addCleanup(finish_daemon, d)
        return d

    def connect_as(self, d, user, password):
        """Logs in, asks for the echo server: (REP, session fields)."""
        s = connect_proxy(("127.0.0.1", d.port))
        with s:
            s.sendall(b"\x05\x01\x02")
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            s.sendall(userpass(user, password))
            self.assertEqual(recv_exact(s, 2), b"\x01\x00")
            s.sendall(request_bytes(*self.echo.addr))
            rep = read_reply(s)[1]
            if rep == 0:
                echo_roundtrip(s, b"as " + user.encode())
            me = local_addr(s)
        return rep, d.session(me)

    def test_users_and_groups(self):
        rules = ('rules = (\n'
                 '  { action = "block"; name = "no-bob"; users = [ "bob" ]; },\n'
                 '  { action = "pass"; name = "alice"; users = [ "alice" ]; methods = [ "username" ]; },\n'
                 '  { action = "pass"; name = "nogroup"; groups = [ "nogroup" ]; }\n'
                 ');\n')
        d = self.start(rules)
        rep, f = self.connect_as(d, "alice", "wonderland")
        self.assertEqual((rep, f["rule"], f["user"]), (0, "alice", "alice"), f)
        rep, f = self.connect_as(d, "nobody", "secret")
        self.assertEqual((rep, f["rule"], f["user"]), (0, "nogroup", "nobody"), f)
        rep, f = self.connect_as(d, "bob", "builder")
        self.assertEqual((rep, f["rule"], f["end"]), (2, "no-bob", "refused"), f)


if __name__ == "__main__":
    unittest.main()
