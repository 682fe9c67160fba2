"""harness: the daemon under test, its log, loopback targets and raw SOCKS5 helpers.

Everything here waits by polling a condition against a deadline (wait_until),
never by sleeping a fixed time, and stops only processes it started, by PID.
"""

import hashlib
import http.server
import os
import re
import signal
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

DAEMON = os.environ.get("SOCKS5D_IT_DAEMON", "build/src/socks5d")
# run.py sets this when it runs us inside our own network+mount namespace
# (hosts file and nsswitch are ours: names resolve from files only).
IN_NETNS = os.environ.get("SOCKS5D_IT_NETNS") == "1"
# microsocks stands in for socks5d while socks5d is not built yet: no config,
# no log, no pool, no signals. Tests of those features skip with it.
IS_MICROSOCKS = os.path.basename(DAEMON).startswith("microsocks")
IS_ROOT = os.geteuid() == 0

# Names in run.py's hosts file.
DUAL_NAME = "dual.socks5d.test"      # 127.0.0.1 and ::1
V6ONLY_NAME = "v6only.socks5d.test"  # ::1
V4ONLY_NAME = "v4only.socks5d.test"  # 127.0.0.1

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:")
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=23",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
# The known third-party leaks (as ./dev sets it), unless the caller chose.
_LSAN_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lsan.supp")
if "LSAN_OPTIONS" not in os.environ and os.path.exists(_LSAN_SUPP):
    SANITIZER_ENV["LSAN_OPTIONS"] = "suppressions=" + os.path.normpath(_LSAN_SUPP)

IO_TIMEOUT = 10.0   # default per-operation socket timeout
CLOSE_DEADLINE = 10.0  # RFC 1928: close within 10 s after an error reply

needs_socks5d = unittest.skipIf(
    IS_MICROSOCKS, "needs socks5d (config, log, pool or signals)")
needs_netns = unittest.skipUnless(
    IN_NETNS, "needs the private network namespace (run as root with unshare)")


# ----------------------------------------------------------------- waiting

def wait_until(cond, timeout, what="condition", interval=0.02):
    """Polls cond() until it returns a true value (returned) or timeout
    seconds pass (AssertionError naming what)."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


# ----------------------------------------------------------------- addresses

def fmt_addr(sockaddr):
    """The log's spelling of a socket address: 1.2.3.4:P or [::1]:P."""
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (bind port 0, close)."""
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port(host="127.0.0.1"):
    """A port nothing listens on: bound, then closed, so connect is refused."""
    return free_port(host)


# ----------------------------------------------------------------- processes

def proc_stat(pid):
    """(state, ppid, pgrp, session) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm is in parentheses and may contain anything: split after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def proc_uid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


HUB_COMM = "socks5d-hub"
AUTH_COMM = "socks5d-auth"


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().rstrip("\n")
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_of(ppid):
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid:
            out.append(pid)
    return out


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None


def socket_inodes(pid):
    """Inodes of the sockets pid holds open."""
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", link)
            if m:
                out.add(int(m.group(1)))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def tcp_inode(local_port, remote_port):
    """Inode of the TCP socket local_port <-> remote_port in this namespace."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    lport = int(fields[1].rsplit(":", 1)[1], 16)
                    rport = int(fields[2].rsplit(":", 1)[1], 16)
                    if lport == local_port and rport == remote_port:
                        return int(fields[9])
        except FileNotFoundError:
            continue
    return None


# PR_SET_CHILD_SUBREAPER: daemon processes orphaned by a dying master are
# re-parented to us instead of init, so we can still find, kill and reap them.
def become_subreaper():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)
    except Exception:
        pass


# ----------------------------------------------------------------- config

DEFAULT_WORKERS = dict(min_spare=2, max_spare=4, max=16, max_sessions=1000)
DEFAULT_TIMEOUTS = dict(negotiate=10, connect=10, idle=600, shutdown=5)


def config_text(listeners, relay="splice", workers=None, timeouts=None,
                level="info", extra="", relay_extra=None, rules=None, clients=None,
                control=None, log_extra=None):
    """A socks5d config (libconfig syntax). listeners: dicts with address,
    port and optionally v6only/methods. relay_extra: more relay settings,
    e.g. dict(park_after=1). control: the control socket's path (None:
    the built-in default)."""
    w = dict(DEFAULT_WORKERS, **(workers or {}))
    t = dict(DEFAULT_TIMEOUTS, **(timeouts or {}))
    ls = []
    for l in listeners:
        methods = ", ".join(f'"{m}"' for m in l.get("methods", ["none"]))
        item = f'  {{ address = "{l["address"]}"; port = {l["port"]}; methods = [ {methods} ];'
        if "v6only" in l:
            item += f' v6only = {"true" if l["v6only"] else "false"};'
        ls.append(item + " }")
    return (
        'user = "nobody";\n'
        "workers = { " + " ".join(f"{k} = {v};" for k, v in w.items()) + " };\n"
        "timeouts = { " + " ".join(f"{k} = {v};" for k, v in t.items()) + " };\n"
        f'log = {{ facility = "daemon"; level = "{level}"; '
        + "".join(f"{k} = {v}; " for k, v in (log_extra or {}).items())
        + "};\n"
        f'relay = {{ mode = "{relay}"; '
        + "".join(f"{k} = {v}; " for k, v in (relay_extra or {}).items())
        + "};\n"
        "listeners = (\n" + ",\n".join(ls) + "\n);\n"
        + (clients if clients is not None else
           'clients = ( { action = "pass"; from = [ "127.0.0.0/8", "::1" ]; } );\n')
        + (rules if rules is not None else 'rules = ( { action = "pass"; } );\n')
        + (f'control = {{ socket = "{control}"; }};\n' if control is not None else "")
        + extra)


def run_daemon_cmd(args, timeout=15):
    """Runs the daemon binary to completion (-t, -v): CompletedProcess."""
    env = dict(os.environ, **SANITIZER_ENV)
    return subprocess.run([DAEMON] + args, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace",
                          timeout=timeout, env=env)


# ----------------------------------------------------------------- daemon

class Daemon:
    """socks5d -F -f CONF as a child in its own session; its stdout and
    stderr are read line by line by a thread into self.lines."""

    def __init__(self, relay="splice", workers=None, timeouts=None, v6=False,
                 level="info", extra_listeners=(), debug=False, relay_extra=None,
                 extra="", rules=None, env=None, clients=None, args=(),
                 log_extra=None):
        self.tmp = tempfile.mkdtemp(prefix="socks5d-it-")
        self.conf = os.path.join(self.tmp, "socks5d.conf")
        self.port = free_port("127.0.0.1")
        self.v6port = free_port("::1") if v6 else None
        self.relay, self.workers, self.timeouts = relay, workers, timeouts
        self.level, self.debug = level, debug
        self.relay_extra = relay_extra
        self.extra, self.rules = extra, rules  # more settings; the rules list
        self.clients = clients  # the clients list, or None for the default
        self.extra_listeners = list(extra_listeners)
        self.env = dict(env or {})  # more environment, e.g. pam_wrapper's
        self.args = list(args)  # more command-line arguments, e.g. -p FILE
        self.log_extra = log_extra  # more log settings, e.g. dict(interim=1)
        self.control_path = os.path.join(self.tmp, "control")  # its own
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()
        self.returncode = None
        self.known_pids = set()  # master and every child seen: for leftovers

    # -- config
    def listeners(self):
        ls = [dict(address="127.0.0.1", port=self.port)]
        if self.v6port:
            ls.append(dict(address="::1", port=self.v6port, v6only=True))
        return ls + self.extra_listeners

    def config(self, **over):
        kw = dict(relay=self.relay, workers=self.workers,
                  timeouts=self.timeouts, level=self.level,
                  relay_extra=self.relay_extra, extra=self.extra,
                  rules=self.rules, clients=self.clients,
                  control=self.control_path, log_extra=self.log_extra)
        kw.update(over)
        listeners = kw.pop("listeners", None) or self.listeners()
        return config_text(listeners, **kw)

    def write_config(self, text=None, **over):
        text = self.config(**over) if text is None else text
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.conf)  # atomic: a reload never sees half a file

    def ctl(self, *args, timeout=30):
        """socks5d -f CONF ARGS (status, reload): the CompletedProcess."""
        return subprocess.run([DAEMON, "-f", self.conf, *args],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout,
                              env=dict(os.environ, **SANITIZER_ENV))

    # -- life cycle
    def start(self, timeout=20):
        env = dict(os.environ, **SANITIZER_ENV)
        env.update(self.env)
        if IS_MICROSOCKS:
            argv = [DAEMON, "-i", "127.0.0.1", "-p", str(self.port)]
        else:
            self.write_config()
            argv = [DAEMON, "-F", "-f", self.conf] + (["-d"] if self.debug else []) + self.args
        # start_new_session: the master leads its own session, so every
        # process it forks can be found by session id even after it dies.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.known_pids.add(self.pid)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            if IS_MICROSOCKS:
                wait_until(lambda: self.proc.poll() is not None or self._connectable(),
                           timeout, "microsocks to listen")
            else:
                wait_until(lambda: self.proc.poll() is not None or
                           self.find(r"\bstart ") is not None,
                           timeout, "the 'start ' log line")
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {self.proc.returncode} at start:\n" + self.text())
        except BaseException:
            self.kill_all()
            raise
        return self

    def _connectable(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def session_pids(self):
        """Live (not zombie) processes of our daemon: its session (it was
        started with start_new_session), its children, and pids we saw as
        its children earlier (orphans re-parented to us, the subreaper)."""
        me, out = os.getpid(), []
        for pid in all_pids():
            st = proc_stat(pid)
            if st is None or st[0] == "Z":
                continue
            if st[3] == self.pid or st[1] == self.pid or (
                    pid in self.known_pids and st[1] in (self.pid, me, 1)):
                out.append(pid)
        return out

    def stop(self, timeout=None):
        """SIGTERM the master and wait for it: its exit status. Kills
        whatever is left. Raises AssertionError if something was left or the
        master had to be killed."""
        if self.proc is None:
            return None
        if timeout is None:
            shutdown = (self.timeouts or {}).get("shutdown", DEFAULT_TIMEOUTS["shutdown"])
            timeout = shutdown + 10
        problems = []
        if self.alive():
            self.remember_children()
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"master {self.pid} still running {timeout}s after SIGTERM")
        self.returncode = self.proc.poll()
        left = self.kill_all()
        if left:
            problems.append(f"processes left after the master exited: {left}")
        self.reader.join(5)
        if problems:
            raise AssertionError("; ".join(problems))
        return self.returncode

    def remember_children(self):
        for pid in children_of(self.pid):
            self.known_pids.add(pid)

    def kill_all(self):
        """SIGKILLs every process of ours still alive (master last checked),
        reaps orphans re-parented to us. Returns the pids that were alive."""
        left = []
        for _ in range(50):  # bounded: processes may fork while we look
            pids = [p for p in self.session_pids()
                    if (proc_stat(p) or ("Z",))[0] != "Z"]
            if self.alive() and self.pid not in pids:
                pids.append(self.pid)
            if not pids:
                break
            for pid in pids:
                if pid not in left:
                    left.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.reap_orphans()
        return [p for p in left if p != self.pid] + (
            [self.pid] if self.pid in left else [])

    def reap_orphans(self):
        """Reaps this daemon's processes that died as our orphans (we are
        the subreaper); never the master, which Popen reaps."""
        me = os.getpid()
        for pid in self.known_pids | set(children_of(me)):
            if pid == self.pid:
                continue
            st = proc_stat(pid)
            if st and st[1] == me and st[0] == "Z" and (
                    pid in self.known_pids or st[3] == self.pid):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    # -- pool
    def children(self):
        kids = children_of(self.pid)
        self.known_pids.update(kids)
        return kids

    def workers_pids(self):
        """Children of the master that are workers: as root they run as the
        configured user (not root); auth helpers stay root; hubs are named
        socks5d-hub."""
        kids = [p for p in self.children() if (proc_stat(p) or ("Z",))[0] != "Z"
                and proc_comm(p) not in (HUB_COMM, AUTH_COMM)]
        if IS_ROOT:
            return [p for p in kids if proc_uid(p) not in (0, None)]
        return kids

    def helper_pids(self):
        """Children of the master that are auth helpers (socks5d-auth)."""
        return [p for p in self.children() if (proc_stat(p) or ("Z",))[0] != "Z"
                and proc_comm(p) == AUTH_COMM]

    def has_child_named(self, pid, comm):
        """Whether process pid has a live child whose name is comm."""
        return any(proc_comm(c) == comm for c in children_of(pid))

    def hub_pids(self):
        """Children of the master that are hubs (parked sessions)."""
        return [p for p in self.children() if (proc_stat(p) or ("Z",))[0] != "Z"
                and proc_comm(p) == HUB_COMM]

    def worker_for(self, client_sock):
        """The worker holding the proxy side of client_sock's connection."""
        cport = client_sock.getsockname()[1]
        pport = client_sock.getpeername()[1]
        inode = tcp_inode(pport, cport)
        if inode is None:
            return None
        for pid in self.workers_pids():
            if inode in socket_inodes(pid):
                return pid
        return None

    # -- log
    def mark(self):
        with self.cond:
            return len(self.lines)

    def text(self, since=0):
        with self.cond:
            return "\n".join(self.lines[since:])

    def find(self, pattern, since=0):
        rx = re.compile(pattern)
        with self.cond:
            for line in self.lines[since:]:
                if rx.search(line):
                    return line
        return None

    def wait_log(self, pattern, since=0, timeout=10):
        """The first line at or after index since matching the regex."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no log line matching {pattern!r} within {timeout}s; log since mark:\n"
                        + "\n".join(self.lines[since:][-30:]))
                self.cond.wait(min(left, 0.5))

    def session(self, client_addr, since=0, timeout=10):
        """The session line of the client at client_addr (its sockname), as
        a dict of its key=value fields."""
        line = self.wait_log(r"\bsession .*client=" + re.escape(fmt_addr(client_addr)) + r"(\s|$)",
                             since, timeout)
        return parse_kv(line[line.index("session "):])

    def sanitizer_errors(self, since=0):
        with self.cond:
            return [l for l in self.lines[since:]
                    if any(m in l for m in SANITIZER_MARKERS)]


def finish_daemon(d):
    """Test cleanup for a daemon a test started: stop it if it still runs
    (Daemon.stop fails when anything of it is left), remove its files, and
    raise if its output holds a sanitizer report from any time of its life."""
    rc = 0
    try:
        if d.proc is not None and d.proc.poll() is None:
            rc = d.stop()
    finally:
        d.kill_all()
        shutil.rmtree(d.tmp, ignore_errors=True)
    if d.sanitizer_errors():
        raise AssertionError("sanitizer report in daemon output:\n" + d.text()[-4000:])
    if rc != 0:
        raise AssertionError(f"daemon exited with status {rc} on SIGTERM")


def parse_kv(text):
    return dict(re.findall(r"(\w+)=(\S*)", text))


# ----------------------------------------------------------------- targets

class TcpServer:
    """A loopback TCP server running handler(conn, server) per connection in
    a thread. Records the peer address of every accepted connection (what
    the proxy's outgoing socket looks like from the target)."""

    def __init__(self, handler, host="127.0.0.1", port=0):
        self.handler = handler
        self.sock = socket.socket(family_of(host), socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if ":" in host:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.peers = []
        self.errors = []
        self.results = {}
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return (self.host, self.port)

    def _accept(self):
        while not self.closing:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.peers.append(peer[:2])
            threading.Thread(target=self._run, args=(conn, peer[:2]), daemon=True).start()

    def _run(self, conn, peer):
        conn.settimeout(60)
        try:
            result = self.handler(conn, self)
            with self.lock:
                self.results[peer] = result
        except Exception as e:  # kept for the test to inspect
            with self.lock:
                self.errors.append((peer, e))
                self.results[peer] = e
        finally:
            conn.close()

    def first_peer(self, timeout=10):
        """The first accepted peer (waits for the accept thread)."""
        return wait_until(lambda: self.peers and self.peers[0], timeout,
                          f"a connection to the target {self.host}:{self.port}")

    def result(self, timeout=30):
        """The handler result of the first connection."""
        return self.result_for(self.first_peer(timeout), timeout)

    def result_for(self, peer, timeout=30):
        peer = tuple(peer[:2])
        return wait_until(lambda: self.results.get(peer) is not None and (self.results[peer],),
                          timeout, f"target handler for {peer}")[0]

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def echo_handler(conn, server):
    """Echoes until EOF, then half-closes: the client sees EOF after all data."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    while True:
        n = conn.recv_into(buf)
        if n == 0:
            break
        conn.sendall(view[:n])
        total += n
    conn.shutdown(socket.SHUT_WR)
    return total


def send_around_urgent(sock, before, after):
    """Sends before, one urgent byte (MSG_OOB), then after."""
    sock.sendall(before)
    sock.send(b"U", socket.MSG_OOB)
    sock.sendall(after)


def urgent_handler(conn, server):
    """Reads to EOF (what a proxy relayed), then answers b"r", an urgent
    byte, b"ssss" and closes. Returns what it read."""
    got = bytearray()
    while True:
        b = conn.recv(65536)
        if not b:
            break
        got += b
    send_around_urgent(conn, b"r", b"ssss")
    return bytes(got)


def sink_handler(conn, server):
    """Reads to EOF: returns all bytes (for small pipelining tests)."""
    chunks = []
    while True:
        b = conn.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


class DualServer:
    """The same handler on 127.0.0.1 and ::1 with one port number, for names
    that resolve to both (localhost, the dual test name)."""

    def __init__(self, handler):
        for _ in range(50):
            v4 = TcpServer(handler, "127.0.0.1")
            try:
                v6 = TcpServer(handler, "::1", v4.port)
            except OSError:
                v4.close()
                continue
            self.v4, self.v6, self.port = v4, v6, v4.port
            return
        raise RuntimeError("no port free on both 127.0.0.1 and ::1")

    @property
    def peers(self):
        return self.v4.peers + self.v6.peers

    def close(self):
        self.v4.close()
        self.v6.close()


class HttpServer:
    """http.server on 127.0.0.1 and ::1 (same port) serving BODY at /file."""

    def __init__(self, body):
        self.body = body
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/file":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        class V6(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        self.servers = []
        for _ in range(50):
            port = free_port("127.0.0.1")
            try:
                a = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
            except OSError:
                continue
            try:
                b = V6(("::1", port), Handler)
            except OSError:
                a.server_close()
                continue
            self.servers, self.port = [a, b], port
            break
        else:
            raise RuntimeError("no port for the HTTP server")
        for s in self.servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, kwargs=dict(poll_interval=0.1),
                             daemon=True).start()

    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()


# ----------------------------------------------------------------- SOCKS5 bytes

REP_SUCCEEDED, REP_GENERAL, REP_RULESET, REP_NETUNREACH, REP_HOSTUNREACH, \
    REP_REFUSED, REP_TTL, REP_CMD, REP_ATYP = range(9)


def request_bytes(host, port, cmd=1, atyp=None, rsv=0):
    """VER CMD RSV ATYP DST.ADDR DST.PORT for an IPv4/IPv6 literal or a name
    (bytes or str)."""
    if atyp is None:
        if isinstance(host, bytes):
            atyp = 3
        else:
            try:
                socket.inet_pton(socket.AF_INET, host)
                atyp = 1
            except OSError:
                try:
                    socket.inet_pton(socket.AF_INET6, host)
                    atyp = 4
                except OSError:
                    atyp = 3
    if atyp == 1:
        addr = socket.inet_pton(socket.AF_INET, host)
    elif atyp == 4:
        addr = socket.inet_pton(socket.AF_INET6, host)
    else:
        name = host if isinstance(host, bytes) else host.encode()
        addr = bytes([len(name)]) + name
    return bytes([5, cmd, rsv, atyp]) + addr + struct.pack("!H", port)


class ClientSocket(socket.socket):
    """A socket that remembers its local address after connect, so the
    session log line can be looked up after the socket is closed."""
    laddr = None

    def connect(self, addr):
        super().connect(addr)
        self.laddr = self.getsockname()


def connect_proxy(proxy, timeout=IO_TIMEOUT, rcvbuf=None):
    """A connected client socket; rcvbuf (SO_RCVBUF, set before connect)
    makes a slow reader's window small."""
    s = ClientSocket(family_of(proxy[0]), socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(proxy)
    return s


def local_addr(sock_or_addr):
    """The client address of a socket (also once closed) or an address."""
    if isinstance(sock_or_addr, tuple):
        return sock_or_addr
    if getattr(sock_or_addr, "laddr", None):
        return sock_or_addr.laddr
    return sock_or_addr.getsockname()


def recv_exact(sock, n, timeout=IO_TIMEOUT):
    """n bytes, or AssertionError with what came before EOF/timeout."""
    buf = bytearray()
    end = time.monotonic() + timeout
    while len(buf) < n:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timeout: got {bytes(buf).hex()} of {n} bytes")
        sock.settimeout(left)
        try:
            b = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        if not b:
            raise AssertionError(f"EOF after {bytes(buf).hex()!r} ({len(buf)} of {n} bytes)")
        buf += b
    return bytes(buf)


def read_reply(sock, timeout=IO_TIMEOUT):
    """(raw bytes, rep, atyp, bnd host, bnd port) of a request reply."""
    head = recv_exact(sock, 4, timeout)
    atyp = head[3]
    if atyp == 1:
        rest = recv_exact(sock, 6, timeout)
        host = socket.inet_ntop(socket.AF_INET, rest[:4])
    elif atyp == 4:
        rest = recv_exact(sock, 18, timeout)
        host = socket.inet_ntop(socket.AF_INET6, rest[:16])
    elif atyp == 3:
        n = recv_exact(sock, 1, timeout)
        rest = n + recv_exact(sock, n[0] + 2, timeout)
        host = rest[1:-2].decode("latin-1")
    else:
        raise AssertionError(f"reply with ATYP {atyp}: {head.hex()}")
    port = struct.unpack("!H", rest[-2:])[0]
    return head + rest, head[1], atyp, host, port


def wait_closed(sock, timeout=CLOSE_DEADLINE):
    """Reads until the peer closes (EOF or reset) within timeout: the bytes
    read. AssertionError if it is still open at the deadline."""
    data = bytearray()
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"peer did not close within {timeout}s (got {bytes(data)[:64].hex()})")
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data)
        if not b:
            return bytes(data)
        data += b


def read_until_closed(sock, timeout=CLOSE_DEADLINE):
    """Reads until the peer closes within timeout: (bytes read, "eof" or
    "reset"), so that a test can tell a clean end from an aborted one.
    AssertionError if it is still open at the deadline."""
    data = bytearray()
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"peer did not close within {timeout}s (got {len(data)} bytes)")
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(data), "reset"
        if not b:
            return bytes(data), "eof"
        data += b


def set_linger0(sock):
    """SO_LINGER {1, 0}: close() then sends a reset, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def open_session(proxy, host, port, timeout=IO_TIMEOUT, rcvbuf=None):
    """A client socket after a successful greeting and CONNECT: (sock, reply)."""
    s = connect_proxy(proxy, timeout, rcvbuf)
    try:
        s.sendall(b"\x05\x01\x00")
        got = recv_exact(s, 2, timeout)
        if got != b"\x05\x00":
            raise AssertionError(f"method reply {got.hex()}, want 0500")
        s.sendall(request_bytes(host, port))
        reply = read_reply(s, timeout)
        if reply[1] != 0:
            raise AssertionError(f"CONNECT {host}:{port} answered {reply[0].hex()}")
        return s, reply
    except BaseException:
        s.close()
        raise


def echo_roundtrip(sock, payload, timeout=IO_TIMEOUT):
    sock.sendall(payload)
    got = recv_exact(sock, len(payload), timeout)
    if got != payload:
        raise AssertionError("echo returned different bytes")


# ----------------------------------------------------------------- bulk data

class Pattern:
    """A deterministic byte stream of a given length, produced in 1 MiB
    chunks: random block of an odd size so shifted data never matches."""

    BLOCK = os.urandom((1 << 20) + 7)

    def __init__(self, length, seed=0):
        self.length = length
        self.offset = seed % len(self.BLOCK)

    def chunks(self, size=1 << 20):
        block, blen = self.BLOCK, len(self.BLOCK)
        pos, left = self.offset, self.length
        while left:
            n = min(size, left, blen - pos)
            yield memoryview(block)[pos:pos + n]
            pos = (pos + n) % blen
            left -= n

    def sha256(self):
        h = hashlib.sha256()
        for c in self.chunks():
            h.update(c)
        return h.hexdigest()


def send_pattern(sock, pattern):
    for c in pattern.chunks():
        sock.sendall(c)


def recv_hash(sock, limit=None):
    """Reads to EOF (or limit bytes): (count, sha256 hex)."""
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    while limit is None or total < limit:
        want = len(buf) if limit is None else min(len(buf), limit - total)
        n = sock.recv_into(view[:want])
        if n == 0:
            break
        h.update(view[:n])
        total += n
    return total, h.hexdigest()


class Thread(threading.Thread):
    """A thread that keeps its target's result or exception for join_result."""

    def __init__(self, target, *args):
        super().__init__(daemon=True)
        self.fn, self.args, self.result, self.exc = target, args, None, None

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:
            self.exc = e

    def join_result(self, timeout):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"{self.fn.__name__} still running after {timeout}s")
        if self.exc:
            raise self.exc
        return self.result


# ----------------------------------------------------------------- test base

class DaemonCase(unittest.TestCase):
    """One daemon per test class (started in setUpClass). Subclasses set
    relay / workers / timeouts / v6. Each test checks the daemon's output for
    sanitizer reports and that the master is still alive."""

    relay = "splice"
    workers = None
    timeouts = None
    v6 = False

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(relay=cls.relay, workers=cls.workers,
                            timeouts=cls.timeouts, v6=cls.v6).start()
        cls.proxy = ("127.0.0.1", cls.daemon.port)
        cls.proxy6 = ("::1", cls.daemon.v6port) if cls.daemon.v6port else None
        cls.echo = TcpServer(echo_handler)
        cls.addClassCleanup(cls.echo.close)

    @classmethod
    def tearDownClass(cls):
        d = cls.daemon
        try:
            d.stop()
        finally:
            errs = d.sanitizer_errors()
            import shutil
            shutil.rmtree(d.tmp, ignore_errors=True)
        if errs:
            raise AssertionError("sanitizer report in daemon output:\n" + d.text()[-4000:])
        if not IS_MICROSOCKS and d.returncode != 0:
            raise AssertionError(f"master exited with {d.returncode} on SIGTERM")

    def setUp(self):
        self.mark = self.daemon.mark()

    def tearDown(self):
        errs = self.daemon.sanitizer_errors(self.mark)
        if errs:
            self.fail("sanitizer report in daemon output:\n" + self.daemon.text(self.mark)[-4000:])
        if not self.daemon.alive():
            self.fail(f"daemon died (status {self.daemon.proc.returncode}):\n"
                      + self.daemon.text()[-3000:])

    # -- helpers for tests
    def session_log(self, sock_or_addr, **expect):
        """Waits for the session line of this client and checks the given
        fields (values compared as strings). Returns the fields, or None
        under microsocks (no log)."""
        if IS_MICROSOCKS:
            return None
        fields = self.daemon.session(local_addr(sock_or_addr), self.mark)
        for k, v in expect.items():
            if isinstance(v, (set, frozenset, tuple, list)):
                self.assertIn(fields.get(k), {str(x) for x in v},
                              f"session field {k}: {fields}")
            else:
                self.assertEqual(fields.get(k), str(v), f"session field {k}: {fields}")
        return fields

    def assert_still_serving(self, proxy=None):
        """A normal client is served (greeting, CONNECT, echo) right now."""
        s, _ = open_session(proxy or self.proxy, *self.echo.addr)
        with s:
            echo_roundtrip(s, b"still serving\n")
