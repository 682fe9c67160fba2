"""BIND (RFC 1928): the first reply names where the daemon listens (the
address the client reached it at, or `external`), the second the peer that
connected; then bytes flow as in CONNECT. A peer from another address than
DST, a rule, a closed control connection, the bind timeout, an exhausted
bind.ports and the shutdown each end it with the reply bytes checked."""

import random
import re
import signal
import socket
import struct
import unittest

from harness import (Daemon, Pattern, Thread, connect_proxy, finish_daemon,
                     free_port, local_addr, needs_socks5d, read_reply,
                     read_until_closed, recv_exact, recv_hash, request_bytes,
                     send_pattern, wait_closed, wait_until)

CMD_BIND = 2


def reply_bytes(rep, host, port):
    """The exact reply the daemon must send for host:port."""
    if ":" in host:
        addr = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    else:
        addr = b"\x01" + socket.inet_pton(socket.AF_INET, host)
    return bytes([5, rep, 0]) + addr + struct.pack("!H", port)


def connect_from(source, dest, timeout=10):
    """A TCP connection to dest from the address source (port any)."""
    s = socket.socket(socket.AF_INET6 if ":" in dest[0] else socket.AF_INET)
    s.settimeout(timeout)
    try:
        if source is not None:
            s.bind((source, 0))
        s.connect(dest)
    except BaseException:
        s.close()
        raise
    return s


def free_range(n):
    """A base port such that base..base+n-1 are free, below the ephemeral
    range (32768 and up), so that no connection of the test takes one
    while the daemon's BIND wants it."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32768 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no {n} free ports in a row")


def refused(addr):
    """Whether a connection to addr is refused right now."""
    try:
        connect_from(None, addr, 2).close()
    except ConnectionRefusedError:
        return True
    return False


@needs_socks5d
class BindBase(unittest.TestCase):

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def bind(self, proxy, host="127.0.0.1", port=0, extra=b""):
        """Greets, sends BIND for host:port: (control socket, first reply)."""
        s = connect_proxy(proxy)
        self.addCleanup(s.close)
        s.sendall(b"\x05\x01\x00")
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        s.sendall(request_bytes(host, port, cmd=CMD_BIND) + extra)
        return s, read_reply(s)

    def bind_ok(self, proxy, host="127.0.0.1", port=0):
        """A BIND whose first reply succeeds, announcing the address the
        client reached the daemon at: (control socket, announced address)."""
        s, (raw, rep, atyp, bhost, bport) = self.bind(proxy, host, port)
        self.assertEqual(rep, 0, raw.hex())
        self.assertEqual(raw, reply_bytes(0, s.getpeername()[0], bport))
        self.assertNotEqual(bport, 0)
        return s, (bhost, bport)

    def peer_in(self, ctl, announced, source=None):
        """Connects a peer to the announced address and checks the second
        reply names it exactly: the peer socket."""
        p = connect_from(source, announced)
        self.addCleanup(p.close)
        raw = read_reply(ctl)[0]
        self.assertEqual(raw, reply_bytes(0, *p.getsockname()[:2]))
        return p

    def refused_peer(self, d, ctl, announced, source):
        """A peer the daemon must turn away: second reply 02, then both
        the control connection and the peer are closed."""
        p = connect_from(source, announced)
        self.addCleanup(p.close)
        raw = read_reply(ctl)[0]
        self.assertEqual(raw[:3], b"\x05\x02\x00", raw.hex())
        self.assertEqual(wait_closed(ctl), b"")
        self.assertEqual(read_until_closed(p)[0], b"")
        return d.session(local_addr(ctl)), p


class Replies(BindBase):

    def test_both_replies_data_both_ways_and_half_close(self):
        # The client reaches the daemon at 127.0.0.3: the first reply says
        # 127.0.0.3 (getsockname of the control connection), not 0.0.0.0.
        d = Daemon()
        port3 = free_port("127.0.0.3")
        d.extra_listeners = [dict(address="127.0.0.3", port=port3)]
        d.start()
        self.addCleanup(finish_daemon, d)
        ctl, announced = self.bind_ok(("127.0.0.3", port3), "127.0.0.1", 0)
        self.assertEqual(announced[0], "127.0.0.3")
        peer = self.peer_in(ctl, announced, "127.0.0.1")
        up, down = Pattern(3 << 20, seed=11), Pattern(2 << 20, seed=12)
        at_peer = Thread(recv_hash, peer, up.length)
        at_client = Thread(recv_hash, ctl, down.length)
        at_peer.start()
        at_client.start()
        send_pattern(ctl, up)
        send_pattern(peer, down)
        self.assertEqual(at_peer.join_result(60), (up.length, up.sha256()))
        self.assertEqual(at_client.join_result(60), (down.length, down.sha256()))
        # Half-close: the client's FIN reaches the peer, which still sends.
        ctl.shutdown(socket.SHUT_WR)
        self.assertEqual(read_until_closed(peer), (b"", "eof"))
        peer.sendall(b"after the client's FIN")
        peer_port = peer.getsockname()[1]
        peer.close()
        self.assertEqual(wait_closed(ctl), b"after the client's FIN")
        f = d.session(local_addr(ctl))
        self.assertEqual((f["cmd"], f["rep"], f["dst"]), ("bind", "0", "127.0.0.1:0"), f)
        self.assertEqual(f["addr"], "127.0.0.1:%d" % peer_port, f)
        self.assertEqual(f["up"], str(up.length), f)
        self.assertEqual(f["down"], str(down.length + len(b"after the client's FIN")), f)
        self.assertIn(f["end"], ("client", "target"), f)

    def test_external_address_is_announced(self):
        d = self.start(extra='external = [ "127.0.0.2" ];\n')
        ctl, reply = self.bind(("127.0.0.1", d.port), "127.0.0.1")
        self.assertEqual(reply[0], reply_bytes(0, "127.0.0.2", reply[4]))
        peer = self.peer_in(ctl, ("127.0.0.2", reply[4]), "127.0.0.1")
        peer.sendall(b"ping")
        self.assertEqual(recv_exact(ctl, 4), b"ping")

    def test_zero_dst_accepts_any_peer(self):
        d = self.start()
        ctl, announced = self.bind_ok(("127.0.0.1", d.port), "0.0.0.0", 0)
        peer = self.peer_in(ctl, announced, "127.0.0.5")
        ctl.sendall(b"x" * 64)
        self.assertEqual(recv_exact(peer, 64), b"x" * 64)
        peer_port = peer.getsockname()[1]
        peer.close()
        self.assertEqual(wait_closed(ctl), b"")
        ctl.close()
        f = d.session(local_addr(ctl))
        self.assertEqual(f["addr"], "127.0.0.5:%d" % peer_port, f)
        self.assertEqual((f["cmd"], f["dst"], f["end"]), ("bind", "0.0.0.0:0", "target"), f)

    def test_wrong_peer_is_refused(self):
        d = self.start()
        ctl, announced = self.bind_ok(("127.0.0.1", d.port), "127.0.0.1", 21)
        f, p = self.refused_peer(d, ctl, announced, "127.0.0.5")
        self.assertEqual((f["rep"], f["end"], f["cmd"]), ("2", "refused", "bind"), f)
        self.assertTrue(f["addr"].startswith("127.0.0.5:"), f)
        # One peer only: the port was closed with the refusal.
        self.assertTrue(refused(announced))

    def test_peer_any_accepts_another_address(self):
        d = self.start(extra='bind = { peer = "any"; };\n')
        ctl, announced = self.bind_ok(("127.0.0.1", d.port), "127.0.0.1", 21)
        peer = self.peer_in(ctl, announced, "127.0.0.5")
        peer.sendall(b"pong")
        self.assertEqual(recv_exact(ctl, 4), b"pong")

    def test_domain_dst_accepts_its_addresses(self):
        # localhost is 127.0.0.1 (and ::1) in the harness's /etc/hosts.
        d = self.start()
        ctl, announced = self.bind_ok(("127.0.0.1", d.port), b"localhost", 0)
        peer = self.peer_in(ctl, announced, "127.0.0.1")
        peer.sendall(b"via a name")
        self.assertEqual(recv_exact(ctl, 10), b"via a name")
        ctl2, announced2 = self.bind_ok(("127.0.0.1", d.port), b"localhost", 0)
        self.refused_peer(d, ctl2, announced2, "127.0.0.5")


class Ending(BindBase):

    def test_control_close_frees_the_port(self):
        d = self.start()
        ctl, announced = self.bind_ok(("127.0.0.1", d.port))
        mark = d.mark()
        ctl.close()
        f = d.session(local_addr(ctl), mark)
        self.assertEqual((f["end"], f["rep"], f["cmd"]), ("client", "0", "bind"), f)
        # The listening socket was closed before the audit line.
        self.assertTrue(refused(announced))

    def test_bytes_before_the_second_reply(self):
        # A second request on the same control connection, after the first
        # reply and pipelined with the first request.
        d = self.start()
        ctl, announced = self.bind_ok(("127.0.0.1", d.port))
        ctl.sendall(request_bytes("127.0.0.1", 0, cmd=CMD_BIND))
        self.assertEqual(read_reply(ctl)[0], reply_bytes(1, "0.0.0.0", 0))
        self.assertEqual(wait_closed(ctl), b"")
        f = d.session(local_addr(ctl))
        self.assertEqual((f["end"], f["rep"]), ("protocol", "1"), f)
        self.assertTrue(refused(announced))
        twice = request_bytes("127.0.0.1", 0, cmd=CMD_BIND)
        ctl2, reply = self.bind(("127.0.0.1", d.port), extra=twice)
        self.assertEqual(reply[0], reply_bytes(1, "0.0.0.0", 0))
        self.assertEqual(wait_closed(ctl2), b"")
        self.assertEqual(d.session(local_addr(ctl2))["end"], "protocol")

    def test_timeout_answers_ttl_expired(self):
        d = self.start(timeouts=dict(bind=1))
        ctl, announced = self.bind_ok(("127.0.0.1", d.port))
        # timeouts.bind = 1: REP 06 well within the read deadline.
        self.assertEqual(read_reply(ctl, timeout=10)[0], reply_bytes(6, "0.0.0.0", 0))
        self.assertEqual(wait_closed(ctl), b"")
        f = d.session(local_addr(ctl))
        self.assertEqual((f["end"], f["rep"]), ("timeout", "6"), f)
        self.assertTrue(refused(announced))

    def test_shutdown_while_waiting(self):
        d = self.start(timeouts=dict(shutdown=1, bind=60))
        ctl, announced = self.bind_ok(("127.0.0.1", d.port))
        mark = d.mark()
        d.signal(signal.SIGTERM)
        self.assertEqual(read_reply(ctl, timeout=10)[0], reply_bytes(1, "0.0.0.0", 0))
        self.assertEqual(wait_closed(ctl), b"")
        f = d.session(local_addr(ctl), mark)
        self.assertEqual((f["end"], f["rep"]), ("shutdown", "1"), f)
        self.assertEqual(d.stop(), 0)


class Ports(BindBase):

    def test_the_only_port_taken(self):
        port = free_range(1)
        d = self.start(extra='bind = { ports = %d; };\n' % port)
        ctl, announced = self.bind_ok(("127.0.0.1", d.port))
        self.assertEqual(announced, ("127.0.0.1", port))
        # While the first BIND holds the only port, a second one fails.
        mark = d.mark()
        ctl2, reply = self.bind(("127.0.0.1", d.port))
        self.assertEqual(reply[0], reply_bytes(1, "0.0.0.0", 0))
        self.assertEqual(wait_closed(ctl2), b"")
        f = d.session(local_addr(ctl2), mark)
        self.assertEqual((f["end"], f["rep"], f["cmd"]), ("failed", "1", "bind"), f)
        d.wait_log(r"bind 127\.0\.0\.1:0: no free port in bind\.ports %d-%d" % (port, port), mark)
        # The first still works, and once it ends the port is free again.
        peer = self.peer_in(ctl, announced, "127.0.0.1")
        peer.close()
        self.assertEqual(wait_closed(ctl), b"")
        ctl.close()
        ctl3, announced3 = self.bind_ok(("127.0.0.1", d.port))
        self.assertEqual(announced3, ("127.0.0.1", port))

    def test_range_is_kept(self):
        lo = free_range(3)
        d = self.start(extra='bind = { ports = "%d-%d"; };\n' % (lo, lo + 2))
        ports = set()
        ctls = []
        for _ in range(3):
            ctl, (host, port) = self.bind_ok(("127.0.0.1", d.port))
            ctls.append(ctl)
            ports.add(port)
        # Three BINDs take the three ports of the range, a fourth finds none.
        self.assertEqual(ports, {lo, lo + 1, lo + 2})
        ctl, reply = self.bind(("127.0.0.1", d.port))
        self.assertEqual(reply[1], 1)


class Ipv6(BindBase):

    def test_v6_both_replies(self):
        d = self.start(v6=True)
        ctl, announced = self.bind_ok(("::1", d.v6port), "::1", 0)
        self.assertEqual(announced[0], "::1")
        peer = self.peer_in(ctl, announced, "::1")
        peer.sendall(b"six")
        self.assertEqual(recv_exact(ctl, 3), b"six")
        ctl.sendall(b"back")
        self.assertEqual(recv_exact(peer, 4), b"back")
        peer_port = peer.getsockname()[1]
        peer.close()
        self.assertEqual(wait_closed(ctl), b"")
        ctl.close()
        f = d.session(local_addr(ctl))
        self.assertEqual(f["addr"], "[::1]:%d" % peer_port, f)
        self.assertEqual(f["dst"], "[::1]:0", f)

    def test_v6_zero_dst(self):
        d = self.start(v6=True)
        ctl, announced = self.bind_ok(("::1", d.v6port), "::", 0)
        self.assertEqual(announced[0], "::1")
        self.peer_in(ctl, announced, "::1")


    def test_v6_peer_asked_over_v4(self):
        # The client came in over IPv4 and names an IPv6 peer: the daemon
        # listens on its address routed towards that peer (::1 here).
        d = self.start()
        ctl, (raw, rep, atyp, host, port) = self.bind(("127.0.0.1", d.port), "::1", 0)
        self.assertEqual(raw, reply_bytes(0, "::1", port))
        peer = self.peer_in(ctl, ("::1", port), "::1")
        peer.sendall(b"across")
        self.assertEqual(recv_exact(ctl, 6), b"across")


class Rules(BindBase):

    def test_rules_refuse_bind(self):
        d = self.start(rules='rules = ( { action = "block"; commands = [ "bind" ]; },\n'
                             '          { action = "pass"; } );\n')
        ctl, reply = self.bind(("127.0.0.1", d.port), "127.0.0.1", 0)
        self.assertEqual(reply[0], reply_bytes(2, "0.0.0.0", 0))
        self.assertEqual(wait_closed(ctl), b"")
        f = d.session(local_addr(ctl))
        self.assertEqual((f["rule"], f["rep"], f["end"], f["cmd"]), ("1", "2", "refused", "bind"), f)

    def test_rules_refuse_the_peer(self):
        d = self.start(rules='rules = ( { action = "block"; to = [ "127.0.0.5" ]; },\n'
                             '          { action = "pass"; } );\n')
        ctl, announced = self.bind_ok(("127.0.0.1", d.port), "0.0.0.0", 0)
        f, _ = self.refused_peer(d, ctl, announced, "127.0.0.5")
        self.assertEqual((f["rule"], f["rep"], f["end"]), ("1", "2", "refused"), f)
        # Another peer is let through by rule 2.
        ctl2, announced2 = self.bind_ok(("127.0.0.1", d.port), "0.0.0.0", 0)
        self.peer_in(ctl2, announced2, "127.0.0.6")

    def test_rules_refuse_the_requested_address(self):
        d = self.start(rules='rules = ( { action = "pass"; to = [ "127.0.0.7" ]; } );\n')
        ctl, reply = self.bind(("127.0.0.1", d.port), "127.0.0.1", 0)
        self.assertEqual(reply[0], reply_bytes(2, "0.0.0.0", 0))
        self.assertEqual(d.session(local_addr(ctl))["rule"], "0")
        ctl2, announced = self.bind_ok(("127.0.0.1", d.port), "127.0.0.7", 0)
        self.peer_in(ctl2, announced, "127.0.0.7")


class Limits(BindBase):

    def test_max_sessions_counts_bind_sessions(self):
        """The peer's rule decides a BIND session: with max_sessions = 1,
        a second BIND's peer gets reply 02 (end=limit) while the first
        session runs, and a third gets through once it ended."""
        d = self.start(workers=dict(min_spare=3, max_spare=6),
                       rules='rules = ( { action = "pass"; max_sessions = 1; } );\n')
        ctl, announced = self.bind_ok(("127.0.0.1", d.port), "0.0.0.0", 0)
        p = self.peer_in(ctl, announced, "127.0.0.5")
        ctl2, announced2 = self.bind_ok(("127.0.0.1", d.port), "0.0.0.0", 0)
        f, _ = self.refused_peer(d, ctl2, announced2, "127.0.0.5")
        self.assertEqual((f["rep"], f["end"], f["cmd"]), ("2", "limit", "bind"), f)
        ctl.close()
        p.close()
        d.session(local_addr(ctl))

        def third():
            c, (raw, rep, atyp, bhost, bport) = self.bind(("127.0.0.1", d.port), "0.0.0.0", 0)
            peer = connect_from("127.0.0.5", (bhost, bport))
            self.addCleanup(peer.close)
            return read_reply(c)[1] == 0
        wait_until(third, 10, "a BIND served once the first ended", interval=0.1)


class Parked(BindBase):

    def test_parked_bind_session_relays_and_logs_once(self):
        d = self.start(relay_extra=dict(park_after=1), debug=True)
        ctl, announced = self.bind_ok(("127.0.0.1", d.port), "127.0.0.1", 0)
        peer = self.peer_in(ctl, announced, "127.0.0.1")
        peer.sendall(b"before")
        self.assertEqual(recv_exact(ctl, 6), b"before")
        addr = local_addr(ctl)
        d.wait_log(r"\bpark client=" + re.escape(f"{addr[0]}:{addr[1]}") + r" hub=\d+")
        pat = Pattern(1 << 20, seed=21)
        reader = Thread(recv_hash, peer, pat.length)
        reader.start()
        send_pattern(ctl, pat)
        self.assertEqual(reader.join_result(30), (pat.length, pat.sha256()))
        peer.sendall(b"after")
        self.assertEqual(recv_exact(ctl, 5), b"after")
        peer_port = peer.getsockname()[1]
        peer.close()
        self.assertEqual(wait_closed(ctl), b"")
        ctl.close()
        f = d.session(addr)
        self.assertEqual((f["parked"], f["cmd"], f["end"]), ("1", "bind", "target"), f)
        self.assertEqual(f["addr"], "127.0.0.1:%d" % peer_port, f)
        self.assertEqual((f["up"], f["down"]), (str(pat.length), "11"), f)
        lines = [l for l in d.text().splitlines()
                 if re.search(r"\bsession .*client=" + re.escape(f"{addr[0]}:{addr[1]}") + r"\s", l)]
        self.assertEqual(len(lines), 1, lines)


if __name__ == "__main__":
    unittest.main()
