#!/usr/bin/python3
"""soak: socks5d under mixed load while its children are killed.

  /usr/bin/python3 tests/soak/soak.py --daemon build/src/socks5d [--seconds 60]
      [--seed N] [--clients N]

A pool of client threads runs mixed sessions (CONNECT without and with
username/password through real PAM, sessions left idle until a hub parks
them, UDP ASSOCIATE, BIND), each checking its data both ways by sha256,
while a killer thread SIGKILLs random workers, hubs and auth helpers of the
daemon it started (only children of that master) and a reloader sends
SIGHUP every few seconds. The seed (printed) fixes every choice: kinds,
sizes, victims and intervals; thread timing is not replayable.

Before each kill the victim is stopped (SIGSTOP) and the client
connections it holds are read from /proc: those sessions were "hit". A
hit session may fail (reset or EOF before its data is complete); any other
session must complete with its data intact and its audit line must count
its bytes. A login answered 01 01 must be explained by an auth helper kill
in its time (the daemon logs auth-fail reason=helper) and never hang.

Then the load stops and the master's open fds, RSS (within RSS_MARGIN),
children, the pool (workers.min_spare idle workers, min_spare == max_spare
here) must come back to where they were before; no zombies; SIGTERM stops
everything with status 0. One line per assertion group (PASS/FAIL NAME),
the figures, then `N passed, N failed`. Exit status 1 if anything failed.

As root it runs in its own network and mount namespace like
tests/integration/run.py (whose setup it reuses) and uses that harness.
"""

import argparse
import hashlib
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IT = os.path.join(HERE, "..", "integration")
sys.path.insert(0, os.path.normpath(IT))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import run  # noqa: E402  (tests/integration/run.py: the namespace setup)

MIN_SPARE = 3          # = max_spare: the pool's size at rest
HUBS = 2
HELPERS = 2
AUTH_TIMEOUT = 3
RSS_MARGIN_KIB = 1024  # the master's RSS may end this much above its start
# ... or this much under AddressSanitizer, whose quarantine (made small
# here), stack depot and shadow memory grow with use (a leak there is
# LeakSanitizer's to find, at exit).
RSS_MARGIN_ASAN_KIB = 16384
ASAN_QUARANTINE = ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
SETTLE_S = 60          # deadline for the daemon to come back to rest
SESSION_IO_S = 15      # per-operation deadline inside a session
KINDS = (("connect", 30), ("auth", 20), ("parked", 20), ("udp", 15), ("bind", 15))
ROLES = (("worker", 5), ("hub", 2), ("auth-helper", 2))
USER, PASSWORD = "alice", "wonderland"
SLOW_USER = "slowpoke"  # its PAM stack takes SLOW_S (pam_exec): kills hit it
SLOW_S = 0.3


def log(msg):
    print(msg, flush=True)


def reexec_in_namespace():
    """run.py's re-exec, for this script: unshare --net --mount as root."""
    if os.environ.get(run.INNER_ENV) or os.geteuid() != 0:
        return
    probe = subprocess.run(["unshare", "--net", "--mount", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if probe.returncode != 0:
        log(f"# unshare failed ({probe.stderr.strip()}): no private namespace")
        return
    env = dict(os.environ, **{run.INNER_ENV: "unshared", run.OUTER_NS_ENV: run.ns_ids()})
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation", "private",
                           "--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def enter_namespace():
    reexec_in_namespace()
    ok = os.environ.get(run.INNER_ENV) == "unshared" and run.own_namespaces()
    if ok:
        run.setup_namespace()
    os.environ[run.NETNS_ENV] = "1" if ok else "0"
    return ok


# ----------------------------------------------------------------- /proc

def client_ports_held(pid, listen_ports):
    """Remote ports of the TCP connections to listen_ports that pid holds."""
    inodes = H.socket_inodes(pid)
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    lport = int(fields[1].rsplit(":", 1)[1], 16)
                    if fields[3] == "0A":  # a listening socket, not a client
                        continue
                    if lport in listen_ports and int(fields[9]) in inodes:
                        out.add(int(fields[2].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


# ----------------------------------------------------------------- targets

class UdpEcho:
    """Echoes every datagram to its source, in a thread."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.addr = self.sock.getsockname()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(65536)
                self.sock.sendto(data, peer)
            except socket.timeout:
                continue
            except OSError:
                if self.stop:
                    return

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


# ----------------------------------------------------------------- sessions

class Session:
    """One client session: what it did and how it ended."""

    def __init__(self, kind, sid):
        self.kind, self.sid = kind, sid
        self.port = None       # the client port of the control connection
        self.t0 = time.monotonic()
        self.t1 = None
        self.ok = False
        self.error = None
        self.bytes = 0         # verified, both ways
        self.up = self.down = None  # what its audit line must say
        self.dgrams = None
        self.parked = False    # seen held by a hub
        self.auth_refused = False
        self.user = None       # who logged in (auth sessions)


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sessions = []
        self.kills = []        # (time, pid, role, client ports held)
        self.reloads = 0
        self.used_ports = set()
        self.moving = set()    # client ports of sessions moving data now
        self.fault_errors = []
        self.results = []      # (name, ok, detail)

    # -- set up
    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="socks5d-soak-")
        self.pam = pamtest.PamFiles(self.tmp, {USER: (PASSWORD, pamtest.SERVICE),
                                               SLOW_USER: (PASSWORD, pamtest.SERVICE)},
                                    daemon=H.DAEMON)
        with open(self.pam.hang, "w") as f:  # the script pam_exec runs
            f.write(f'#!/bin/sh\n[ "$PAM_USER" = "{SLOW_USER}" ] && exec sleep {SLOW_S}\n'
                    'exit 0\n')
        self.auth_port = H.free_port()
        # cache_ttl 0: every login runs the PAM stack, where kills hit.
        extra = (f"auth = {{ helpers = {HELPERS}; timeout = {AUTH_TIMEOUT}; "
                 "cache_ttl = 0; };\n")
        env = self.pam.env()
        if pamtest.daemon_has_asan(H.DAEMON):
            # A small quarantine, so that the master's RSS says something.
            env["ASAN_OPTIONS"] = H.SANITIZER_ENV["ASAN_OPTIONS"] + ASAN_QUARANTINE
        self.d = H.Daemon(
            workers=dict(min_spare=MIN_SPARE, max_spare=MIN_SPARE, max=48,
                         max_sessions=100000),
            relay_extra=dict(park_after=1, hubs=HUBS), env=env, extra=extra,
            extra_listeners=[dict(address="127.0.0.1", port=self.auth_port,
                                  methods=["username"])]).start()
        self.listen_ports = {self.d.port, self.auth_port}
        self.echo = H.TcpServer(H.echo_handler)
        self.udp_echo = UdpEcho()

    # -- the client side
    def connect(self, port):
        """A client connection whose local port this soak has not used yet
        (so that each audit line names one session)."""
        for _ in range(20):
            s = H.connect_proxy(("127.0.0.1", port), SESSION_IO_S)
            p = s.getsockname()[1]
            with self.lock:
                if p not in self.used_ports:
                    self.used_ports.add(p)
                    return s
            s.close()
        raise AssertionError("no unused client port in 20 tries")

    def greet(self, s, sess, auth):
        if not auth:
            s.sendall(b"\x05\x01\x00")
            if H.recv_exact(s, 2, SESSION_IO_S) != b"\x05\x00":
                raise AssertionError("method 00 not accepted")
            return
        s.sendall(b"\x05\x01\x02")
        if H.recv_exact(s, 2, SESSION_IO_S) != b"\x05\x02":
            raise AssertionError("method 02 not accepted")
        sess.user = SLOW_USER if sess.sid % 3 == 0 else USER
        u, p = sess.user.encode(), PASSWORD.encode()
        s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
        # A killed helper's login fails with 01 01 within the auth timeout.
        st = H.recv_exact(s, 2, AUTH_TIMEOUT + 5)
        if st == b"\x01\x01":
            sess.auth_refused = True
            raise AssertionError("login refused (01 01)")
        if st != b"\x01\x00":
            raise AssertionError(f"login answered {st.hex()}")

    def open(self, sess, auth, cmd, host, port):
        s = self.connect(self.auth_port if auth else self.d.port)
        sess.port = s.getsockname()[1]
        self.greet(s, sess, auth)
        s.sendall(H.request_bytes(host, port, cmd=cmd))
        reply = H.read_reply(s, SESSION_IO_S)
        if reply[1] != 0:
            raise AssertionError(f"command {cmd} answered {reply[0].hex()}")
        return s, reply

    def transfer(self, s, rng, extra=0):
        """Bytes out and the same back (an echo), then a clean close: a
        stream, or rounds of one chunk each way (a session that lasts)."""
        port = s.getsockname()[1]
        self.moving.add(port)
        try:
            if rng.random() < 0.5:
                return self.rounds(s, rng, extra)
            return self.stream(s, rng, extra)
        finally:
            self.moving.discard(port)

    def stream(self, s, rng, extra):
        pat = H.Pattern(rng.randrange(1 << 14, 1 << 20), seed=rng.randrange(1 << 30))
        writer = H.Thread(H.send_pattern, s, pat)
        writer.start()
        s.settimeout(SESSION_IO_S)
        got = H.recv_hash(s, pat.length)
        writer.join_result(SESSION_IO_S)
        if got != (pat.length, pat.sha256()):
            raise AssertionError(f"echo: {got[0]} of {pat.length} bytes, hash "
                                 f"{'ok' if got[1] == pat.sha256() else 'differs'}")
        s.shutdown(socket.SHUT_WR)
        rest, how = H.read_until_closed(s, SESSION_IO_S)
        if rest or how != "eof":
            raise AssertionError(f"end: {len(rest)} more bytes, {how}")
        return pat.length + extra

    def rounds(self, s, rng, extra):
        sent, back, n = hashlib.sha256(), hashlib.sha256(), 0
        think = rng.uniform(0, 0.03)  # an interactive client's pauses
        for i in range(rng.randrange(10, 100)):
            if think and self.stop.wait(think) and i > 5:
                break
            chunk = os.urandom(rng.randrange(1, 1 << 14))
            sent.update(chunk)
            s.sendall(chunk)
            back.update(H.recv_exact(s, len(chunk), SESSION_IO_S))
            n += len(chunk)
        if sent.digest() != back.digest():
            raise AssertionError(f"echo of {n} bytes in rounds: hash differs")
        s.shutdown(socket.SHUT_WR)
        rest, how = H.read_until_closed(s, SESSION_IO_S)
        if rest or how != "eof":
            raise AssertionError(f"end: {len(rest)} more bytes, {how}")
        return n + extra

    def run_connect(self, sess, rng, auth=False):
        s, _ = self.open(sess, auth, 1, *self.echo.addr)
        with s:
            n = self.transfer(s, rng)
        sess.up = sess.down = n
        sess.bytes = 2 * n

    def run_parked(self, sess, rng):
        auth = rng.random() < 0.5
        s, _ = self.open(sess, auth, 1, *self.echo.addr)
        with s:
            H.echo_roundtrip(s, b"before parking", SESSION_IO_S)
            extra = len(b"before parking")
            me, proxy = s.getsockname()[1], s.getpeername()[1]
            try:
                sess.parked = bool(H.wait_until(
                    lambda: self.held_by_hub(proxy, me), 5, "the session parked"))
            except AssertionError:
                sess.parked = False  # a hub being respawned: relayed in place
            if sess.parked:
                # The client thinks a while (a scenario, not a wait for
                # anything): its session stays in the hub meanwhile.
                self.stop.wait(rng.uniform(0.1, 2.0))
                H.echo_roundtrip(s, b"in the hub", SESSION_IO_S)
                extra += len(b"in the hub")
            n = self.transfer(s, rng, extra)
        sess.up = sess.down = n
        sess.bytes = 2 * n

    def held_by_hub(self, proxy_port, client_port):
        inode = H.tcp_inode(proxy_port, client_port)
        return inode is not None and any(inode in H.socket_inodes(h)
                                         for h in self.d.hub_pids())

    def run_udp(self, sess, rng):
        s, reply = self.open(sess, False, 3, "0.0.0.0", 0)
        relay = (reply[3], reply[4])
        header = b"\0\0\0" + H.request_bytes(*self.udp_echo.addr)[3:]
        sent, back = hashlib.sha256(), hashlib.sha256()
        count = rng.randrange(5, 40)
        with s, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            u.settimeout(SESSION_IO_S)
            self.moving.add(sess.port)
            think = rng.uniform(0, 0.03)  # an interactive client's pauses
            done = 0
            for i in range(count):
                if think and self.stop.wait(think) and i > 5:
                    break
                payload = os.urandom(rng.randrange(1, 8000))
                sent.update(payload)
                u.sendto(header + payload, relay)
                # The association ends with its control connection: a
                # killed worker is seen there, not as a missing datagram.
                ready = select.select([u, s], [], [], SESSION_IO_S)[0]
                if s in ready:
                    raise AssertionError(f"control connection closed after {i} datagrams: "
                                         f"{s.recv(64)!r}")
                if u not in ready:
                    raise AssertionError(f"no reply to datagram {i}")
                data, src = u.recvfrom(70000)
                if src[:2] != relay or data[:len(header)] != header:
                    raise AssertionError(f"datagram {i} from {src} header {data[:10].hex()}")
                back.update(data[len(header):])
                sess.bytes += 2 * len(payload)
                done = i + 1
            self.moving.discard(sess.port)
            if sent.digest() != back.digest():
                raise AssertionError("datagrams came back different")
            s.shutdown(socket.SHUT_WR)
            rest, how = H.read_until_closed(s, SESSION_IO_S)
            if rest or how != "eof":
                raise AssertionError(f"end: {len(rest)} more bytes, {how}")
        sess.dgrams = done

    def run_bind(self, sess, rng):
        s, first = self.open(sess, False, 2, "127.0.0.1", 0)
        with s:
            peer = socket.create_connection((first[3], first[4]), SESSION_IO_S)
            with peer:
                second = H.read_reply(s, SESSION_IO_S)
                if second[1] != 0 or second[4] != peer.getsockname()[1]:
                    raise AssertionError(f"second reply {second[0].hex()}")
                echo = H.Thread(H.echo_handler, peer, None)
                echo.start()
                n = self.transfer(s, rng)
                echo.join_result(SESSION_IO_S)
        sess.up = sess.down = n
        sess.bytes = 2 * n

    def one_session(self, kind, rng):
        sess = Session(kind, len(self.sessions))
        with self.lock:
            self.sessions.append(sess)
        try:
            if kind in ("connect", "auth"):
                self.run_connect(sess, rng, kind == "auth")
            else:
                getattr(self, "run_" + kind)(sess, rng)
            sess.ok = True
        except Exception as e:  # every way a session can end is recorded
            sess.error = f"{type(e).__name__}: {e}"[:300]
        self.moving.discard(sess.port)
        sess.t1 = time.monotonic()

    def client(self, seed):
        rng = random.Random(seed)
        kinds, weights = zip(*KINDS)
        for _ in range(100000):  # bounded; the stop event ends it first
            if self.stop.is_set():
                return
            self.one_session(rng.choices(kinds, weights)[0], rng)

    # -- faults
    def victims(self, role):
        if role == "worker":
            return self.d.workers_pids()
        if role == "hub":
            return self.d.hub_pids()
        return self.d.helper_pids()

    def kill_one(self, rng):
        roles, weights = zip(*ROLES)
        role = rng.choices(roles, weights)[0]
        pids = sorted(self.victims(role))
        # Mostly a victim that is doing something (an idle one costs
        # nothing): a worker or hub holding a client, for workers often one
        # in the middle of moving data; a helper with a child (pam_exec's
        # script) is checking a login. Waited for a little, else any.
        if role == "auth-helper":
            busy = lambda p: any((H.proc_stat(c) or ("Z",))[0] != "Z"
                                 for c in H.children_of(p))
        elif rng.random() < 0.5:
            busy = lambda p: client_ports_held(p, self.listen_ports) & self.moving
        else:
            busy = lambda p: client_ports_held(p, self.listen_ports)
        if rng.random() < 0.8:
            try:
                pids = H.wait_until(lambda: sorted(p for p in self.victims(role) if busy(p)),
                                    1, f"a busy {role}")
            except AssertionError:
                pass
        if not pids:
            return
        pid = rng.choice(pids)
        st = H.proc_stat(pid)
        if st is None or st[1] != self.d.pid:  # only the master's children
            return
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return  # it exited (an old generation's) and was reaped
        # A stopped process cannot exit by itself: once it is seen stopped,
        # the pid is still the master's child until our SIGKILL.
        try:
            state = H.wait_until(lambda: (H.proc_stat(pid) or ("X",))[0] in "TtZX" and
                                 (H.proc_stat(pid) or ("X",))[0], 5, f"{role} {pid} stopped")
        except AssertionError:
            os.kill(pid, signal.SIGCONT)  # not stopped yet: still ours; let it go
            raise
        if state in "ZX":
            return  # it had exited by itself: not a kill (and maybe not ours now)
        if (H.proc_stat(pid) or (0, 0))[1] != self.d.pid:
            os.kill(pid, signal.SIGCONT)  # a reused pid (never seen): not ours
            return
        held = client_ports_held(pid, self.listen_ports)
        os.kill(pid, signal.SIGKILL)
        with self.lock:
            self.kills.append((time.monotonic(), pid, role, held))

    def faults(self, seed):
        rng = random.Random(seed)
        next_kill = time.monotonic() + rng.uniform(0.4, 1.6) * self.args.kill_every
        next_reload = time.monotonic() + rng.uniform(2, 4)
        for _ in range(100000):
            if self.stop.wait(0.05):
                return
            now = time.monotonic()
            if now >= next_kill:
                try:
                    self.kill_one(rng)
                except Exception as e:  # reported by verify_kills
                    self.fault_errors.append(f"killer: {type(e).__name__}: {e}")
                next_kill = now + rng.uniform(0.4, 1.6) * self.args.kill_every
            if now >= next_reload:
                # Each generation relays by splice or by copy, at random.
                self.d.write_config(relay=rng.choice(("splice", "copy")))
                self.d.signal(signal.SIGHUP)
                self.reloads += 1
                next_reload = now + rng.uniform(2, 4)

    # -- rest
    def at_rest(self):
        """Pool at min_spare idle workers, every hub and helper up, nothing
        else, no zombie: the children's pids, else None."""
        kids = H.children_of(self.d.pid)
        states = [(H.proc_stat(p) or ("?",))[0] for p in kids]
        if "Z" in states:
            return None
        workers, hubs, helpers = (self.d.workers_pids(), self.d.hub_pids(),
                                  self.d.helper_pids())
        if (len(workers), len(hubs), len(helpers), len(kids)) != \
                (MIN_SPARE, HUBS, HELPERS, MIN_SPARE + HUBS + HELPERS):
            return None
        return kids

    def settle(self, what):
        H.wait_until(self.at_rest, SETTLE_S, what)
        fds = H.fd_count(self.d.pid)
        return dict(fds=fds, rss=rss_kib(self.d.pid),
                    children=len(H.children_of(self.d.pid)))

    def kill_a_worker(self):
        """SIGKILLs one worker: its pid, or None if it was gone already
        (an old generation's worker exits after a reload)."""
        for pid in self.d.workers_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                return pid
            except ProcessLookupError:
                continue
        return None

    def warm_up(self):
        """Each kind once, a reload and a worker kill, before the baseline:
        the master's first use of each path is not counted as growth."""
        rng = random.Random(self.args.seed ^ 0x5eed)
        for kind, _ in KINDS:
            self.one_session(kind, rng)
        bad = [s for s in self.sessions if not s.ok]
        self.d.signal(signal.SIGHUP)
        self.d.wait_log(r"\breload generation=2\b", 0, 10)
        victim = H.wait_until(self.kill_a_worker, 10, "a worker to kill")
        self.d.wait_log(rf"worker-exit pid={victim}\b", 0, 10)
        self.sessions.clear()
        return bad

    # -- the run
    def soak(self):
        seconds = self.args.seconds
        threads = [threading.Thread(target=self.client, args=(self.rng.randrange(1 << 30),),
                                    daemon=True) for _ in range(self.args.clients)]
        threads.append(threading.Thread(target=self.faults,
                                        args=(self.rng.randrange(1 << 30),), daemon=True))
        for t in threads:
            t.start()
        self.stop.wait(seconds)
        self.stop.set()
        # A session in progress finishes within its own deadlines.
        end = time.monotonic() + 4 * SESSION_IO_S
        for t in threads:
            t.join(max(0.1, end - time.monotonic()))
        return [t for t in threads if t.is_alive()]

    def check(self, name, problems, detail=""):
        ok = not problems
        self.results.append((name, ok))
        log(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if ok and detail else ""))
        for p in problems[:20]:
            log(f"      {p}")
        if len(problems) > 20:
            log(f"      ... and {len(problems) - 20} more")

    def session_lines(self):
        """client port -> fields of its session line. A connection that
        connect() dropped for its reused port sent no command (cmd=-)."""
        out = {}
        rx = re.compile(r"\bsession sid=\d+ client=127\.0\.0\.1:(\d+) ")
        for line in self.d.text().splitlines():
            m = rx.search(line)
            if m:
                f = H.parse_kv(line[line.index("session "):])
                if f.get("cmd") != "-" or int(m.group(1)) not in out:
                    out[int(m.group(1))] = f
        return out

    def helper_refusal(self, sess, text):
        """Whether a 01 01 is explained: the daemon says a helper failed
        for this client and a helper was killed while it logged in."""
        logged = re.search(r"auth-fail sid=\d+ client=127\.0\.0\.1:%d user=%s reason=helper\b"
                           % (sess.port, sess.user), text)
        killed = any(role == "auth-helper" and sess.t0 <= t <= sess.t1
                     for t, _, role, _ in self.kills)
        return bool(logged and killed)

    def verify_sessions(self, stuck):
        hit = set().union(*(k[3] for k in self.kills)) if self.kills else set()
        text = self.d.text()
        bad, refused_ok = [], 0
        for s in self.sessions:
            if s.ok or s.port in hit:
                continue
            if s.auth_refused and self.helper_refusal(s, text):
                refused_ok += 1
                continue
            bad.append(f"{s.kind} #{s.sid} port={s.port} not hit by a kill: {s.error}")
        if stuck:
            bad.append(f"{len(stuck)} client threads still running")
        self.check("data intact", bad)
        self.hit, self.refused_ok = hit, refused_ok
        # Every completed session's audit line counts what it carried.
        done = [s for s in self.sessions if s.ok and s.port not in hit]
        want = {s.port for s in done}
        try:
            H.wait_until(lambda: want <= set(self.session_lines()), 20, "session lines")
        except AssertionError:
            pass
        lines, bad = self.session_lines(), []
        for s in done:
            f = lines.get(s.port)
            if f is None:
                bad.append(f"{s.kind} #{s.sid} port={s.port}: no session line")
            elif s.dgrams is not None and (f.get("dgrams_up"), f.get("dgrams_down")) != \
                    (str(s.dgrams),) * 2:
                bad.append(f"udp #{s.sid}: {s.dgrams} datagrams, line {f}")
            elif s.up is not None and (f.get("up"), f.get("down")) != (str(s.up), str(s.down)):
                bad.append(f"{s.kind} #{s.sid}: {s.up} bytes each way, line {f}")
            elif s.parked and f.get("parked") != "1":
                bad.append(f"{s.kind} #{s.sid}: held by a hub but not parked=1: {f}")
        self.check("audit lines", bad)

    def verify_kills(self):
        text, bad = self.d.text(), list(self.fault_errors)
        for _, pid, role, held in self.kills:
            m = re.search(rf"\b{role}-exit pid={pid} generation=\d+ status=signal:9(.*)", text)
            if m is None:
                bad.append(f"{role} {pid}: no exit line")
            elif role == "worker" and held and "state=busy" not in m.group(1):
                bad.append(f"worker {pid} held clients {sorted(held)}: {m.group(0)}")
            elif role == "hub" and "parked sessions are lost" not in m.group(1):
                bad.append(f"hub {pid}: {m.group(0)}")
        lines = self.session_lines()
        for s in self.sessions:
            f = lines.get(s.port, {})
            if s.port in self.hit and not s.ok and f.get("end") in ("client", "target") \
                    and f.get("cmd") != "-":
                bad.append(f"{s.kind} #{s.sid} failed ({s.error}) but its line says it "
                           f"ended well: {f}")
        self.check("kills logged", bad, f"{len(self.kills)} kills")

    def verify_rest(self, base):
        try:
            H.wait_until(self.at_rest, SETTLE_S, "rest")
        except AssertionError:
            pass
        pid = self.d.pid
        after = dict(fds=H.fd_count(pid), rss=rss_kib(pid),
                     children=len(H.children_of(pid)))
        self.after = after
        self.check("fds back", [] if after["fds"] == base["fds"] else
                   [f"master fds {base['fds']} -> {after['fds']}: "
                    + " ".join(sorted(os.readlink(f"/proc/{pid}/fd/{f}")
                                      for f in os.listdir(f"/proc/{pid}/fd")))])
        margin = RSS_MARGIN_ASAN_KIB if pamtest.daemon_has_asan(H.DAEMON) else RSS_MARGIN_KIB
        self.check("rss back", [] if after["rss"] <= base["rss"] + margin else
                   [f"master RSS {base['rss']} -> {after['rss']} KiB (margin {margin})"],
                   f"{base['rss']} -> {after['rss']} KiB, margin {margin} KiB")
        kids = H.children_of(pid)
        self.check("children back", [] if len(kids) == base["children"] else
                   [f"children {base['children']} -> {len(kids)}: "
                    + " ".join(f"{p}:{H.proc_comm(p)}" for p in kids)])
        zombies = [p for p in kids + self.d.session_pids()
                   if (H.proc_stat(p) or ("?",))[0] == "Z"]
        zombies += [p for p in H.children_of(pid) if (H.proc_stat(p) or ("?",))[0] == "Z"]
        self.check("no zombies", [f"zombies: {sorted(set(zombies))}"] if zombies else [])
        workers = self.d.workers_pids()
        self.check("pool at min_spare", [] if len(workers) == MIN_SPARE else
                   [f"{len(workers)} workers, min_spare {MIN_SPARE}"])

    def verify_stop(self):
        problems = []
        try:
            rc = self.d.stop()
            if rc != 0:
                problems.append(f"master exited with {rc} on SIGTERM")
        except AssertionError as e:
            problems.append(str(e))
        problems += self.d.sanitizer_errors()[:5]
        self.check("clean stop", problems)

    def figures(self, base):
        log(f"# seed={self.args.seed} seconds={self.args.seconds} clients={self.args.clients}"
            f" kill_every={self.args.kill_every}"
            f" daemon={H.DAEMON}")
        parts = []
        for kind, _ in KINDS:
            ss = [s for s in self.sessions if s.kind == kind]
            hit = [s for s in ss if s.port in self.hit]
            parts.append(f"{kind} {len(ss)} (ok {sum(s.ok for s in ss)}, hit {len(hit)} "
                         f"of which failed {sum(not s.ok for s in hit)})")
        log(f"# sessions: {len(self.sessions)}: " + ", ".join(parts))
        parked = sum(s.parked for s in self.sessions)
        log(f"# parked sessions seen in a hub: {parked}")
        kparts = []
        for role, _ in ROLES:
            ks = [k for k in self.kills if k[2] == role]
            kparts.append(f"{role} {len(ks)} (holding {sum(len(k[3]) for k in ks)} clients)")
        log(f"# kills: {len(self.kills)}: " + ", ".join(kparts)
            + f"; logins refused by a killed helper: {self.refused_ok}")
        logged = len(re.findall(r"\breload generation=\d+", self.d.text()))
        log(f"# reloads: {self.reloads} sent (+1 warm-up), {logged} logged")
        total = sum(s.bytes for s in self.sessions if s.ok)
        log(f"# bytes verified: {total} ({total / (1 << 20):.1f} MiB)")
        known = re.compile(r"\b(session|session-update) sid=|-exit pid=\d+ generation=\d+ "
                           r"status=signal:9|\breload generation=|\bauth-fail sid=.* "
                           r"reason=helper|\bstart version=|^PWRAP_")
        other = {}
        for line in self.d.text().splitlines():
            if not known.search(line):
                key = re.sub(r"\d+", "N", line)
                other[key] = other.get(key, 0) + 1
        log(f"# other log lines: {sum(other.values())}")
        for key, n in sorted(other.items(), key=lambda kv: -kv[1])[:10]:
            log(f"#   {n:5d} {key[:200]}")
        log(f"# master: fds {base['fds']} -> {self.after['fds']}, rss {base['rss']} -> "
            f"{self.after['rss']} KiB, children {base['children']} -> {self.after['children']}")


def main():
    global H, pamtest
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default="build/src/socks5d")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--kill-every", type=float, default=0.75,
                    help="mean seconds between kills (each 0.4 to 1.6 times it)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    os.environ["SOCKS5D_IT_DAEMON"] = os.path.abspath(args.daemon)
    in_ns = enter_namespace()
    import harness as H
    import pamtest
    H.become_subreaper()
    log(f"# soak: daemon {H.DAEMON}, namespace {'yes' if in_ns else 'no'}, seed {args.seed}"
        f" (replay: --seed {args.seed})")
    why = pamtest.available(H.DAEMON)
    if not in_ns or not H.IS_ROOT or why:
        log(f"FAIL  set up: needs root, its own namespace and pam_wrapper ({why or 'not root'})")
        log("0 passed, 1 failed")
        return 1
    s = Soak(args)
    t0 = time.monotonic()
    try:
        s.start()
        bad = s.warm_up()
        base = s.settle("rest before the soak")
        s.check("warm-up", [f"{x.kind}: {x.error}" for x in bad],
                f"master fds {base['fds']}, rss {base['rss']} KiB, children {base['children']}")
        stuck = s.soak()
        s.verify_sessions(stuck)
        s.verify_kills()
        s.verify_rest(base)
        s.figures(base)
    except Exception as e:
        s.check("soak ran", [f"{type(e).__name__}: {e}"])
        if getattr(s, "d", None):
            log(s.d.text()[-3000:])
    finally:
        if getattr(s, "d", None):
            s.verify_stop()
            H.finish_daemon(s.d)
        for x in ("echo", "udp_echo"):
            if getattr(s, x, None):
                getattr(s, x).close()
    passed = sum(ok for _, ok in s.results)
    log(f"# soak: {time.monotonic() - t0:.1f}s")
    if passed != len(s.results) and getattr(s, "d", None):
        path = os.path.join(tempfile.gettempdir(), f"socks5d-soak-{args.seed}.log")
        with open(path, "w") as f:
            f.write(s.d.text() + "\n")
        log(f"# the daemon's log: {path}")
    log(f"{passed} passed, {len(s.results) - passed} failed")
    return 0 if passed == len(s.results) else 1


if __name__ == "__main__":
    sys.exit(main())
