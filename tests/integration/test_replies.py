"""Raw bytes: every REP code the daemon can give today, exact reply bytes,
close after an error reply, and the session log line for each."""


from harness import (DaemonCase, closed_port, connect_proxy,
                     needs_netns, needs_socks5d, open_session, read_reply,
                     recv_exact, request_bytes, wait_closed, wait_until)


class Replies(DaemonCase):

    def error_reply(self, request, rep, end=None):
        """Greets, sends request (bytes), expects an error reply with this REP
        (ATYP 01, 10 bytes) and a close within 10 s; checks the log line."""
        s = connect_proxy(self.proxy)
        with s:
            s.sendall(b"\x05\x01\x00")
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            s.sendall(request)
            raw, got_rep, atyp, host, port = read_reply(s)
            self.assertEqual(raw[:4], bytes([5, rep, 0, 1]),
                             f"reply {raw.hex()} to request {request.hex()}")
            self.assertEqual(len(raw), 10)
            extra = wait_closed(s)
            self.assertEqual(extra, b"", "bytes after an error reply")
            fields = self.session_log(s, rep=rep)
            if fields is not None and end is not None:
                self.assertEqual(fields.get("end"), end, fields)
            return fields

    def test_connect_ok_bnd_is_outgoing_socket_v4(self):
        s, (raw, rep, atyp, host, port) = open_session(self.proxy, *self.echo.addr)
        with s:
            self.assertEqual(raw[:4], b"\x05\x00\x00\x01", raw.hex())
            # BND = local address of the proxy's outgoing socket, which is
            # the peer address the target saw.
            wait_until(lambda: (host, port) in self.echo.peers, 5,
                       f"target to see a peer {host}:{port} (saw {self.echo.peers})")
            s.sendall(b"x")
            self.assertEqual(recv_exact(s, 1), b"x")
        fields = self.session_log(s, rep=0, cmd="connect",
                                  dst=f"127.0.0.1:{self.echo.port}",
                                  addr=f"127.0.0.1:{self.echo.port}",
                                  listener=f"127.0.0.1:{self.daemon.port}", user="-")
        if fields:
            self.assertRegex(fields["secs"], r"^\d+\.\d{3}$")

    def test_refused_port_rep05(self):
        port = closed_port()
        self.error_reply(request_bytes("127.0.0.1", port), 5, end="failed")
        self.assert_still_serving()

    @needs_netns
    def test_unresolvable_name_rep04(self):
        fields = self.error_reply(request_bytes("nothing.invalid", 80), 4, end="failed")
        if fields:
            self.assertEqual(fields.get("dst"), "nothing.invalid:80")

    def test_cmd_09_rep07(self):
        self.error_reply(request_bytes("127.0.0.1", self.echo.port, cmd=9), 7)
        self.assert_still_serving()

    def test_bind_rep07(self):
        self.error_reply(request_bytes("127.0.0.1", self.echo.port, cmd=2), 7)

    # UDP ASSOCIATE is answered 00 now: see test_udp.py.

    def test_atyp_02_rep08(self):
        # ATYP 02 has no defined length: the server cannot parse further.
        self.error_reply(b"\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50", 8)
        self.assert_still_serving()

    def test_rsv_not_zero_rep01(self):
        self.error_reply(request_bytes("127.0.0.1", self.echo.port, rsv=1), 1)
        self.assert_still_serving()

    def test_domain_length_zero_rep01(self):
        self.error_reply(b"\x05\x01\x00\x03\x00\x00\x50", 1)
        self.assert_still_serving()

    @needs_socks5d
    @needs_netns  # the name must not resolve (files only) and must not leave the host
    def test_dst_name_is_escaped_in_log(self):
        name = b'a b=c"d\\e\x01\x7f\xc3\xa9.invalid'
        fields = self.error_reply(request_bytes(name, 443), 4)
        want = r"a\x20b\x3dc\x22d\x5ce\x01\x7f\xc3\xa9.invalid:443"
        self.assertEqual(fields["dst"].lower(), want.lower(), fields)
