"""Logins through the system's own pam_unix against a yescrypt hash (what
a Debian system account has), with the user only in copies of
/etc/passwd, /etc/group and /etc/shadow bind-mounted in the test runner's
private mount namespace (run.py), and a service of pam_unix alone in the
namespace's /etc/pam.d: no system file is written.

auth.hash_once: pam_unix asks libcrypt for the same hash twice per login
(src/hashonce.c says why); the helpers' crypt_r computes it once. The
status counter hashes_reused shows each second call answered from the
first, and logins stay right either way."""

import ctypes
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import unittest

import pamtest
from harness import (DAEMON, IS_ROOT, TcpServer, connect_proxy, echo_handler, echo_roundtrip,
                     finish_daemon, local_addr, needs_socks5d, read_reply,
                     recv_exact, request_bytes)
from test_auth import AuthDaemon, userpass

USER = "s5d-unix-test"
SERVICE = "socks5d-unix-test"


def yescrypt(password):
    """A "$y$" hash at libxcrypt's default cost, as Debian's passwd makes."""
    lc = ctypes.CDLL("libcrypt.so.1")
    lc.crypt_gensalt.restype = ctypes.c_char_p
    lc.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                 ctypes.c_int]
    lc.crypt.restype = ctypes.c_char_p
    lc.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    h = lc.crypt(password.encode(), lc.crypt_gensalt(b"$y$", 0, None, 0))
    if not h or not h.startswith(b"$y$"):
        raise RuntimeError(f"libcrypt made no yescrypt hash: {h!r}")
    return h.decode()


def why_not():
    if not IS_ROOT:
        return "needs root (pam_unix reads /etc/shadow; bind mounts)"
    if os.environ.get("SOCKS5D_IT_NETNS") != "1":
        return "needs the runner's private mount namespace (run.py as root)"
    if not os.path.exists(os.path.join(pamtest.PAM_SECURITY, "pam_unix.so")):
        return "pam_unix.so not found"
    return None


class Accounts:
    """The user in bind-mounted copies of passwd, group and shadow."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="socks5d-unix-")
        self.mounted = []
        self.files = {}
        today = int(time.time() // 86400)  # changed today: not "must change"
        for name in ("passwd", "group", "shadow"):
            with open(f"/etc/{name}") as f:
                self.files[name] = [l for l in f.read().splitlines()
                                    if l and not l.startswith(USER + ":")]
        used = {l.split(":")[2] for l in self.files["passwd"] + self.files["group"]}
        uid = next(i for i in range(61990, 62990) if str(i) not in used)
        self.files["passwd"].append(f"{USER}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin")
        self.files["group"].append(f"{USER}:x:{uid}:")
        self.shadow_rest = f":{today}:0:99999:7:::"
        for name in self.files:
            src = os.path.join(self.dir, name)
            st = os.stat(f"/etc/{name}")
            self.write(name, self.files[name])
            os.chown(src, st.st_uid, st.st_gid)
            os.chmod(src, st.st_mode & 0o7777)
            subprocess.run(["mount", "--bind", src, f"/etc/{name}"], check=True)
            self.mounted.append(f"/etc/{name}")

    def write(self, name, lines):
        # In place: the bind mount shows the same inode.
        with open(os.path.join(self.dir, name), "w") as f:
            f.write("\n".join(lines) + "\n")

    def set_password(self, password):
        lines = self.files["shadow"] + [f"{USER}:{yescrypt(password)}{self.shadow_rest}"]
        self.write("shadow", lines)

    def close(self):
        for p in reversed(self.mounted):
            subprocess.run(["umount", p], check=False)
        shutil.rmtree(self.dir, True)


@needs_socks5d
@unittest.skipIf(why_not(), why_not())
class PamUnix(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.accounts = Accounts()
        with open(os.path.join(pamtest.namespace_pam_dir(), SERVICE), "w") as f:
            # nodelay: a wrong password answers at once (pam_unix's own
            # 2 s delay is test_auth's subject, not this file's).
            f.write(f"auth required {pamtest.PAM_SECURITY}/pam_unix.so nodelay\n"
                    f"account required {pamtest.PAM_SECURITY}/pam_unix.so\n")

    @classmethod
    def tearDownClass(cls):
        cls.accounts.close()

    def setUp(self):
        self.password = secrets.token_hex(10)
        self.accounts.set_password(self.password)
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def start(self, hash_once=None):
        auth = f'auth = {{ pam_service = "{SERVICE}"; helpers = 1; timeout = 10; '
        if hash_once is not None:
            auth += f"hash_once = {'true' if hash_once else 'false'}; "
        d = AuthDaemon(extra=auth + "};\n").start()
        self.addCleanup(finish_daemon, d)
        return d

    def login(self, d, password):
        s = connect_proxy(("127.0.0.1", d.port))
        s.sendall(b"\x05\x01\x02")
        self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        s.sendall(userpass(USER, password))
        return s, recv_exact(s, 2)

    def reused(self, d):
        r = d.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"^totals .* hashes_reused=(\d+)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        return int(m.group(1))

    def assert_login(self, d, password, good):
        s, st = self.login(d, password)
        with s:
            self.assertEqual(st, b"\x01\x00" if good else b"\x01\x01")
            if good:
                s.sendall(request_bytes(*self.echo.addr))
                self.assertEqual(read_reply(s)[1], 0)
                echo_roundtrip(s, b"through pam_unix")
        if good:
            f = d.session(local_addr(s))
            self.assertEqual((f["user"], f["end"]), (USER, "client"), f)

    def test_each_login_hashes_once(self):
        d = self.start()
        self.assertEqual(self.reused(d), 0)
        self.assert_login(d, self.password, True)
        self.assertEqual(self.reused(d), 1)
        self.assert_login(d, self.password + "x", False)
        self.assertEqual(self.reused(d), 2)
        self.assert_login(d, self.password, True)
        self.assertEqual(self.reused(d), 3)

    def test_a_changed_password_is_hashed_anew(self):
        d = self.start()
        self.assert_login(d, self.password, True)
        old, self.password = self.password, secrets.token_hex(10)
        self.accounts.set_password(self.password)
        self.assert_login(d, old, False)
        self.assert_login(d, self.password, True)
        self.assertEqual(self.reused(d), 3)

    def test_off_every_call_goes_to_libcrypt(self):
        d = self.start(hash_once=False)
        self.assert_login(d, self.password, True)
        self.assert_login(d, "wrong", False)
        self.assertEqual(self.reused(d), 0)


if __name__ == "__main__":
    unittest.main()
