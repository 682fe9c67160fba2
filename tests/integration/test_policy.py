"""The outgoing source address (`external`) and the request rules: a block
rule answers 02 and names itself in the log, a refused name is never
looked up, and no match refuses (fail closed)."""

import unittest

from harness import (finish_daemon, Daemon, TcpServer, connect_proxy, echo_handler,
                     echo_roundtrip, needs_netns, needs_socks5d, open_session,
                     read_reply, recv_exact, request_bytes, wait_closed,
                     wait_until)


@needs_socks5d
class PolicyBase(unittest.TestCase):

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(self.finish, d)
        return d

    def finish(self, d):
        finish_daemon(d)

    def request(self, d, host, port):
        """Greets and sends a CONNECT; returns (REP, the session's fields)."""
        s = connect_proxy(("127.0.0.1", d.port))
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


if __name__ == "__main__":
    unittest.main()
