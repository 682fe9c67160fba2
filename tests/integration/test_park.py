"""Parking: a session idle for relay.park_after seconds moves from its worker
to a hub process, which relays it on and writes its audit line (parked=1)."""

import ctypes
import os
import re
import signal
import socket
import struct
import threading
import time
import unittest

from harness import (fd_count, finish_daemon, IS_ROOT, Daemon, Pattern, TcpServer, Thread, echo_handler,
                     echo_roundtrip, local_addr, needs_socks5d, open_session,
                     proc_stat, read_until_closed, recv_exact, recv_hash, send_around_urgent,
                     send_pattern, set_linger0, sink_handler, urgent_handler, wait_closed,
                     wait_until)

PARK = dict(park_after=1)

# struct hub_msg (hubmsg.h, version 3) on 64-bit Linux: magic, version,
# the struct audit_record (audit.h), last_ms, done[2], first_eof, and the
# struct limits_msg (limits_shm.h).
HUB_MAGIC = 0x73356862
HUB_VERSION = 3


class AuditUdp(ctypes.Structure):  # struct audit_udp: UDP ASSOCIATE counts
    _fields_ = [("dgrams_up", ctypes.c_uint64), ("dgrams_down", ctypes.c_uint64),
                ("dests", ctypes.c_uint32)] + \
               [(k, ctypes.c_uint64) for k in ("drop_stranger", "drop_header", "drop_frag",
                                               "drop_rule", "drop_resolve", "drop_source",
                                               "drop_send", "drop_limit")]


class AuditRecord(ctypes.Structure):
    _fields_ = [("client", ctypes.c_uint8 * 128), ("listener", ctypes.c_uint8 * 128),
                ("target", ctypes.c_uint8 * 128), ("dst", ctypes.c_char * 1036),
                ("user", ctypes.c_uint8 * 255), ("user_len", ctypes.c_uint8),
                ("ngroups", ctypes.c_uint16), ("method", ctypes.c_int16),
                ("cmd", ctypes.c_int16), ("rule", ctypes.c_int32),
                ("rule_name", ctypes.c_char * 32), ("quiet", ctypes.c_uint8),
                ("rep", ctypes.c_int16),
                ("parked", ctypes.c_bool), ("end", ctypes.c_int), ("start_ms", ctypes.c_int64),
                ("up", ctypes.c_uint64), ("down", ctypes.c_uint64), ("udp", AuditUdp),
                ("sid", ctypes.c_uint64)]


class LimitsMsg(ctypes.Structure):
    _fields_ = [("holds", ctypes.c_uint32 * 4), ("rate", ctypes.c_uint64 * 2),
                ("tat", ctypes.c_int64 * 2), ("shared", ctypes.c_uint8)]


class HubMsg(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_uint32), ("version", ctypes.c_uint32),
                ("rec", AuditRecord), ("last_ms", ctypes.c_int64),
                ("done", ctypes.c_uint8 * 2), ("first_eof", ctypes.c_int8),
                ("lim", LimitsMsg)]


HUB_MSG_SIZE = ctypes.sizeof(HubMsg)


def hub_msg(magic=HUB_MAGIC, version=HUB_VERSION, dst=b"x:1\0", size=HUB_MSG_SIZE):
    m = HubMsg(magic=magic, version=version)
    v4 = struct.pack("=H", socket.AF_INET) + bytes(126)
    for name in ("client", "listener", "target"):
        ctypes.memmove(ctypes.addressof(getattr(m.rec, name)), v4, 128)
    ctypes.memmove(ctypes.addressof(m.rec) + AuditRecord.dst.offset,
                   dst.ljust(1036, b"\0")[:1036], 1036)
    m.rec.method = m.rec.cmd = 0
    m.rec.rule = m.rec.rep = 1
    m.first_eof = -1
    # The daemon's clock (CLOCK_MONOTONIC, ms): a session that started and
    # moved its last byte now, not at boot (past the idle timeout once the
    # machine has been up longer than it).
    now_ms = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000)
    m.rec.start_ms = m.last_ms = now_ms
    body = bytes(m)
    return (body + bytes(max(0, size - len(body))))[:size]


def bad_field(msg, what):
    """msg with one field made invalid: the client's address family, or
    both directions marked done."""
    b = bytearray(msg)
    if what == "family":
        off = HubMsg.rec.offset + AuditRecord.client.offset
        b[off:off + 2] = b"\0\0"
    else:
        off = HubMsg.done.offset
        b[off:off + 2] = b"\1\1"
    return bytes(b)


def steal_channel(pid):
    """The worker's end of its hub channel, taken with pidfd_getfd(2)
    (needs root): the AF_UNIX SOCK_SEQPACKET socket it holds."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(438, pidfd, int(name), 0)  # pidfd_getfd
            if fd < 0:
                continue
            s = socket.socket(fileno=fd)
            if s.family == socket.AF_UNIX and s.type == socket.SOCK_SEQPACKET:
                return s
            s.detach()
            os.close(fd)
    finally:
        os.close(pidfd)
    return None


def cpu_ticks(pid):
    """User + system CPU time of pid so far, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def reply_after_eof_handler(conn, server):
    """Reads to EOF, then sends a reply of 300000 bytes and closes."""
    got = 0
    while True:
        b = conn.recv(65536)
        if not b:
            break
        got += len(b)
    conn.sendall(b"r" * 300000)
    return got


def talk_first_handler(conn, server):
    """Waits for one byte, sends 200000 bytes and half-closes, then reads
    what the client still sends until its EOF."""
    recv_exact(conn, 1, 30)
    conn.sendall(b"t" * 200000)
    conn.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        b = conn.recv(65536)
        if not b:
            return got
        got += len(b)


def pattern_on_request(pattern):
    """Waits for one byte, sends the pattern and half-closes, then reads
    until the client's EOF or reset."""
    def handler(conn, server):
        recv_exact(conn, 1, 30)
        try:
            send_pattern(conn, pattern)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except OSError:
            pass
        return pattern.length
    return handler


@needs_socks5d
class ParkBase(unittest.TestCase):
    relay = "splice"

    def start(self, workers=None, timeouts=None, relay_extra=PARK):
        d = Daemon(relay=self.relay, workers=workers, timeouts=timeouts,
                   debug=True, relay_extra=relay_extra).start()
        self.daemons.append(d)
        return d

    def setUp(self):
        self.daemons = []
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def tearDown(self):
        for d in self.daemons:
            finish_daemon(d)

    def parked(self, d, sock, since=0, timeout=10):
        """Waits for the hub's `park client=...` line of this client."""
        addr = local_addr(sock)
        return d.wait_log(r"\bpark client=" + re.escape(f"{addr[0]}:{addr[1]}")
                          + r" hub=\d+", since, timeout)

    def session_fields(self, d, sock, since=0, timeout=10):
        fields = d.session(local_addr(sock), since, timeout)
        self.assertEqual(fields.get("parked"), "1", fields)
        return fields

    # ---- (1) a parked session frees its worker and still relays exactly

    def test_parked_session_frees_worker_and_relays(self):
        d = self.start(workers=dict(min_spare=1, max_spare=1, max=1))
        first, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with first:
            echo_roundtrip(first, b"before parking")
            self.parked(d, first)
            # With one worker, a second client is served only because the
            # first session left it.
            second, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
            with second:
                echo_roundtrip(second, b"second client")
            # Both ways through the hub, 1 MiB, checked by hash.
            pat = Pattern(1 << 20, seed=3)
            reader = Thread(recv_hash, first, pat.length)
            reader.start()
            send_pattern(first, pat)
            self.assertEqual(reader.join_result(30), (pat.length, pat.sha256()))
            first.shutdown(socket.SHUT_WR)
            self.assertEqual(wait_closed(first), b"")
        n = len(b"before parking") + (1 << 20)
        fields = self.session_fields(d, first)
        self.assertEqual(fields["up"], str(n), fields)
        self.assertEqual(fields["down"], str(n), fields)
        self.assertEqual(fields["end"], "client", fields)
        self.assertEqual(fields["rep"], "0", fields)
        # The worker logged nothing for it: exactly one audit line.
        addr = local_addr(first)
        lines = [l for l in d.text().splitlines()
                 if re.search(r"\bsession .*client=" + re.escape(f"{addr[0]}:{addr[1]}") + r"\s", l)]
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(d.stop(), 0)

    # ---- (1b) a slow reader through the hub; what the hub holds is never
    # handed to the next session

    def test_slow_reader_and_reset_after_parking(self):
        """The client reads through an 8 KiB window, so the hub holds bytes
        it cannot send at once (in a pipe in splice mode, a buffer in copy
        mode). Then a client resets while the hub holds some; a third
        session, given the same pipes or buffers, still gets exact bytes."""
        d = self.start()
        pat = Pattern(4 << 20, seed=5)
        srv = TcpServer(pattern_on_request(pat))
        self.addCleanup(srv.close)
        hub = wait_until(lambda: d.hub_pids(), 10, "a hub")[0]
        for step in ("slow", "reset", "again"):
            c, _ = open_session(("127.0.0.1", d.port), *srv.addr, rcvbuf=4096)
            with c:
                self.parked(d, c)
                c.sendall(b"x")
                if step == "reset":
                    recv_exact(c, 65536, 15)
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
                    continue
                self.assertEqual(recv_hash(c), (pat.length, pat.sha256()), step)
                c.shutdown(socket.SHUT_WR)
            fields = self.session_fields(d, c)
            self.assertEqual((fields["up"], fields["down"]),
                             ("1", str(pat.length)), fields)
        self.assertEqual(d.hub_pids(), [hub])
        self.assertEqual(d.stop(), 0)

    def test_urgent_byte_after_parking(self):
        """As in test_relay: an urgent byte is stepped over, not relayed,
        and the hub neither spins on it nor loses what follows."""
        d = self.start()
        e, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with e:  # no FIN: what follows the urgent byte must still come
            self.parked(d, e)
            send_around_urgent(e, b"a", b"bbbb")
            self.assertEqual(recv_exact(e, 5, 15), b"abbbb")
        srv = TcpServer(urgent_handler)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr)
        with c:
            self.parked(d, c)
            send_around_urgent(c, b"a", b"bbbb")
            c.shutdown(socket.SHUT_WR)
            self.assertEqual(srv.result(15), b"abbbb")
            self.assertEqual(wait_closed(c, 15), b"rssss")
        fields = self.session_fields(d, c)
        self.assertEqual((fields["up"], fields["down"]), ("5", "5"), fields)
        self.assertEqual(d.stop(), 0)

    # ---- (2) half-close after parking, both ways

    def test_client_half_close_after_parking(self):
        d = self.start()
        srv = TcpServer(reply_after_eof_handler)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr)
        with c:
            self.parked(d, c)
            c.sendall(b"q" * 5000)
            c.shutdown(socket.SHUT_WR)
            self.assertEqual(srv.result(15), 5000)
            data = wait_closed(c, 15)
            self.assertEqual(data, b"r" * 300000)
        fields = self.session_fields(d, c)
        self.assertEqual((fields["up"], fields["down"]), ("5000", "300000"), fields)
        self.assertEqual(fields["end"], "client", fields)
        self.assertEqual(d.stop(), 0)

    def test_target_half_close_after_parking(self):
        d = self.start()
        srv = TcpServer(talk_first_handler)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr)
        with c:
            self.parked(d, c)
            c.sendall(b"x")
            got = recv_exact(c, 200000, 15)
            self.assertEqual(got, b"t" * 200000)
            # The target's EOF arrives; the client can still send.
            c.settimeout(10)
            self.assertEqual(c.recv(1), b"")
            c.sendall(b"y" * 70000)
            c.shutdown(socket.SHUT_WR)
            self.assertEqual(srv.result(15), 70000)
            wait_closed(c, 10)
        fields = self.session_fields(d, c)
        self.assertEqual((fields["up"], fields["down"]), ("70001", "200000"), fields)
        self.assertEqual(fields["end"], "target", fields)
        self.assertEqual(d.stop(), 0)

    # ---- (2b) resets after parking: an aborted session must not look
    # complete, and the audit line names the side

    def test_target_reset_after_parking(self):
        d = self.start()
        part = os.urandom(100_000)

        def target(conn, srv):
            recv_exact(conn, 3, 30)
            conn.sendall(part)
            recv_exact(conn, 2, 10)  # the client has it all
            set_linger0(conn)
            conn.close()
            return "reset sent"
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr)
        with c:
            self.parked(d, c)
            c.sendall(b"GET")
            self.assertEqual(recv_exact(c, len(part)), part)
            c.sendall(b"ok")
            self.assertEqual(read_until_closed(c), (b"", "reset"))
        self.assertEqual(srv.result(), "reset sent")
        fields = self.session_fields(d, c)
        self.assertEqual((fields["up"], fields["down"], fields["end"]),
                         ("5", str(len(part)), "target"), fields)
        self.assertEqual(d.stop(), 0)

    def test_client_reset_after_parking(self):
        d = self.start()
        part = os.urandom(100_000)

        def target(conn, srv):
            got = recv_exact(conn, len(part), 30)
            conn.sendall(b"ack")
            rest, how = read_until_closed(conn, 10)
            return got == part, rest, how
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr)
        with c:
            self.parked(d, c)
            c.sendall(part)
            self.assertEqual(recv_exact(c, 3), b"ack")
            set_linger0(c)
        self.assertEqual(srv.result(15), (True, b"", "reset"))
        fields = self.session_fields(d, c)
        self.assertEqual((fields["up"], fields["down"], fields["end"]),
                         (str(len(part)), "3", "client"), fields)
        self.assertEqual(d.stop(), 0)

    # ---- (2c) half-closed sessions are parked too, and free their workers

    def test_half_closed_sessions_are_parked(self):
        """Eight clients send a request and half-close; their targets read
        to EOF and keep their own half open, silent. Idle, every one of the
        eight is parked, so that four workers serve a ninth client while
        all eight are open. Then the targets answer through the hub and
        close: each client gets every byte, then EOF."""
        d = self.start(workers=dict(min_spare=1, max_spare=2, max=4))
        answer = Pattern(256 << 10, seed=13)
        release = threading.Event()
        lock, seen_eof = threading.Lock(), []

        def target(conn, srv):
            req = sink_handler(conn, srv)  # to the client's relayed FIN
            with lock:
                seen_eof.append(req)
            release.wait(60)
            send_pattern(conn, answer)
            return req  # the server closes conn after this
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        self.addCleanup(release.set)
        socks = []
        try:
            for i in range(8):
                # Beyond four, a client is served once a session parked.
                c, _ = open_session(("127.0.0.1", d.port), *srv.addr, timeout=30)
                socks.append(c)
                c.sendall(b"request %d" % i)
                c.shutdown(socket.SHUT_WR)
            wait_until(lambda: len(seen_eof) == 8, 30, "every target to see its client's FIN")
            for c in socks:
                self.parked(d, c, 0, 30)
            self.assertLessEqual(len(d.workers_pids()), 4)
            n, _ = open_session(("127.0.0.1", d.port), *self.echo.addr, timeout=15)
            with n:
                echo_roundtrip(n, b"ninth client")
            release.set()
            for c in socks:
                c.settimeout(30)
                self.assertEqual(recv_hash(c), (answer.length, answer.sha256()))
        finally:
            for c in socks:
                c.close()
        for i, c in enumerate(socks):
            fields = self.session_fields(d, c, 0, 15)
            self.assertEqual((fields["up"], fields["down"], fields["end"]),
                             (str(len(b"request %d" % i)), str(answer.length), "client"),
                             fields)
        self.assertEqual(d.stop(), 0)

    def test_target_half_closed_session_is_parked(self):
        """The mirror image: the target sends a banner and half-closes,
        the client reads to EOF and goes quiet; the session is parked
        half-closed, and the client's upload still reaches the target."""
        d = self.start()
        upload = Pattern(1 << 20, seed=15)

        def target(conn, srv):
            conn.sendall(b"banner")
            conn.shutdown(socket.SHUT_WR)
            return recv_hash(conn)
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr)
        with c:
            self.assertEqual(read_until_closed(c), (b"banner", "eof"))
            self.parked(d, c)
            send_pattern(c, upload)
            c.shutdown(socket.SHUT_WR)
            self.assertEqual(srv.result(15), (upload.length, upload.sha256()))
            self.assertEqual(wait_closed(c), b"")
        fields = self.session_fields(d, c)
        self.assertEqual((fields["up"], fields["down"], fields["end"]),
                         (str(upload.length), "6", "target"), fields)
        self.assertEqual(d.stop(), 0)

    def test_hung_up_target_while_parked_does_not_spin(self):
        """Parked, the client half-closes and reads nothing; the target
        answers with more than the client's side holds and half-closes too,
        and all of it reaches the daemon's target socket, which is then
        hung up (both halves shut) while the hub still holds bytes for the
        client. Level-triggered epoll reports that hang-up whatever it is
        asked: the hub must not spin on it. Then the client gets it all.

        How much the daemon's sockets take is the kernel's autotuning: the
        answer's size is searched (bounded) for one that is all acked by
        the daemon (FIN too) while the session is still open."""
        d = self.start(relay_extra=dict(PARK, pipe_size=4096))
        hub = wait_until(lambda: d.hub_pids(), 10, "a hub")[0]
        lo, hi, size = 256 << 10, 16 << 20, 3 << 20
        for attempt in range(8):
            state, c, spent, took = self.hung_up_attempt(d, hub, size)
            if state == "held":
                break
            if state == "all delivered":
                lo = size
            else:
                hi = size
            size = (lo + hi) // 2
        else:
            self.skipTest(f"no answer size left the daemon's target socket hung up "
                          f"with bytes held (last tried {size})")
        self.assertLess(spent, 0.2 * took * os.sysconf("SC_CLK_TCK"),
                        f"hub used {spent} ticks in {took:.1f}s while idle")
        fields = self.session_fields(d, c)
        self.assertEqual(fields["end"], "client", fields)
        self.assertEqual(d.stop(), 0)

    def hung_up_attempt(self, d, hub, size):
        """One session of the test above: (state, client socket, hub CPU
        ticks, seconds) with state "held" (the hang-up with bytes held,
        CPU measured), "all delivered" or "not all acked"."""
        answer = Pattern(size, seed=19)
        acked, not_acked = threading.Event(), threading.Event()

        def all_acked(conn):
            info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            state, unacked = info[0], struct.unpack_from("I", info, 24)[0]
            return unacked == 0 and state in (5, 7)  # FIN_WAIT2, CLOSE

        def target(conn, srv):
            req = sink_handler(conn, srv)
            send_pattern(conn, answer)  # may wait for the client to read
            conn.shutdown(socket.SHUT_WR)
            try:
                wait_until(lambda: all_acked(conn), 3, "the answer and FIN acked")
                acked.set()
            except AssertionError:
                not_acked.set()
            return req
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        mark = d.mark()
        state, spent, took = None, 0, 0.0
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr, rcvbuf=4096)
        with c:
            self.parked(d, c, mark)
            c.sendall(b"x")
            c.shutdown(socket.SHUT_WR)
            try:
                wait_until(lambda: acked.is_set() or not_acked.is_set(), 6,
                           "the target's answer to be in the daemon's hands")
            except AssertionError:
                state = "not all acked"  # the target still sending
            if state is None and not_acked.is_set():
                state = "not all acked"
            if state is None and d.find(r"\bsession .*client=" + re.escape(
                    "%s:%d" % local_addr(c)), mark):
                state = "all delivered"
            if state is None:
                state = "held"
                # A window in which the client reads nothing (and the
                # session must stay open: no audit line): the CPU the hub
                # uses in it.
                before = cpu_ticks(hub)
                t0 = time.monotonic()
                with self.assertRaises(AssertionError):
                    d.session(local_addr(c), mark, 1.0)
                spent = cpu_ticks(hub) - before
                took = time.monotonic() - t0
            c.settimeout(30)
            self.assertEqual(recv_hash(c), (answer.length, answer.sha256()), state)
        self.assertEqual(srv.result(), b"x")
        fields = self.session_fields(d, c, mark)
        self.assertEqual((fields["up"], fields["down"]), ("1", str(answer.length)), fields)
        return state, c, spent, took

    # ---- (3) the idle timeout goes on while parked

    def test_idle_timeout_while_parked(self):
        d = self.start(timeouts=dict(idle=3))
        c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with c:
            echo_roundtrip(c, b"ping")
            t0 = time.monotonic()
            self.parked(d, c)
            wait_closed(c, 10)
            elapsed = time.monotonic() - t0
        fields = self.session_fields(d, c)
        self.assertEqual(fields["end"], "idle", fields)
        self.assertEqual((fields["up"], fields["down"]), ("4", "4"), fields)
        # From the last byte, across the handover: about 3 s, not 1 + 3
        # (idle counted from the handover), which this bound tells apart.
        self.assertLess(elapsed, 3 + 0.9, fields)
        self.assertGreaterEqual(float(fields["secs"]), 2.9, fields)
        self.assertEqual(d.stop(), 0)

    def test_idle_while_parked_with_bytes_held_resets_the_reader(self):
        """As in test_relay: the client stops reading mid-download, here
        after parking, and the hub holds bytes it cannot deliver when the
        idle timeout ends the session: the client must hear a reset, not a
        clean EOF after a cut download."""
        d = self.start(timeouts=dict(idle=3))
        data = Pattern(16 << 20, seed=27)
        want = b"".join(bytes(c) for c in data.chunks())

        def target(conn, srv):
            recv_exact(conn, 1, 30)
            try:
                conn.sendall(want)
            except OSError:
                pass
            return "done"
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr, rcvbuf=4096)
        with c:
            self.parked(d, c)
            c.sendall(b"x")
            fields = self.session_fields(d, c, 0, 15)  # the idle end
            got, how = read_until_closed(c, 15)
        self.assertEqual(fields["end"], "idle", fields)
        self.assertLess(len(got), data.length)
        self.assertEqual(got, want[:len(got)])
        self.assertEqual(how, "reset", f"a clean EOF after {len(got)} of {data.length} bytes "
                         f"(down={fields.get('down')})")
        self.assertEqual(d.stop(), 0)

    # ---- (4) SIGTERM ends parked sessions at the grace

    def test_sigterm_with_parked_session(self):
        d = self.start(timeouts=dict(shutdown=2))
        c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with c:
            echo_roundtrip(c, b"ping")
            self.parked(d, c)
            hubs = d.hub_pids()
            self.assertTrue(hubs, "no hub process")
            mark = d.mark()
            t0 = time.monotonic()
            d.remember_children()
            d.signal(signal.SIGTERM)
            wait_closed(c, 2 + 3)
            self.assertLess(time.monotonic() - t0, 2 + 2)
            fields = d.session(local_addr(c), mark, 5)
        self.assertEqual(fields.get("end"), "shutdown", fields)
        self.assertEqual(fields.get("parked"), "1", fields)
        d.proc.wait(10)
        self.assertEqual(d.proc.returncode, 0, d.text()[-2000:])
        wait_until(lambda: not d.session_pids(), 5, "no process of the daemon left")
        for h in hubs:
            self.assertIn((proc_stat(h) or ("gone",))[0], ("gone",), f"hub {h} left")
        self.assertEqual(d.stop(), 0)

    def test_sigterm_cut_mid_transfer_while_parked_resets_both(self):
        """A parked session still moving bytes at the stop's cut: the hub
        ends it with end=shutdown and resets both sides, so that neither
        takes the cut stream for a complete one."""
        grace = 2
        d = self.start(timeouts=dict(shutdown=grace))
        data = Pattern(64 << 20, seed=17)  # far more than the buffers hold

        def target(conn, srv):
            recv_exact(conn, 1, 30)
            try:
                send_pattern(conn, data)
                return read_until_closed(conn, 30)[1]
            except (ConnectionResetError, BrokenPipeError):
                return "reset"
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        c, _ = open_session(("127.0.0.1", d.port), *srv.addr, rcvbuf=65536)
        with c:
            self.parked(d, c)
            c.sendall(b"x")
            recv_exact(c, 65536, 15)  # under way, through the hub
            mark = d.mark()
            d.remember_children()
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            fields = d.session(local_addr(c), mark, grace + 5)
            took = time.monotonic() - t0
            got, how = read_until_closed(c, 10)
        self.assertEqual((fields.get("end"), fields.get("parked")), ("shutdown", "1"), fields)
        self.assertEqual(how, "reset", f"after {65536 + len(got)} bytes")
        self.assertLess(65536 + len(got), data.length)
        self.assertGreater(took, grace - 0.5, "cut before the grace ran out")
        self.assertLess(took, grace + 2)
        self.assertEqual(srv.result(10), "reset")
        d.proc.wait(grace + 10)
        self.assertEqual(d.proc.returncode, 0, d.text()[-2000:])

    # ---- (5) SIGHUP: the old generation's hub keeps its sessions

    def test_sighup_keeps_parked_session(self):
        d = self.start()
        c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with c:
            echo_roundtrip(c, b"ping")
            self.parked(d, c)
            old_hubs = set(d.hub_pids())
            old_workers = set(d.workers_pids())
            mark = d.mark()
            d.signal(signal.SIGHUP)
            d.wait_log(r"reload generation=2", mark, 10)
            wait_until(lambda: set(d.hub_pids()) - old_hubs, 10, "the new generation's hub")
            # An old worker still in accept when told to retire takes a
            # client that arrives then (so that no wake-up is lost) and
            # cannot park it any more; wait until the old ones are gone.
            wait_until(lambda: not (set(d.workers_pids()) & old_workers), 10,
                       "the old generation's idle workers to exit")
            # The old hub stays for its session, and it works.
            self.assertTrue(set(d.hub_pids()) & old_hubs, "old hub gone with a session")
            echo_roundtrip(c, b"after reload" * 1000)
            # New sessions are parked by the new generation's hub.
            n, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
            with n:
                self.parked(d, n, mark)
                echo_roundtrip(n, b"new")
            c.shutdown(socket.SHUT_WR)
            wait_closed(c)
        fields = self.session_fields(d, c, mark)
        self.assertEqual(fields["up"], str(4 + 12000), fields)
        # The old hub exits once its last session ended.
        wait_until(lambda: not (set(d.hub_pids()) & old_hubs), 10, "the old hub to exit")
        self.assertEqual(d.stop(), 0)

    # ---- (6) many parked at once

    def test_200_parked_sessions(self):
        d = self.start(workers=dict(min_spare=2, max_spare=4, max=16))
        socks = []
        try:
            for i in range(200):
                # A full pool waits for a worker to park its session.
                s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr, timeout=30)
                socks.append(s)
            for s in socks:
                self.parked(d, s, 0, 30)
            self.assertLessEqual(len(d.workers_pids()), 16)
            for i, s in enumerate(socks):
                echo_roundtrip(s, b"session %d " % i * 100)
            for s in socks:
                s.shutdown(socket.SHUT_WR)
            for s in socks:
                wait_closed(s)
        finally:
            for s in socks:
                s.close()
        for i, s in enumerate(socks):
            fields = self.session_fields(d, s, 0, 15)
            n = len(b"session %d " % i * 100)
            self.assertEqual((fields["up"], fields["down"]), (str(n), str(n)), fields)
        self.assertEqual(d.stop(), 0)

    # ---- the hub is supervised like a worker

    def test_hub_killed_is_respawned(self):
        d = self.start()
        hub = wait_until(lambda: d.hub_pids(), 10, "a hub")[0]
        mark = d.mark()
        os.kill(hub, signal.SIGKILL)
        d.wait_log(rf"hub-exit pid={hub} generation=1 status=signal:9", mark, 10)
        new = wait_until(lambda: [p for p in d.hub_pids() if p != hub], 10, "a new hub")
        self.assertTrue(new)
        c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with c:
            self.parked(d, c, mark)
            echo_roundtrip(c, b"after respawn")
        self.assertEqual(d.stop(), 0)

    def test_sessions_queued_for_a_dead_hub_are_drained_after_reload(self):
        # A hub that stops reading (SIGSTOP) and then dies after a reload
        # leaves handed-over sessions in its channel: the master starts a
        # hub just to drain it, so they still relay and are logged.
        d = self.start(workers=dict(min_spare=1, max_spare=1, max=1))
        hub = wait_until(lambda: d.hub_pids(), 10, "a hub")[0]
        os.kill(hub, signal.SIGSTOP)
        try:
            c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
            # With one worker, a second client is served only once the
            # first session went into the (stopped) hub's channel.
            c2, _ = open_session(("127.0.0.1", d.port), *self.echo.addr, timeout=15)
            c2.close()
            mark = d.mark()
            d.signal(signal.SIGHUP)
            d.wait_log(r"reload generation=2", mark, 10)
        finally:
            # SIGKILL ends a stopped process too (no SIGCONT needed). The
            # master may reap it at once: a later kill(2) of that pid
            # would fail with ESRCH, or hit a new process with that pid.
            os.kill(hub, signal.SIGKILL)
        with c:
            d.wait_log(rf"hub-exit pid={hub} generation=1 status=signal:9", mark, 10)
            self.parked(d, c, mark)
            echo_roundtrip(c, b"drained" * 100)
            c.shutdown(socket.SHUT_WR)
            wait_closed(c)
        fields = self.session_fields(d, c, mark)
        self.assertEqual(fields["up"], str(700), fields)
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(IS_ROOT, "pidfd_getfd on a worker needs root")
    def test_hand_made_message_is_relayed(self):
        """The layout above is the daemon's: a well-formed message with two
        connected TCP sockets is relayed by the hub and logged as parked."""
        d = self.start(workers=dict(min_spare=1, max_spare=1, max=1))
        wait_until(lambda: d.hub_pids(), 10, "a hub")
        worker = wait_until(lambda: d.workers_pids(), 10, "a worker")[0]
        chan = steal_channel(worker)
        self.assertIsNotNone(chan, "no SEQPACKET socket in the worker")
        mark = d.mark()
        with socket.create_server(("127.0.0.1", 0)) as lst:
            def tcp_pair():
                a = socket.create_connection(lst.getsockname(), timeout=10)
                b, _ = lst.accept()
                return a, b
            client, client_end = tcp_pair()
            target_end, target = tcp_pair()
        with chan, client, target:
            socket.send_fds(chan, [hub_msg(dst=b"made:7\0")],
                            [client_end.fileno(), target_end.fileno()])
            client_end.close()
            target_end.close()
            client.sendall(b"up")
            self.assertEqual(recv_exact(target, 2, 10), b"up")
            target.sendall(b"down!")
            self.assertEqual(recv_exact(client, 5, 10), b"down!")
            client.shutdown(socket.SHUT_WR)
            self.assertEqual(wait_closed(target), b"")
        line = d.wait_log(r"session .*dst=made:7 .*", mark, 10)
        for kv in ("up=2", "down=5", "end=client", "parked=1"):
            self.assertIn(kv, line)
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(IS_ROOT, "pidfd_getfd on a worker needs root")
    def test_bad_messages_do_not_hurt_the_hub(self):
        d = self.start(workers=dict(min_spare=1, max_spare=1, max=1))
        hub = wait_until(lambda: d.hub_pids(), 10, "a hub")[0]
        worker = wait_until(lambda: d.workers_pids(), 10, "a worker")[0]
        chan = steal_channel(worker)
        self.assertIsNotNone(chan, "no SEQPACKET socket in the worker")
        mark = d.mark()
        keep, sent = [], []

        def pair():
            a, b = socket.socketpair()
            keep.append(b)
            sent.append(a)
            return a.fileno()

        r, w = os.pipe()
        bad = [
            (hub_msg()[:100], [pair(), pair()]),              # short
            (hub_msg() + b"x", [pair(), pair()]),             # long
            (hub_msg(magic=1), [pair(), pair()]),             # magic
            (hub_msg(version=9), [pair(), pair()]),           # version
            (hub_msg(), [pair()]),                            # one fd
            (hub_msg(), [pair(), pair(), pair()]),            # three fds
            (hub_msg(), [pair(), r]),                         # not a socket
            (hub_msg(dst=b"y" * 1036), [pair(), pair()]),     # dst unterminated
            (hub_msg(), []),                                  # no fds
            (b"", []),                                        # empty
            (hub_msg(dst=b"a b:1\0"), [pair(), pair()]),      # dst not escaped
            (bad_field(hub_msg(), "family"), [pair(), pair()]),  # no address
            (bad_field(hub_msg(), "done"), [pair(), pair()]),    # both done
        ]
        reasons = {"wrong size": 2, "truncated": 1, "wrong magic or version": 2,
                   "not exactly two fds": 3, "an fd is not a stream socket": 1,
                   "dst not terminated": 1, "dst not escaped": 1,
                   "bad address": 1, "bad relay state": 1}
        with chan:
            for data, fds in bad:
                socket.send_fds(chan, [data], fds)
        for a in sent:
            a.close()
        os.close(w)
        d.wait_log(r"bad message", mark, 10)
        wait_until(lambda: len(re.findall(r"bad message", d.text(mark))) >= len(bad),
                   10, "one log line per bad message")
        for why, n in reasons.items():
            self.assertEqual(len(re.findall(r"bad message from a worker \(%s\)" % why,
                                            d.text(mark))), n, why)
        # The hub closed what it got: our other ends see EOF.
        for b in keep:
            b.settimeout(10)
            self.assertEqual(b.recv(1), b"")
            b.close()
        os.close(r)
        self.assertIn(hub, d.hub_pids(), "the hub died")
        c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with c:
            self.parked(d, c, mark)
            echo_roundtrip(c, b"still parking")
        self.assertEqual(d.stop(), 0)

    def test_no_hub_without_parking(self):
        d = self.start(relay_extra=dict(park_after=0))
        c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with c:
            echo_roundtrip(c, b"x")
        self.assertEqual(d.hub_pids(), [])
        self.assertEqual(d.stop(), 0)


class ParkSplice(ParkBase):
    relay = "splice"

    # Hubs take pipes in splice mode only.
    def test_hub_pipes_are_given_back(self):
        """Splice mode: eight parked sessions holding bytes at once take a
        pipe each; when they are done, a quiet second later the hub keeps
        four empty ones (HUB_PIPES_KEPT) and closes the rest."""
        d = self.start()
        pat = Pattern(6 << 20, seed=9)  # more than a socket buffer holds
        srv = TcpServer(pattern_on_request(pat))
        self.addCleanup(srv.close)
        hub = wait_until(lambda: d.hub_pids(), 10, "a hub")[0]
        socks = []
        try:
            for _ in range(8):
                c, _ = open_session(("127.0.0.1", d.port), *srv.addr, rcvbuf=4096)
                socks.append(c)
            for c in socks:
                self.parked(d, c)
            # The hub's own fds, counted once it has logged the parks: it
            # is named socks5d-hub before it opens its signalfd and epoll
            # fd, so a count taken as soon as it shows may miss them.
            # Nothing moved yet, so it holds no pipe; two sockets a session.
            base = fd_count(hub) - 8 * 2
            for c in socks:
                c.sendall(b"x")
            # Nobody reads yet: every session holds bytes in a pipe.
            wait_until(lambda: fd_count(hub) >= base + 8 * 2 + 8 * 2, 10,
                       "a pipe per session")
            for c in socks:  # now read at full speed
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                self.assertEqual(recv_hash(c), (pat.length, pat.sha256()))
        finally:
            for c in socks:
                c.close()
        wait_until(lambda: fd_count(hub) == base + 4 * 2, 10,
                   "four empty pipes kept")
        self.assertEqual(d.stop(), 0)


class ParkCopy(ParkBase):
    relay = "copy"


del ParkBase
