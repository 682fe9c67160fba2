"""BIND with real clients: Dante's client library (socksify, Debian
dante-client) around a program that binds, listens and accepts a
connect-back, and around tnftp doing active-mode FTP (PORT) against a
pyftpdlib server: LIST and RETR through CONNECT + BIND, content checked."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest

from harness import Daemon, finish_daemon, needs_socks5d, wait_until

SOCKSIFY = shutil.which("socksify")
TNFTP = shutil.which("tnftp")
# The programs run under /usr/bin/python3 (Debian's, where pyftpdlib is).
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

try:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer
except ImportError:
    FTPServer = None

# A program that BINDs through the library: bind, listen, getsockname
# (the address the proxy announced), a peer process that connects there
# and talks, accept. Python's accept() calls accept4(2), which Dante does
# not wrap, so accept(2) is called through ctypes.
BINDER = textwrap.dedent("""
    import ctypes, socket, subprocess, sys
    libc = ctypes.CDLL(None, use_errno=True)
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    s.listen(1)
    host, port = s.getsockname()
    print("announced", host, port, flush=True)
    peer = subprocess.Popen([sys.executable, "-c",
        "import socket, sys\\n"
        "c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)\\n"
        "print('peer', *c.getsockname(), flush=True)\\n"
        "c.sendall(b'from the peer')\\n"
        "print('peer-got', c.recv(100).decode(), flush=True)\\n",
        host, str(port)], env={})
    buf = ctypes.create_string_buffer(128)
    blen = ctypes.c_uint32(128)
    fd = libc.accept(s.fileno(), buf, ctypes.byref(blen))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "accept")
    a = socket.socket(fileno=fd)
    print("accepted", *a.getpeername(), flush=True)
    print("client got", a.recv(100).decode(), flush=True)
    a.sendall(b"from the client")
    peer.wait(10)
""")


@needs_socks5d
@unittest.skipIf(SOCKSIFY is None, "socksify (dante-client) not installed")
class Socksify(unittest.TestCase):

    def setUp(self):
        self.d = Daemon().start()
        self.addCleanup(finish_daemon, self.d)
        self.tmp = tempfile.mkdtemp(prefix="socks5d-bind-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        conf = os.path.join(self.tmp, "socks.conf")
        with open(conf, "w") as f:
            f.write("route {\n  from: 0.0.0.0/0 to: 0.0.0.0/0 "
                    f"via: 127.0.0.1 port = {self.d.port}\n"
                    "  proxyprotocol: socks_v5\n  method: none\n}\n")
        # No automatic direct routes for the local networks: loopback is
        # all there is here, and everything must go through the daemon.
        self.env = dict(os.environ, SOCKS_CONF=conf, SOCKS_AUTOADD_LANROUTES="no")

    def socksify(self, argv, stdin=None, timeout=60):
        p = subprocess.run([SOCKSIFY] + argv, input=stdin, capture_output=True,
                           text=True, env=self.env, cwd=self.tmp, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def test_bind_listen_accept(self):
        prog = os.path.join(self.tmp, "binder.py")
        with open(prog, "w") as f:
            f.write(BINDER)
        rc, out, err = self.socksify([PY, prog])
        self.assertEqual(rc, 0, out + err)
        lines = dict(l.split(" ", 1) for l in out.splitlines() if " " in l)
        # The program saw the daemon's listening address as its own.
        self.assertEqual(lines["announced"].split()[0], "127.0.0.1", out)
        self.assertEqual(lines["client"], "got from the peer", out)
        self.assertEqual(lines["peer-got"], "from the client", out)
        # accept(2) named the peer as it connected (second reply).
        self.assertEqual(lines["accepted"], lines["peer"], out)
        f = self.d.wait_log(r"\bsession .*cmd=bind .*end=")
        fields = dict(kv.split("=", 1) for kv in f[f.index("session "):].split()[1:])
        self.assertEqual(fields["addr"], lines["peer"].replace(" ", ":"), f)
        self.assertEqual((fields["rep"], fields["up"], fields["down"]),
                         ("0", str(len("from the client")), str(len("from the peer"))), f)

    @unittest.skipIf(TNFTP is None, "tnftp not installed")
    @unittest.skipIf(FTPServer is None, "python3-pyftpdlib not installed")
    def test_active_ftp_list_and_retr(self):
        root = os.path.join(self.tmp, "ftp")
        os.mkdir(root)
        body = os.urandom(300000)
        with open(os.path.join(root, "data.bin"), "wb") as f:
            f.write(body)
        auth = DummyAuthorizer()
        auth.add_anonymous(root)
        handler = type("Handler", (FTPHandler,), dict(authorizer=auth))
        server = FTPServer(("127.0.0.1", 0), handler)
        self.addCleanup(server.close_all)
        t = threading.Thread(target=server.serve_forever,
                             kwargs=dict(timeout=0.2), daemon=True)
        t.start()
        self.addCleanup(t.join, 10)
        self.addCleanup(server.close_all)
        port = server.socket.getsockname()[1]
        got = os.path.join(self.tmp, "got.bin")
        script = (f"open 127.0.0.1 {port}\nuser anonymous x@example.org\n"
                  "binary\npassive off\nls\n"
                  f"get data.bin {got}\nquit\n")
        rc, out, err = self.socksify([TNFTP, "-n", "-v"], stdin=script)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("Passive mode: off", out)
        listing = [l for l in out.splitlines() if l.startswith("-") and l.endswith(" data.bin")]
        self.assertEqual(len(listing), 1, out)
        self.assertIn(" 300000 ", listing[0], out)
        with open(got, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                             hashlib.sha256(body).hexdigest())
        # The control connection went through CONNECT, each data connection
        # (LIST, RETR) through a BIND whose DST is the FTP server, and the
        # server's connect-back passed the strict peer check.
        # The lines are written as each session ends, which may be just
        # after tnftp exits.
        self.d.wait_log(rf"session .*cmd=connect dst=127\.0\.0\.1:{port} .*rep=0")

        def two_binds():
            b = [l for l in self.d.text().splitlines() if "cmd=bind" in l]
            return b if len(b) >= 2 else None
        binds = wait_until(two_binds, 10, "the two BIND session lines")
        self.assertEqual(len(binds), 2, binds)
        for l in binds:
            self.assertRegex(l, r"dst=127\.0\.0\.1:\d+ addr=127\.0\.0\.1:\d+ .*rep=0 ")
        self.assertTrue(any("down=300000 " in l for l in binds), binds)
