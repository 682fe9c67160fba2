"""UDP ASSOCIATE (RFC 1928 section 7) in raw bytes: round trips over IPv4,
IPv6 and names, what the relay drops (strangers, bad headers, FRAG,
blocked targets, replies from sources not sent to) and counts in the
audit line, the reply's BND, and the end of the association (TCP close,
silence, a second request, shutdown)."""

import os
import signal
import socket
import struct
import threading
import unittest

from harness import (V4ONLY_NAME, V6ONLY_NAME, Daemon, connect_proxy,
                     fd_count, finish_daemon, free_port, needs_netns, needs_socks5d, read_reply,
                     recv_exact, request_bytes, run_daemon_cmd, wait_closed,
                     wait_until)

UDP_TIMEOUT = 5.0


class UdpEcho:
    """A UDP echo server on loopback, in a thread: each datagram is sent
    back to its source; peers and payloads are recorded."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.addr = self.sock.getsockname()[:2]
        self.port = self.addr[1]
        self.peers = []
        self.got = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.peers.append(peer[:2])
            self.got.append(data)
            try:
                self.sock.sendto(data, peer)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def udp_header(host, port, frag=0, rsv=b"\0\0"):
    """RSV FRAG ATYP DST.ADDR DST.PORT for a literal or a name."""
    return rsv + bytes([frag]) + request_bytes(host, port)[3:]


def parse_header(data):
    """(host, port, payload) of a datagram from the relay."""
    if data[:3] != b"\0\0\0":
        raise AssertionError(f"bad header {data[:4].hex()}")
    if data[3] == 1:
        return socket.inet_ntop(socket.AF_INET, data[4:8]), \
            struct.unpack("!H", data[8:10])[0], data[10:]
    if data[3] == 4:
        return socket.inet_ntop(socket.AF_INET6, data[4:20]), \
            struct.unpack("!H", data[20:22])[0], data[22:]
    raise AssertionError(f"header with ATYP {data[3]}")


def associate(proxy, host="0.0.0.0", port=0, atyp=None):
    """A control connection after a UDP ASSOCIATE that succeeded:
    (control socket, (raw, rep, atyp, bnd host, bnd port))."""
    s = connect_proxy(proxy)
    try:
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2) != b"\x05\x00":
            raise AssertionError("method not accepted")
        s.sendall(request_bytes(host, port, cmd=3, atyp=atyp))
        reply = read_reply(s)
        if reply[1] != 0:
            raise AssertionError(f"UDP ASSOCIATE answered {reply[0].hex()}")
        return s, reply
    except BaseException:
        s.close()
        raise


def udp_client(host="127.0.0.1", port=0):
    u = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      socket.SOCK_DGRAM)
    u.bind((host, port))
    u.settimeout(UDP_TIMEOUT)
    return u


def roundtrip(u, relay, host, port, payload):
    """Sends payload to host:port through the relay; the reply datagram."""
    u.sendto(udp_header(host, port) + payload, relay)
    data, src = u.recvfrom(70000)
    if src[:2] != relay[:2]:
        raise AssertionError(f"datagram from {src}, not the relay {relay}")
    return data


@needs_socks5d
class UdpBase(unittest.TestCase):

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    def echo(self, host="127.0.0.1"):
        e = UdpEcho(host)
        self.addCleanup(e.close)
        return e

    def client(self, host="127.0.0.1", port=0):
        u = udp_client(host, port)
        self.addCleanup(u.close)
        return u

    def end_line(self, d, ctrl):
        """Closes the control connection; the association's audit fields."""
        me = ctrl.getsockname()
        ctrl.close()
        return d.session(me, 0, 10)


class RoundTrip(UdpBase):

    def test_ipv4_round_trip_reply_and_audit_counts(self):
        echo = self.echo()
        d = self.start()
        ctrl, (raw, rep, atyp, bhost, bport) = associate(("127.0.0.1", d.port))
        # BND names the address the client reached, never 0.0.0.0.
        self.assertEqual((atyp, bhost), (1, "127.0.0.1"))
        self.assertNotEqual(bport, 0)
        self.assertEqual(raw[:4], b"\x05\x00\x00\x01")
        u = self.client()
        relay = (bhost, bport)
        for i in range(3):
            payload = b"ping %d" % i
            got = roundtrip(u, relay, "127.0.0.1", echo.port, payload)
            self.assertEqual(got, udp_header("127.0.0.1", echo.port) + payload)
        # An empty payload is a datagram too.
        self.assertEqual(roundtrip(u, relay, "127.0.0.1", echo.port, b""),
                         udp_header("127.0.0.1", echo.port))
        f = self.end_line(d, ctrl)
        self.assertEqual((f["cmd"], f["rep"], f["end"]), ("udp", "0", "client"), f)
        self.assertEqual((f["up"], f["down"]), ("18", "18"), f)
        self.assertEqual((f["dgrams_up"], f["dgrams_down"], f["dests"]),
                         ("4", "4", "1"), f)
        for k in ("drop_stranger", "drop_header", "drop_frag", "drop_rule",
                  "drop_resolve", "drop_source", "drop_send"):
            self.assertEqual(f[k], "0", (k, f))

    def test_ipv6_round_trip(self):
        echo = self.echo("::1")
        d = self.start(v6=True)
        ctrl, (raw, rep, atyp, bhost, bport) = associate(("::1", d.v6port), "::", 0)
        self.assertEqual((atyp, bhost), (4, "::1"))
        u = self.client("::1")
        got = roundtrip(u, (bhost, bport), "::1", echo.port, b"six")
        self.assertEqual(got, udp_header("::1", echo.port) + b"six")
        # From an IPv6 client to an IPv4 target in the same association.
        echo4 = self.echo()
        got = roundtrip(u, (bhost, bport), "127.0.0.1", echo4.port, b"four")
        self.assertEqual(got, udp_header("127.0.0.1", echo4.port) + b"four")
        f = self.end_line(d, ctrl)
        self.assertEqual((f["dgrams_up"], f["dests"]), ("2", "2"), f)

    @needs_netns
    def test_names_resolve_and_replies_name_the_address(self):
        echo4, echo6 = self.echo(), self.echo("::1")
        d = self.start()
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        relay = (bhost, bport)
        got = roundtrip(u, relay, V4ONLY_NAME, echo4.port, b"by name")
        self.assertEqual(got, udp_header("127.0.0.1", echo4.port) + b"by name")
        got = roundtrip(u, relay, V6ONLY_NAME, echo6.port, b"by name 6")
        self.assertEqual(got, udp_header("::1", echo6.port) + b"by name 6")
        # A name that does not resolve is dropped; the association goes on.
        u.sendto(udp_header("nosuch.socks5d.test", echo4.port) + b"lost", relay)
        got = roundtrip(u, relay, V4ONLY_NAME, echo4.port, b"again")
        self.assertEqual(parse_header(got)[2], b"again")
        f = self.end_line(d, ctrl)
        self.assertEqual((f["dgrams_up"], f["drop_resolve"], f["dests"]),
                         ("3", "1", "2"), f)
        self.assertEqual(echo4.got, [b"by name", b"again"])

    def test_maximum_size_datagram(self):
        echo = self.echo()
        d = self.start()
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        payload = os.urandom(65507 - 10)  # the largest IPv4 UDP payload
        got = roundtrip(u, (bhost, bport), "127.0.0.1", echo.port, payload)
        self.assertEqual(got, udp_header("127.0.0.1", echo.port) + payload)
        f = self.end_line(d, ctrl)
        self.assertEqual((f["up"], f["down"]), (str(len(payload)),) * 2, f)

    def test_dual_stack_listener_names_the_ipv4_address(self):
        """An IPv4 client of a [::] listener with v6only = false reached
        ::ffff:127.0.0.1: the reply names 127.0.0.1 (ATYP 01), and the
        relay works over IPv4."""
        echo = self.echo()
        port = free_port("::1")
        d = self.start(extra_listeners=[dict(address="::", port=port, v6only=False)])
        ctrl, (_, _, atyp, bhost, bport) = associate(("127.0.0.1", port))
        self.assertEqual((atyp, bhost), (1, "127.0.0.1"))
        u = self.client()
        got = roundtrip(u, (bhost, bport), "127.0.0.1", echo.port, b"mapped")
        self.assertEqual(got, udp_header("127.0.0.1", echo.port) + b"mapped")
        me = ctrl.getsockname()[1]
        ctrl.close()
        line = d.wait_log(r"\bsession sid=\d+ client=\[::ffff:127\.0\.0\.1\]:%d .*cmd=udp" % me, 0, 10)
        self.assertIn(" dgrams_up=1 dgrams_down=1 ", line)

    def test_udp_ports_and_announce(self):
        echo = self.echo()
        lo = 42000 + os.getpid() % 1000
        d = Daemon(extra=f'udp = {{ ports = "{lo}-{lo + 9}"; batch = 1; }};\n')
        base = d.config

        def config(**over):  # the listener announces a NAT address
            return base(**over).replace("methods = [ \"none\" ];",
                                        "methods = [ \"none\" ]; udp_announce = \"192.0.2.44\";", 1)
        d.config = config
        d.start()
        self.addCleanup(finish_daemon, d)
        ctrl, (_, _, atyp, bhost, bport) = associate(("127.0.0.1", d.port))
        self.assertEqual((atyp, bhost), (1, "192.0.2.44"))
        self.assertTrue(lo <= bport <= lo + 9, bport)
        # The relay socket itself is on the address the client reached.
        u = self.client()
        got = roundtrip(u, ("127.0.0.1", bport), "127.0.0.1", echo.port, b"nat")
        self.assertEqual(parse_header(got)[2], b"nat")
        ctrl.close()


class Drops(UdpBase):

    def test_bad_headers_and_frag_are_dropped_and_counted(self):
        echo = self.echo()
        d = self.start()
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        relay = (bhost, bport)
        good = udp_header("127.0.0.1", echo.port)
        bad_header = [
            good[:7],                                   # truncated address
            b"\0\0",                                    # truncated RSV/FRAG
            b"\x01\0" + good[2:] + b"x",                # RSV != 0
            b"\0\0\0\x02" + good[4:] + b"x",            # ATYP 02
            b"\0\0\0\x03\x00" + b"\x00\x35x",           # domain length 0
            b"\0\0\0\x03\xc8abc\x00\x35",               # domain longer than it
        ]
        for b in bad_header:
            u.sendto(b, relay)
        u.sendto(udp_header("127.0.0.1", echo.port, frag=1) + b"fragment", relay)
        # What came back first is the good datagram's echo: nothing before.
        got = roundtrip(u, relay, "127.0.0.1", echo.port, b"good")
        self.assertEqual(got, good + b"good")
        self.assertEqual(echo.got, [b"good"])
        f = self.end_line(d, ctrl)
        self.assertEqual((f["drop_header"], f["drop_frag"], f["dgrams_up"]),
                         (str(len(bad_header)), "1", "1"), f)

    def test_strangers_are_dropped_given_port(self):
        echo = self.echo()
        d = self.start()
        u = self.client()
        me = u.getsockname()
        # DST names the client's address and port: only that port is taken.
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port), *me)
        relay = (bhost, bport)
        other_port = self.client()
        other_ip = self.client("127.0.0.2")
        other_port.sendto(udp_header("127.0.0.1", echo.port) + b"port", relay)
        other_ip.sendto(udp_header("127.0.0.1", echo.port) + b"ip", relay)
        got = roundtrip(u, relay, "127.0.0.1", echo.port, b"mine")
        self.assertEqual(parse_header(got)[2], b"mine")
        self.assertEqual(echo.got, [b"mine"])
        f = self.end_line(d, ctrl)
        self.assertEqual((f["drop_stranger"], f["dgrams_up"]), ("2", "1"), f)

    def test_zero_dst_latches_the_first_port(self):
        echo = self.echo()
        d = self.start()
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port), "0.0.0.0", 0)
        relay = (bhost, bport)
        first, second = self.client(), self.client()
        other_ip = self.client("127.0.0.2")
        other_ip.sendto(udp_header("127.0.0.1", echo.port) + b"ip", relay)
        got = roundtrip(first, relay, "127.0.0.1", echo.port, b"first")
        self.assertEqual(parse_header(got)[2], b"first")
        second.sendto(udp_header("127.0.0.1", echo.port) + b"second", relay)
        got = roundtrip(first, relay, "127.0.0.1", echo.port, b"first again")
        self.assertEqual(parse_header(got)[2], b"first again")
        self.assertEqual(echo.got, [b"first", b"first again"])
        f = self.end_line(d, ctrl)
        self.assertEqual(f["drop_stranger"], "2", f)

    def test_other_dst_addr_is_ignored_and_the_port_latched(self):
        """A client behind NAT names its private address and port: the
        control connection's IP is used and the port latched."""
        echo = self.echo()
        d = self.start()
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port), "10.1.2.3", 999)
        u = self.client()
        got = roundtrip(u, (bhost, bport), "127.0.0.1", echo.port, b"natted")
        self.assertEqual(parse_header(got)[2], b"natted")
        ctrl.close()

    def test_blocked_target_dropped_allowed_one_works(self):
        allowed, blocked = self.echo(), self.echo("127.0.0.3")
        d = self.start(rules='rules = (\n'
                             '  { action = "block"; to = [ "127.0.0.3" ]; },\n'
                             '  { action = "pass"; commands = [ "udp" ]; }\n'
                             ');\n')
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        relay = (bhost, bport)
        for i in range(3):
            u.sendto(udp_header("127.0.0.3", blocked.port) + b"blocked", relay)
        got = roundtrip(u, relay, "127.0.0.1", allowed.port, b"allowed")
        self.assertEqual(parse_header(got)[2], b"allowed")
        f = self.end_line(d, ctrl)
        self.assertEqual((f["drop_rule"], f["dests"], f["dgrams_up"]), ("3", "1", "1"), f)
        self.assertEqual(blocked.got, [])

    def test_refused_at_request_when_no_rule_passes_udp(self):
        d = self.start(rules='rules = ( { action = "pass"; commands = [ "connect" ]; } );\n')
        s = connect_proxy(("127.0.0.1", d.port))
        with s:
            s.sendall(b"\x05\x01\x00")
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            s.sendall(request_bytes("0.0.0.0", 0, cmd=3))
            self.assertEqual(read_reply(s)[1], 2)
            self.assertEqual(wait_closed(s), b"")
            f = d.session(s.getsockname(), 0, 10)
        self.assertEqual((f["cmd"], f["rep"], f["end"]), ("udp", "2", "refused"), f)

    def test_port_rule_for_udp_passes_the_request(self):
        """A rule that passes UDP to one port lets the association start,
        and only that port is reached."""
        echo, other = self.echo(), self.echo()
        d = self.start(rules='rules = ( { action = "pass"; commands = [ "udp" ]; '
                             f'ports = [ {echo.port} ]; }} );\n')
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        u.sendto(udp_header("127.0.0.1", other.port) + b"no", (bhost, bport))
        got = roundtrip(u, (bhost, bport), "127.0.0.1", echo.port, b"yes")
        self.assertEqual(parse_header(got)[2], b"yes")
        f = self.end_line(d, ctrl)
        self.assertEqual(f["drop_rule"], "1", f)

    def replies_from_a_stranger(self, replies):
        echo = self.echo()
        stranger = self.client()
        extra = f'udp = {{ replies = "{replies}"; }};\n' if replies else ""
        d = self.start(extra=extra)
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        relay = (bhost, bport)
        roundtrip(u, relay, "127.0.0.1", echo.port, b"one")
        # The proxy's external socket, as the target saw it.
        stranger.sendto(b"unasked", echo.peers[0])
        got = roundtrip(u, relay, "127.0.0.1", echo.port, b"two")
        return d, ctrl, u, stranger, got

    def test_replies_from_sources_not_sent_to_are_dropped(self):
        d, ctrl, u, stranger, got = self.replies_from_a_stranger(None)
        self.assertEqual(parse_header(got)[2], b"two")
        f = self.end_line(d, ctrl)
        self.assertEqual((f["drop_source"], f["dgrams_down"]), ("1", "2"), f)

    def test_replies_any_lets_other_sources_through(self):
        d, ctrl, u, stranger, got = self.replies_from_a_stranger("any")
        host, port, payload = parse_header(got)
        self.assertEqual((host, port, payload),
                         ("127.0.0.1", stranger.getsockname()[1], b"unasked"))
        data, _ = u.recvfrom(70000)
        self.assertEqual(parse_header(data)[2], b"two")
        f = self.end_line(d, ctrl)
        self.assertEqual((f["drop_source"], f["dgrams_down"]), ("0", "3"), f)


class Teardown(UdpBase):

    def relay_refuses(self, u, relay):
        """True once a datagram to the relay port gets ICMP unreachable."""
        u.connect(relay)
        try:
            u.send(b"\0\0\0\x01\x7f\0\0\x01\0\x07probe")
            u.settimeout(0.2)
            u.recv(100)
        except ConnectionRefusedError:
            return True
        except socket.timeout:
            return False
        return False

    def test_tcp_close_ends_it_and_nothing_is_relayed_after(self):
        echo = self.echo()
        d = self.start()
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        relay = (bhost, bport)
        roundtrip(u, relay, "127.0.0.1", echo.port, b"before")
        f = self.end_line(d, ctrl)
        self.assertEqual(f["end"], "client", f)
        wait_until(lambda: self.relay_refuses(u, relay), 5, "the relay port to close")
        self.assertEqual(echo.got, [b"before"])

    def test_sockets_are_closed_at_the_end(self):
        echo4, echo6 = self.echo(), self.echo("::1")
        d = self.start(workers=dict(min_spare=1, max_spare=1, max=1))
        worker = wait_until(lambda: d.workers_pids(), 10, "the worker")[0]
        base = wait_until(lambda: fd_count(worker), 5, "fd count")
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        roundtrip(u, (bhost, bport), "127.0.0.1", echo4.port, b"v4")
        roundtrip(u, (bhost, bport), "::1", echo6.port, b"v6")
        # The control connection, the relay socket, one external per family.
        self.assertEqual(fd_count(worker), base + 4)
        self.end_line(d, ctrl)
        wait_until(lambda: fd_count(worker) == base, 5,
                   f"the worker's fds back to {base} (now {fd_count(worker)})")

    def test_silence_ends_it(self):
        echo = self.echo()
        d = self.start(timeouts=dict(udp=1))
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        u = self.client()
        roundtrip(u, (bhost, bport), "127.0.0.1", echo.port, b"once")
        me = ctrl.getsockname()
        self.assertEqual(wait_closed(ctrl, 5), b"")
        f = d.session(me, 0, 5)
        self.assertEqual((f["end"], f["dgrams_up"]), ("idle", "1"), f)
        wait_until(lambda: self.relay_refuses(u, (bhost, bport)), 5, "the relay port to close")
        ctrl.close()

    def test_second_request_on_the_control_connection_ends_it(self):
        d = self.start()
        ctrl, _ = associate(("127.0.0.1", d.port))
        me = ctrl.getsockname()
        ctrl.sendall(request_bytes("0.0.0.0", 0, cmd=3))
        self.assertEqual(wait_closed(ctrl, 5), b"")
        ctrl.close()
        self.assertEqual(d.session(me, 0, 5)["end"], "protocol")

    def test_pipelined_second_request_ends_it_after_the_reply(self):
        d = self.start()
        s = connect_proxy(("127.0.0.1", d.port))
        with s:
            s.sendall(b"\x05\x01\x00" + request_bytes("0.0.0.0", 0, cmd=3) * 2)
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            self.assertEqual(read_reply(s)[1], 0)
            self.assertEqual(wait_closed(s, 5), b"")
            self.assertEqual(d.session(s.getsockname(), 0, 5)["end"], "protocol")

    def test_flood_while_control_is_silent_stays_responsive(self):
        echo = self.echo()
        d = self.start()
        ctrl, (_, _, _, bhost, bport) = associate(("127.0.0.1", d.port))
        relay = (bhost, bport)
        u = self.client()
        roundtrip(u, relay, "127.0.0.1", echo.port, b"latch")
        flood = self.client()
        junk = udp_header("127.0.0.1", echo.port) + b"x" * 1000
        for _ in range(20000):
            try:
                flood.sendto(junk, relay)
            except OSError:
                pass
        # Still relays for its client, and ends at once on TCP close.
        u.settimeout(10)
        got = roundtrip(u, relay, "127.0.0.1", echo.port, b"still here")
        self.assertEqual(parse_header(got)[2], b"still here")
        f = self.end_line(d, ctrl)
        self.assertEqual(f["end"], "client", f)
        self.assertGreater(int(f["drop_stranger"]), 0, f)
        self.assertEqual(echo.got, [b"latch", b"still here"])

    def test_shutdown_ends_it(self):
        d = self.start(timeouts=dict(shutdown=1))
        ctrl, _ = associate(("127.0.0.1", d.port))
        me = ctrl.getsockname()
        d.signal(signal.SIGTERM)
        self.assertEqual(wait_closed(ctrl, 10), b"")
        ctrl.close()
        self.assertEqual(d.session(me, 0, 10)["end"], "shutdown")


@needs_socks5d
class UdpConfig(unittest.TestCase):

    def check(self, text):
        d = Daemon(extra=text)
        try:
            d.write_config()
            return run_daemon_cmd(["-t", "-f", d.conf])
        finally:
            import shutil
            shutil.rmtree(d.tmp, ignore_errors=True)

    def test_bad_udp_settings_are_errors_with_lines(self):
        r = self.check('udp = {\n  replies = "some";\n  batch = 0;\n'
                       '  ports = "9-1";\n  window = 3;\n};\n')
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout + r.stderr
        for msg in ('unknown udp.replies "some" (sent-to, any)',
                    "udp.batch", "ports: bad port or range",
                    'unknown setting "udp.window"'):
            self.assertIn(msg, out)

    def test_bad_udp_announce_is_an_error(self):
        d = Daemon()
        try:
            text = d.config().replace('methods = [ "none" ];',
                                      'methods = [ "none" ]; udp_announce = "nat.example";', 1)
            d.write_config(text)
            r = run_daemon_cmd(["-t", "-f", d.conf])
        finally:
            import shutil
            shutil.rmtree(d.tmp, ignore_errors=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('udp_announce "nat.example" is not a numeric IPv4 or IPv6 address',
                      r.stdout + r.stderr)

    def test_good_udp_settings_pass(self):
        r = self.check('udp = { replies = "any"; batch = 64; ports = "40000-40100"; };\n')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)



class Limits(UdpBase):

    def test_max_sessions_counts_associations(self):
        """An association counts under the rule of its first destination:
        with max_sessions = 1 per client, a second association's datagrams
        are dropped (drop_limit) while the first runs, and a third
        association works once the first ended."""
        e = self.echo()
        d = self.start(rules='rules = ( { action = "pass"; max_sessions = 1; } );\n')
        proxy = ("127.0.0.1", d.port)
        ctl, r = associate(proxy)
        u = self.client()
        relay = (r[3], r[4])
        self.assertEqual(parse_header(roundtrip(u, relay, *e.addr, b"one"))[2], b"one")
        ctl2, r2 = associate(proxy)
        u2 = self.client()
        u2.sendto(udp_header(*e.addr) + b"two", (r2[3], r2[4]))
        # The refusal's line (once a minute per key) says it was seen.
        d.wait_log(r"\blimit-sessions rule=1 ")
        f2 = self.end_line(d, ctl2)
        self.assertEqual((f2["dgrams_up"], f2["drop_limit"], f2["dests"]), ("0", "1", "0"), f2)
        self.assertNotIn(b"two", e.got)
        self.end_line(d, ctl)
        ctl3, r3 = associate(proxy)
        self.addCleanup(ctl3.close)
        u3 = self.client()
        self.assertEqual(parse_header(roundtrip(u3, (r3[3], r3[4]), *e.addr, b"three"))[2],
                         b"three")

    def test_rate_up_drops_datagrams_over_the_cap(self):
        """rate_up = 2000 bytes/s: of 200 datagrams of 1000 bytes sent at
        once, only the burst goes (a few); the rest are drop_limit."""
        e = self.echo()
        d = self.start(rules='rules = ( { action = "pass"; rate_up = 2000; } );\n')
        ctl, r = associate(("127.0.0.1", d.port))
        u = self.client()
        for _ in range(200):
            u.sendto(udp_header(*e.addr) + bytes(1000), (r[3], r[4]))
        wait_until(lambda: len(e.got) > 0, 10, "a first datagram through")
        # A datagram after the burst, then a wait for the relay's socket to
        # have nothing queued: it has read the burst (what the kernel kept
        # of it) and "last" before the session ends.
        u.sendto(udp_header(*e.addr) + b"last", (r[3], r[4]))
        wait_until(lambda: udp_rx_queue(r[4]) == 0, 10,
                   "the relay to read every queued datagram")
        f = self.end_line(d, ctl)
        sent, dropped = int(f["dgrams_up"]), int(f["drop_limit"])
        self.assertGreater(sent, 0, f)
        self.assertLessEqual(sent, 5, f)
        # The kernel may drop some of the burst before the relay reads
        # it; of what it read, the cap dropped all but the first few.
        self.assertGreaterEqual(dropped, 40, f)
        wait_until(lambda: len(e.got) == sent, 5, "the echo to see what was sent")

def udp_rx_queue(port):
    """Bytes queued to the UDP socket bound to this local port (IPv4 or
    IPv6, this namespace's /proc/net/udp*); None when there is none."""
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with open(name) as f:
            for line in f.read().splitlines()[1:]:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port:
                    return int(cols[4].split(":")[1], 16)
    return None


if __name__ == "__main__":
    unittest.main()
