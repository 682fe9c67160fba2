"""Real SOCKS5 clients over UDP ASSOCIATE: python3-socks (PySocks) and
Dante's socksify around a program that does sendto/recvfrom, each
through the daemon to a loopback echo server; the audit line shows the
association."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

from harness import Daemon, finish_daemon, needs_socks5d
from test_udp import UdpEcho

try:
    import socks  # python3-socks
except ImportError:  # pragma: no cover
    socks = None

SOCKSIFY = shutil.which("socksify")

# The program socksify runs: sendto/recvfrom to an echo server, printing
# what came back (so the test asserts bytes, not an exit status alone).
UDP_PROGRAM = textwrap.dedent("""
    import socket, sys
    host, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    for i in range(3):
        s.sendto(b"socksified %d" % i, (host, port))
        data, src = s.recvfrom(2048)
        sys.stdout.write("%s %s:%d\\n" % (data.decode(), src[0], src[1]))
    sys.stdout.flush()
""")


@needs_socks5d
class ClientsUdp(unittest.TestCase):

    def start(self, **kw):
        d = Daemon(**kw).start()
        self.addCleanup(finish_daemon, d)
        return d

    @unittest.skipIf(socks is None, "python3-socks is not installed")
    def test_pysocks_udp(self):
        echo = UdpEcho()
        self.addCleanup(echo.close)
        d = self.start()
        s = socks.socksocket(socks.socket.AF_INET, socks.socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.set_proxy(socks.SOCKS5, "127.0.0.1", d.port)
        s.settimeout(5)
        for i in range(3):
            payload = b"pysocks %d" % i
            s.sendto(payload, echo.addr)
            data, src = s.recvfrom(2048)
            self.assertEqual((data, src[:2]), (payload, echo.addr))
        # The echo server saw the proxy's external socket, not the client.
        self.assertNotIn(s.getsockname()[:2], echo.peers)
        ctrl = s._proxyconn.getsockname()
        s.close()
        f = d.session(ctrl, 0, 10)
        self.assertEqual((f["cmd"], f["rep"], f["dgrams_up"], f["dgrams_down"]),
                         ("udp", "0", "3", "3"), f)

    @unittest.skipIf(SOCKSIFY is None, "socksify (dante-client) is not installed")
    def test_socksify_udp(self):
        echo = UdpEcho()
        self.addCleanup(echo.close)
        d = self.start()
        tmp = tempfile.mkdtemp(prefix="socks5d-socksify-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "socks.conf")
        with open(conf, "w") as f:
            f.write(textwrap.dedent(f"""\
                route {{
                    from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = {d.port}
                    proxyprotocol: socks_v5
                    command: connect udpassociate udpreply
                    method: none
                }}
                """))
        prog = os.path.join(tmp, "udp_echo_client.py")
        with open(prog, "w") as f:
            f.write(UDP_PROGRAM)
        # Dante adds direct routes for the host's own networks (here only
        # loopback, where every target of these tests is) unless told not to.
        env = dict(os.environ, SOCKS_CONF=conf, SOCKS_LOGOUTPUT="stderr",
                   SOCKS_AUTOADD_LANROUTES="no")
        mark = d.mark()
        r = subprocess.run([SOCKSIFY, sys.executable, prog, "127.0.0.1", str(echo.port)],
                           capture_output=True, text=True, timeout=30, env=env,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        want = "".join(f"socksified {i} 127.0.0.1:{echo.port}\n" for i in range(3))
        self.assertEqual(r.stdout, want, r.stderr)
        line = d.wait_log(r"\bsession .*cmd=udp", mark, 10)
        self.assertIn(" dgrams_up=3 dgrams_down=3 ", line)
        self.assertEqual(len(echo.got), 3)


if __name__ == "__main__":
    unittest.main()
