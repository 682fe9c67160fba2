"""Real SOCKS5 clients through the daemon: curl, ncat, PySocks (both relay modes)."""

import os
import shutil
import socket
import subprocess

import socks  # Debian python3-socks (PySocks)

from harness import (DUAL_NAME, DaemonCase, HttpServer, IS_MICROSOCKS,
                     TcpServer, needs_netns, recv_exact)

BODY = os.urandom(200_000)  # bigger than one segment, checked byte for byte


def clean_env():
    """The environment without proxy variables that would redirect curl."""
    return {k: v for k, v in os.environ.items()
            if not k.lower().endswith("_proxy") and k.lower() != "all_proxy"}


def reply_then_close(conn, data):
    """Reads one request line, answers data, closes: returns the request."""
    req = b""
    while not req.endswith(b"\n"):
        b = conn.recv(1024)
        if not b:
            break
        req += b
    conn.sendall(data)
    return req


class ClientsBase(DaemonCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.http = HttpServer(BODY)
        cls.addClassCleanup(cls.http.close)

    def curl(self, proxy_opt, host):
        out = os.path.join(self.daemon.tmp, f"curl-{self.id()}.out")
        url = f"http://{host}:{self.http.port}/file"
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "--noproxy", "",
                            proxy_opt, f"127.0.0.1:{self.daemon.port}",
                            "-o", out, url],
                           capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(r.returncode, 0, f"curl {proxy_opt} {url}: {r.stderr}")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), BODY, "body differs")
        os.unlink(out)

    def test_curl_socks5_localhost(self):
        self.curl("--socks5", "localhost")

    def test_curl_socks5_hostname_localhost(self):
        self.curl("--socks5-hostname", "localhost")

    def test_curl_socks5_ipv4_literal(self):
        self.curl("--socks5", "127.0.0.1")

    @needs_netns
    def test_curl_socks5_dual_name(self):
        self.curl("--socks5", DUAL_NAME)

    @needs_netns
    def test_curl_socks5_hostname_dual_name(self):
        self.curl("--socks5-hostname", DUAL_NAME)
        if not IS_MICROSOCKS:
            line = self.daemon.wait_log(r"session .*dst=" + DUAL_NAME.replace(".", r"\.")
                                        + f":{self.http.port}", self.mark)
            self.assertIn("rep=0", line)

    def test_ncat(self):
        if shutil.which("ncat") is None:
            self.skipTest("ncat not installed")
        data = os.urandom(100_000)
        # Half-close is tested in test_relay; here ncat keeps its write side
        # open (--no-shutdown) and the target answers a one-line request
        # with the data, then closes, which ends ncat.
        target = TcpServer(lambda conn, srv: reply_then_close(conn, data))
        self.addCleanup(target.close)
        r = subprocess.run(["ncat", "--no-shutdown", "--proxy", f"127.0.0.1:{self.daemon.port}",
                            "--proxy-type", "socks5", "-w", "10",
                            "127.0.0.1", str(target.port)],
                           input=b"GET\n", capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertEqual(r.stdout, data, f"ncat got {len(r.stdout)} of {len(data)} bytes")
        self.assertEqual(target.result(), b"GET\n")

    def pysocks(self, target, rdns):
        s = socks.socksocket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        s.set_proxy(socks.SOCKS5, "127.0.0.1", self.daemon.port, rdns=rdns)
        try:
            s.connect(target)
            data = os.urandom(50_000)
            s.sendall(data)
            self.assertEqual(recv_exact(s, len(data)), data)
        finally:
            s.close()

    def test_pysocks_ipv4(self):
        self.pysocks(self.echo.addr, rdns=False)

    def test_pysocks_remote_dns_localhost(self):
        # The echo server is on 127.0.0.1 only: the daemon must try every
        # address localhost resolves to (::1 may come first) until one works.
        self.pysocks(("localhost", self.echo.port), rdns=True)


class ClientsSplice(ClientsBase):
    relay = "splice"


class ClientsCopy(ClientsBase):
    relay = "copy"


del ClientsBase  # only the parametrized classes run
