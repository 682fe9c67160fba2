"""The relay, in both modes (splice, copy): bulk data with checksums,
half-close both ways, both directions at once, pipelined bytes, byte counts,
IPv6 targets and listener."""

import os
import signal
import socket
import threading
import time

from harness import (DUAL_NAME, V6ONLY_NAME, Daemon, DaemonCase, Pattern, TcpServer,
                     Thread, connect_proxy, echo_handler, echo_roundtrip, finish_daemon,
                     local_addr, needs_netns, needs_socks5d,
                     open_session, read_reply, read_until_closed, recv_exact, recv_hash,
                     request_bytes, send_around_urgent, send_pattern, set_linger0,
                     sink_handler, urgent_handler, wait_closed, wait_until,
                     IS_MICROSOCKS)

MiB = 1 << 20


class RelayBase(DaemonCase):
    v6 = True

    def test_16mib_each_way_sha256(self):
        pat = Pattern(16 * MiB, seed=1)
        s, _ = open_session(self.proxy, *self.echo.addr, timeout=30)
        with s:
            s.settimeout(30)

            def upload():
                send_pattern(s, pat)
                s.shutdown(socket.SHUT_WR)  # echo closes after our EOF

            t = Thread(upload)
            t.start()
            count, digest = recv_hash(s)
            t.join_result(30)
        self.assertEqual(count, pat.length)
        self.assertEqual(digest, pat.sha256())
        self.session_log(s, rep=0, up=pat.length, down=pat.length, end="client")

    def test_exact_byte_counts_and_target_close(self):
        # Different sizes each way so that swapped up/down would show.
        up, down = os.urandom(1234), os.urandom(4321)

        def target(conn, srv):
            got = recv_exact(conn, len(up), 10)
            conn.sendall(down)
            return got  # the server closes the connection after this
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)
        with s:
            s.sendall(up)
            self.assertEqual(recv_exact(s, len(down)), down)
            self.assertEqual(wait_closed(s), b"")
        self.assertEqual(srv.result(), up)
        self.session_log(s, rep=0, up=1234, down=4321, end="target")

    def test_urgent_byte_neither_stalls_nor_loses_data(self):
        # A byte sent with MSG_OOB (TCP urgent data) is not relayed, as
        # with recv(). splice(2) stops at it for good, so the relay must
        # step over it: no spin, nothing after it lost, both ways, with a
        # FIN right behind it.
        e, _ = open_session(self.proxy, *self.echo.addr)
        with e:  # no FIN: what follows the urgent byte must still come
            send_around_urgent(e, b"a", b"bbbb")
            self.assertEqual(recv_exact(e, 5, 15), b"abbbb")
        srv = TcpServer(urgent_handler)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)
        with s:
            send_around_urgent(s, b"a", b"bbbb")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(srv.result(15), b"abbbb")
            self.assertEqual(wait_closed(s, 15), b"rssss")
        self.session_log(s, rep=0, up=5, down=5, end="client")

    def test_half_close_client_first(self):
        # Client: request, FIN. Target sees EOF, still answers, closes.
        # Client gets the whole answer, then EOF.
        answer = os.urandom(300_000)

        def target(conn, srv):
            req = sink_handler(conn, srv)  # to EOF: needs the relayed FIN
            conn.sendall(answer)
            return req
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)
        with s:
            s.sendall(b"request")
            s.shutdown(socket.SHUT_WR)
            got = wait_closed(s, 15)
        self.assertEqual(len(got), len(answer))
        self.assertEqual(got, answer)
        self.assertEqual(srv.result(), b"request")
        self.session_log(s, rep=0, up=7, down=len(answer), end="client")

    def test_half_close_client_first_then_slow_reader(self):
        # As above, but the client reads nothing until the target has sent
        # everything and closed: the proxy then holds target data in its
        # buffers while both halves of its target socket are shut (poll
        # reports POLLHUP there). All of it must still reach the client.
        for size in (2 * MiB, 4 * MiB, 6 * MiB, 8 * MiB, 32 * MiB):
            answer = Pattern(size, seed=size)

            def target(conn, srv):
                req = sink_handler(conn, srv)
                send_pattern(conn, answer)
                return req
            srv = TcpServer(target)
            self.addCleanup(srv.close)
            s, _ = open_session(self.proxy, *srv.addr)
            with s:
                s.sendall(b"request")
                s.shutdown(socket.SHUT_WR)
                try:  # the bigger size may not fit in the buffers: then read anyway
                    srv.result(1)
                except AssertionError:
                    pass
                s.settimeout(30)
                got = recv_hash(s)
            fields = self.session_log(s)
            if got != (size, answer.sha256()):
                self.fail(f"client got {got[0]} of the {size} bytes the target sent "
                          f"after the client's FIN (log: down={(fields or {}).get('down')} "
                          f"end={(fields or {}).get('end')})")
            self.assertEqual(srv.result(), b"request")

    def test_half_close_target_first(self):
        # Target: greeting, FIN. Client sees EOF, then still sends its part,
        # which the target receives before its EOF.
        banner = os.urandom(200_000)
        reply = os.urandom(300_000)

        def target(conn, srv):
            conn.sendall(banner)
            conn.shutdown(socket.SHUT_WR)
            return sink_handler(conn, srv)
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)
        with s:
            got = bytearray()
            while True:  # until the relayed FIN
                b = s.recv(65536)
                if not b:
                    break
                got += b
            self.assertEqual(bytes(got), banner)
            s.sendall(reply)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(srv.result(15), reply)
            self.assertEqual(wait_closed(s), b"")
        self.session_log(s, rep=0, up=len(reply), down=len(banner), end="target")

    def test_half_close_target_first_then_slow_reader(self):
        # The mirror image: the target has sent FIN, the client sends its
        # data and closes before the target reads any of it.
        for size in (2 * MiB, 4 * MiB, 6 * MiB, 8 * MiB, 32 * MiB):
            data = Pattern(size, seed=size + 1)
            client_done = threading.Event()

            def target(conn, srv):
                conn.sendall(b"banner")
                conn.shutdown(socket.SHUT_WR)
                client_done.wait(1)  # bounded: the bigger size may not fit
                return recv_hash(conn)
            srv = TcpServer(target)
            self.addCleanup(srv.close)
            s, _ = open_session(self.proxy, *srv.addr)
            s.settimeout(30)
            self.assertEqual(wait_closed(s), b"banner")

            def client():
                try:
                    send_pattern(s, data)
                finally:
                    s.close()
                    client_done.set()
            t = Thread(client)
            t.start()
            res = srv.result(30)
            t.join_result(30)
            fields = self.session_log(s)
            if res != (size, data.sha256()):
                got = res[0] if isinstance(res, tuple) else repr(res)
                self.fail(f"target got {got} of the {size} bytes the client sent "
                          f"after the target's FIN (log: up={(fields or {}).get('up')} "
                          f"end={(fields or {}).get('end')})")

    def test_64mib_both_ways_client_writes_before_reading(self):
        # The client writes all 64 MiB before reading a byte while the target
        # sends its own 64 MiB at the same time. A relay that blocks one
        # direction on the other deadlocks: we fail after 60 s instead.
        up, down = Pattern(64 * MiB, seed=3), Pattern(64 * MiB, seed=5)

        def target(conn, srv):
            conn.settimeout(60)
            drain = Thread(recv_hash, conn)
            drain.start()
            send_pattern(conn, down)
            conn.shutdown(socket.SHUT_WR)
            return drain.join_result(60)
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)

        def client():
            s.settimeout(60)
            send_pattern(s, up)
            s.shutdown(socket.SHUT_WR)
            return recv_hash(s)
        t = Thread(client)
        t.start()
        try:
            got = t.join_result(60)
        finally:
            s.close()  # unblocks the thread if it is stuck
        self.assertEqual(got, (down.length, down.sha256()), "client received")
        res = srv.result(10)
        self.assertNotIsInstance(res, Exception, f"target: {res!r}")
        self.assertEqual(res, (up.length, up.sha256()), "target received")
        self.session_log(s, rep=0, up=up.length, down=down.length)

    # ---- resets: an aborted session must not look like a complete one

    def test_target_reset_mid_download(self):
        # The target sends part of a download, then resets. The client,
        # which has every byte sent so far, must hear a reset, not an EOF
        # that would pass the partial download off as complete.
        part = os.urandom(100_000)

        def target(conn, srv):
            recv_exact(conn, 3, 10)
            conn.sendall(part)
            recv_exact(conn, 2, 10)  # the client has it all
            set_linger0(conn)
            conn.close()
            return "reset sent"
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)
        with s:
            s.sendall(b"GET")
            self.assertEqual(recv_exact(s, len(part)), part)
            s.sendall(b"ok")
            self.assertEqual(read_until_closed(s), (b"", "reset"))
        self.assertEqual(srv.result(), "reset sent")
        self.session_log(s, rep=0, up=5, down=len(part), end="target")

    def test_target_reset_while_sending(self):
        # Unsynchronised: the target resets with most of its data still on
        # the way. Whatever part the client got, it is a prefix and it ends
        # with a reset.
        data = Pattern(4 * MiB, seed=21)
        want = b"".join(bytes(c) for c in data.chunks())

        def target(conn, srv):
            recv_exact(conn, 3, 10)
            try:
                conn.sendall(want[:1 * MiB])
            finally:
                set_linger0(conn)
            return "reset sent"
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)
        with s:
            s.sendall(b"GET")
            self.assertEqual(srv.result(), "reset sent")
            got, how = read_until_closed(s, 15)
        self.assertEqual(how, "reset", f"after {len(got)} bytes")
        self.assertLessEqual(len(got), 1 * MiB)
        self.assertEqual(got, want[:len(got)])
        fields = self.session_log(s, rep=0, up=3, end="target")
        if fields is not None:
            self.assertLessEqual(int(fields["down"]), 1 * MiB, fields)
            self.assertGreaterEqual(int(fields["down"]), len(got), fields)

    def test_client_reset(self):
        # The client resets mid-upload: the target hears a reset, not an
        # EOF that would make the partial upload look complete.
        part = os.urandom(100_000)

        def target(conn, srv):
            got = recv_exact(conn, len(part), 10)
            conn.sendall(b"ack")
            rest, how = read_until_closed(conn, 10)
            return got == part, rest, how
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr)
        with s:
            s.sendall(part)
            self.assertEqual(recv_exact(s, 3), b"ack")
            set_linger0(s)
        self.assertEqual(srv.result(15), (True, b"", "reset"))
        self.session_log(s, rep=0, up=len(part), down=3, end="client")

    @needs_socks5d
    def test_sigterm_mid_transfer_resets_both(self):
        # The stop's cut at timeouts.shutdown ends a session still moving
        # bytes: the grace is honoured, then both sides hear a reset
        # (relay_abort_for on AUDIT_END_SHUTDOWN), not a clean EOF after
        # partial data. Its own daemon: this one is stopped.
        grace = 2
        d = Daemon(relay=self.relay, timeouts=dict(shutdown=grace)).start()
        self.addCleanup(finish_daemon, d)
        data = Pattern(64 * MiB, seed=23)  # far more than the buffers hold

        def target(conn, srv):
            recv_exact(conn, 3, 10)
            try:
                send_pattern(conn, data)
                return read_until_closed(conn, 30)[1]
            except (ConnectionResetError, BrokenPipeError):
                return "reset"
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        # A small window: the target is still sending when the cut comes.
        s, _ = open_session(("127.0.0.1", d.port), *srv.addr, rcvbuf=65536)
        with s:
            s.sendall(b"GET")
            recv_exact(s, 65536)  # under way
            mark = d.mark()
            d.remember_children()
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            fields = d.session(local_addr(s), mark, grace + 5)
            took = time.monotonic() - t0
            got, how = read_until_closed(s, 10)
        self.assertEqual(fields.get("end"), "shutdown", fields)
        self.assertEqual(how, "reset", f"after {65536 + len(got)} bytes")
        self.assertLess(65536 + len(got), data.length)
        self.assertGreater(took, grace - 0.5, "cut before the grace ran out")
        self.assertLess(took, grace + 2)
        self.assertEqual(srv.result(10), "reset")
        d.proc.wait(grace + 10)
        self.assertEqual(d.proc.returncode, 0, d.text()[-2000:])

    def test_pipelined_greeting_request_payload(self):
        # Everything in one send() before any reply: the payload belongs to
        # the data stream and must reach the target.
        srv = TcpServer(sink_handler)
        self.addCleanup(srv.close)
        payload = b"pipelined payload " + os.urandom(1000)
        s = connect_proxy(self.proxy)
        with s:
            s.sendall(b"\x05\x01\x00" + request_bytes(*srv.addr) + payload)
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            raw = read_reply(s)[0]
            self.assertEqual(raw[:4], b"\x05\x00\x00\x01", raw.hex())
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(srv.result(), payload)
            wait_closed(s)
        self.session_log(s, rep=0, up=len(payload), down=0)

    def test_many_sequential_sessions(self):
        for i in range(30):
            s, _ = open_session(self.proxy, *self.echo.addr)
            with s:
                msg = f"session {i}\n".encode() * 100
                s.sendall(msg)
                self.assertEqual(recv_exact(s, len(msg)), msg)

    def test_concurrent_sessions(self):
        # More sessions at once than min_spare: the pool grows.
        socks_ = [open_session(self.proxy, *self.echo.addr)[0] for _ in range(8)]
        try:
            for i, s in enumerate(socks_):
                s.sendall(b"%d" % i * 1000)
            for i, s in enumerate(socks_):
                self.assertEqual(recv_exact(s, len(b"%d" % i) * 1000), b"%d" % i * 1000)
        finally:
            for s in socks_:
                s.close()

    # ---- IPv6

    def v6_echo(self):
        srv = TcpServer(echo_handler, "::1")
        self.addCleanup(srv.close)
        return srv

    def check_bnd(self, srv, reply, atyp):
        raw, rep, ratyp, host, port = reply
        self.assertEqual(raw[:4], bytes([5, 0, 0, atyp]), raw.hex())
        wait_until(lambda: (host, port) in [p[:2] for p in srv.peers], 5,
                   f"target to see peer {host}:{port} (saw {srv.peers})")

    def test_ipv6_target_atyp04(self):
        srv = self.v6_echo()
        s, reply = open_session(self.proxy, "::1", srv.port)
        with s:
            self.check_bnd(srv, reply, 4)
            s.sendall(b"hello6")
            self.assertEqual(recv_exact(s, 6), b"hello6")
        self.session_log(s, rep=0, dst=f"[::1]:{srv.port}", addr=f"[::1]:{srv.port}")

    def test_ipv6_listener(self):
        if IS_MICROSOCKS:
            self.skipTest("one listener with microsocks")
        s, reply = open_session(self.proxy6, *self.echo.addr)
        with s:
            self.check_bnd(self.echo, reply, 1)
            s.sendall(b"via v6 listener")
            self.assertEqual(recv_exact(s, 15), b"via v6 listener")
        self.session_log(s, rep=0, listener=f"[::1]:{self.daemon.v6port}")
        # session_log found it by client=[::1]:PORT

    def test_ipv6_listener_to_ipv6_target_16mib(self):
        if IS_MICROSOCKS:
            self.skipTest("one listener with microsocks")
        srv = self.v6_echo()
        pat = Pattern(16 * MiB, seed=7)
        s, reply = open_session(self.proxy6, "::1", srv.port)
        with s:
            s.settimeout(30)
            t = Thread(lambda: (send_pattern(s, pat), s.shutdown(socket.SHUT_WR)))
            t.start()
            got = recv_hash(s)
            t.join_result(30)
        self.assertEqual(got, (pat.length, pat.sha256()))

    @needs_netns
    def test_dual_name_target_on_v6_only(self):
        # The name resolves to 127.0.0.1 and ::1; only ::1 listens: the
        # daemon must try the next address after a refused one.
        srv = self.v6_echo()
        s, reply = open_session(self.proxy, DUAL_NAME, srv.port)
        with s:
            self.check_bnd(srv, reply, 4)
            s.sendall(b"dual6")
            self.assertEqual(recv_exact(s, 5), b"dual6")
        self.session_log(s, rep=0, dst=f"{DUAL_NAME}:{srv.port}", addr=f"[::1]:{srv.port}")

    @needs_netns
    def test_dual_name_target_on_v4_only(self):
        srv = TcpServer(echo_handler, "127.0.0.1")
        self.addCleanup(srv.close)
        s, reply = open_session(self.proxy, DUAL_NAME, srv.port)
        with s:
            self.check_bnd(srv, reply, 1)
            s.sendall(b"dual4")
            self.assertEqual(recv_exact(s, 5), b"dual4")
        self.session_log(s, rep=0, addr=f"127.0.0.1:{srv.port}")

    @needs_netns
    def test_v6only_name(self):
        srv = self.v6_echo()
        s, reply = open_session(self.proxy, V6ONLY_NAME, srv.port)
        with s:
            self.check_bnd(srv, reply, 4)
            s.sendall(b"v6only")
            self.assertEqual(recv_exact(s, 6), b"v6only")


class IdleBase(DaemonCase):
    """timeouts.idle = 2: a relay with no traffic either way is ended."""
    IDLE = 2
    timeouts = dict(idle=IDLE)

    def test_idle_session_is_closed(self):
        s, _ = open_session(self.proxy, *self.echo.addr)
        with s:
            echo_roundtrip(s, b"then silence")
            t0 = time.monotonic()
            self.assertEqual(wait_closed(s, self.IDLE + 5), b"")
            took = time.monotonic() - t0
        self.assertGreater(took, self.IDLE - 0.5, f"closed after {took:.1f}s")
        self.session_log(s, rep=0, up=12, down=12, end="idle")

    def test_idle_with_bytes_held_resets_the_reader(self):
        # The client stops reading mid-download; the target has sent more
        # than the buffers hold. Nothing moves for timeouts.idle, so the
        # session ends (end=idle) with bytes it never delivered: the client
        # must then hear a reset, not a clean EOF that would make the cut
        # download look complete.
        data = Pattern(16 * MiB, seed=25)
        want = b"".join(bytes(c) for c in data.chunks())

        def target(conn, srv):
            recv_exact(conn, 3, 10)
            try:
                conn.sendall(want)
            except OSError:
                pass
            return "done"
        srv = TcpServer(target)
        self.addCleanup(srv.close)
        s, _ = open_session(self.proxy, *srv.addr, rcvbuf=4096)
        with s:
            s.sendall(b"GET")
            fields = self.session_log(s, end="idle")  # waits for the line
            got, how = read_until_closed(s, 15)
        self.assertLess(len(got), data.length)
        self.assertEqual(got, want[:len(got)])
        if fields is not None:
            self.assertLess(int(fields["down"]), data.length, fields)
        self.assertEqual(how, "reset", f"a clean EOF after {len(got)} of {data.length} bytes "
                         f"(down={(fields or {}).get('down')})")

    def test_active_session_is_not_idle(self):
        # Traffic in one direction only, more often than the idle timeout,
        # for longer than it: the session stays up.
        s, _ = open_session(self.proxy, *self.echo.addr)
        with s:
            end = time.monotonic() + self.IDLE * 2
            while time.monotonic() < end:  # bounded by the deadline
                echo_roundtrip(s, b".")
                sel_wait = min(0.5, max(0.0, end - time.monotonic()))
                s.settimeout(sel_wait)
                try:  # a close shows as EOF here; otherwise this is our pacing
                    self.assertNotEqual(s.recv(1), b"", "closed while active")
                except socket.timeout:
                    pass


class IdleSplice(IdleBase):
    relay = "splice"


class IdleCopy(IdleBase):
    relay = "copy"


del IdleBase


class RelaySplice(RelayBase):
    relay = "splice"


class RelayCopy(RelayBase):
    relay = "copy"


del RelayBase
