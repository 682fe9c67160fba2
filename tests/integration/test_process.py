"""The process side: pool refill after a worker is killed, SIGHUP reloads
(broken and changed files), SIGTERM/SIGINT stops, privilege drop, fd leaks.
Each test runs its own daemon, since each one changes or ends it."""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import (finish_daemon, Daemon, IS_ROOT, all_pids, Pattern, TcpServer,
                     Thread, closed_port, connect_proxy, echo_handler,
                     echo_roundtrip, fd_count, free_port, local_addr, needs_socks5d,
                     open_session, proc_stat, read_reply, recv_exact,
                     recv_hash, request_bytes, send_pattern, wait_closed,
                     wait_until)


def scoreboard_map(pid, nslots):
    """(start, end) of the scoreboard mapping in pid: the shared anonymous
    mapping whose first word (nslots) is nslots."""
    with open(f"/proc/{pid}/maps") as f:
        maps = [l.split() for l in f]
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for m in maps:
            if "s" not in m[1] or not " ".join(m[5:]).startswith("/dev/zero"):
                continue
            start, end = (int(x, 16) for x in m[0].split("-"))
            mem.seek(start)
            if int.from_bytes(mem.read(8), "little") == nslots:
                return start, end
    return None


def pid_offsets(data, pid):
    """Offsets (4-aligned) of pid as a 32-bit little-endian int in data."""
    needle = pid.to_bytes(4, "little")
    return [o for o in range(0, len(data) - 3, 4) if data[o:o + 4] == needle]


def data_of(pid, span):
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(span[0])
        return mem.read(span[1] - span[0])


@needs_socks5d
class ProcessBase(unittest.TestCase):
    relay = "splice"

    def setUp(self):
        self.echo = TcpServer(echo_handler)
        self.addCleanup(self.echo.close)

    def start(self, **kw):
        kw.setdefault("relay", self.relay)
        d = Daemon(**kw).start()
        self.addCleanup(self.finish, d)
        return d

    def finish(self, d):
        finish_daemon(d)

    def serve_ok(self, port, msg=b"ping"):
        s, _ = open_session(("127.0.0.1", port), *self.echo.addr)
        with s:
            echo_roundtrip(s, msg)
        return s

    def zombies(self, d):
        return [p for p in d.children() if (proc_stat(p) or ("?",))[0] == "Z"]

    # ---- worker killed

    def test_kill_worker_mid_session(self):
        d = self.start(workers=dict(min_spare=2, max_spare=4))
        victim_s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        other_s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with victim_s, other_s:
            echo_roundtrip(victim_s, b"before")
            echo_roundtrip(other_s, b"before")
            victim = wait_until(lambda: d.worker_for(victim_s), 5, "the victim's worker")
            other = d.worker_for(other_s)
            self.assertNotEqual(victim, other)
            os.kill(victim, signal.SIGKILL)
            # That client sees a close (FIN or RST) ...
            wait_closed(victim_s, 10)
            # ... the other session goes on intact ...
            payload = os.urandom(1 << 20)
            echo_roundtrip(other_s, payload)
        d.wait_log(rf"worker-exit pid={victim}\b.*status=signal:9", 0, 10)
        # ... the pool is refilled, and the dead worker was reaped.
        wait_until(lambda: victim not in d.children() and len(d.workers_pids()) >= 2,
                   10, "the dead worker reaped and the pool back at min_spare (2)")
        wait_until(lambda: not self.zombies(d), 5, "no zombie children of the master")
        self.serve_ok(d.port)
        self.assertEqual(d.stop(), 0)

    def test_kill_idle_workers_repeatedly(self):
        d = self.start(workers=dict(min_spare=2, max_spare=4))
        for round_ in range(3):  # bounded
            idle = wait_until(lambda: d.workers_pids(), 10, "a worker")
            for pid in idle:
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: len([p for p in d.workers_pids() if p not in idle]) >= 2,
                       10, f"round {round_}: two new workers")
            self.serve_ok(d.port)
        wait_until(lambda: not self.zombies(d), 5, "no zombie children of the master")
        self.assertEqual(d.stop(), 0)

    # ---- SIGHUP

    def test_sighup_broken_config_keeps_serving(self):
        d = self.start()
        with open(d.conf, "a") as f:
            f.write('\nno_such_setting = "x";\n')
        mark = d.mark()
        d.signal(signal.SIGHUP)
        line = d.wait_log(r"config-error ", mark, 10)
        self.assertRegex(line, re.escape(d.conf) + r":\d+: ")
        d.wait_log(r"reload-failed", mark, 10)
        self.assertTrue(d.alive())
        self.serve_ok(d.port)
        # The running configuration stays: a later good reload still works.
        d.write_config()
        mark = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload generation=\d+", mark, 10)
        self.serve_ok(d.port)
        self.assertEqual(d.stop(), 0)

    def test_sighup_new_listener_and_relay_mode(self):
        d = self.start()
        old = open_session(("127.0.0.1", d.port), *self.echo.addr)[0]
        with old:
            echo_roundtrip(old, b"before reload")
            new_port = free_port()
            d.extra_listeners.append(dict(address="127.0.0.1", port=new_port))
            d.relay = "copy" if self.relay == "splice" else "splice"
            d.write_config()
            mark = d.mark()
            d.signal(signal.SIGHUP)
            line = d.wait_log(r"reload generation=\d+", mark, 10)
            self.assertNotIn("reload-failed", d.text(mark))

            def new_listener_serves():
                try:
                    self.serve_ok(new_port, b"new listener")
                    return True
                except (OSError, AssertionError):
                    return False
            wait_until(new_listener_serves, 10, f"the new listener on {new_port}")
            self.serve_ok(d.port, b"old listener")
            # A bulk transfer through the new relay mode.
            pat = Pattern(4 << 20, seed=11)
            s, _ = open_session(("127.0.0.1", new_port), *self.echo.addr)
            with s:
                s.settimeout(30)
                t = Thread(lambda: (send_pattern(s, pat), s.shutdown(socket.SHUT_WR)))
                t.start()
                self.assertEqual(recv_hash(s), (pat.length, pat.sha256()))
                t.join_result(30)
            # The session opened before the reload is still intact.
            echo_roundtrip(old, b"after reload")
        # Generations count up.
        gen = int(line.split("reload generation=")[1].split()[0])
        mark = d.mark()
        d.signal(signal.SIGHUP)
        line2 = d.wait_log(r"reload generation=\d+", mark, 10)
        self.assertEqual(int(line2.split("reload generation=")[1].split()[0]), gen + 1)
        self.assertEqual(d.stop(), 0)

    # ---- SIGTERM / SIGINT

    def stop_idle(self, sig):
        d = self.start(timeouts=dict(shutdown=3))
        self.serve_ok(d.port)
        pids = [d.pid] + d.children()
        d.signal(sig)
        try:
            d.proc.wait(3 + 5)
        except Exception:
            self.fail(f"master still running 8 s after signal {sig}")
        self.assertEqual(d.proc.returncode, 0)
        wait_until(lambda: not [p for p in pids if (proc_stat(p) or ("Z",))[0] != "Z"],
                   5, f"every process of the daemon gone ({pids})")
        self.assertEqual(d.stop(), 0)  # raises if any process is left

    def test_sigterm_idle(self):
        self.stop_idle(signal.SIGTERM)

    def test_sigint_idle(self):
        self.stop_idle(signal.SIGINT)

    def test_sigterm_with_open_session(self):
        shutdown = 2
        d = self.start(timeouts=dict(shutdown=shutdown))
        s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with s:
            echo_roundtrip(s, b"before SIGTERM")
            t0 = time.monotonic()
            mark = d.mark()
            d.signal(signal.SIGTERM)
            # Stop accepting: a new client is soon refused or not served.
            def not_served():
                try:
                    c = socket.create_connection(("127.0.0.1", d.port), timeout=1)
                except OSError:
                    return True
                with c:
                    try:
                        c.sendall(b"\x05\x01\x00")
                        c.settimeout(1)
                        return c.recv(2) != b"\x05\x00"
                    except OSError:
                        return True
            wait_until(not_served, shutdown + 5, "new clients no longer served")
            # The open session may go on until it is cut after timeouts.shutdown.
            try:
                echo_roundtrip(s, b"during shutdown")
            except (AssertionError, OSError):
                pass
            wait_closed(s, shutdown + 5)
            self.assertLess(time.monotonic() - t0, shutdown + 5)
        try:
            d.proc.wait(shutdown + 5)
        except Exception:
            self.fail("master still running after timeouts.shutdown + 5 s")
        self.assertEqual(d.proc.returncode, 0)
        fields = d.session(local_addr(s), mark, 5)
        self.assertEqual(fields.get("end"), "shutdown", fields)
        self.assertEqual(d.stop(), 0)

    # ---- resources and privileges

    def test_no_fd_leak_in_worker(self):
        # One worker, so that every session goes through the same process.
        d = self.start(workers=dict(min_spare=1, max_spare=1, max=1))
        first = self.serve_ok(d.port)
        d.session(local_addr(first), 0, 10)
        worker = wait_until(lambda: d.workers_pids(), 10, "the worker")[0]
        base = wait_until(lambda: fd_count(worker), 5, "fd count")
        before = sorted(os.listdir(f"/proc/{worker}/fd"))
        refused = closed_port()
        last = None
        for i in range(50):
            kind = i % 5
            if kind == 0:  # refused connect
                c = connect_proxy(("127.0.0.1", d.port))
                with c:
                    c.sendall(b"\x05\x01\x00" + request_bytes("127.0.0.1", refused))
                    recv_exact(c, 2)
                    self.assertEqual(read_reply(c)[1], 5)
                    wait_closed(c)
            elif kind == 1:  # bad input
                c = connect_proxy(("127.0.0.1", d.port))
                with c:
                    c.sendall(b"\x05\x00")
                    wait_closed(c)
            elif kind == 2:  # client half-close
                c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
                with c:
                    c.sendall(b"x" * 70000)
                    c.shutdown(socket.SHUT_WR)
                    self.assertEqual(len(wait_closed(c)), 70000)
            else:
                c = self.serve_ok(d.port, b"session %d" % i)
            last = c
        d.session(local_addr(last), 0, 10)
        self.assertIn(worker, d.workers_pids(), "the worker was replaced")

        # A leak shows as growth; the baseline may still hold an fd the
        # first session was about to close, so "not more" is the test.
        def settled():
            n = fd_count(worker)
            return n is not None and n <= base
        try:
            wait_until(settled, 5, "the worker's fd count back to its value after one session")
        except AssertionError:
            after = sorted(os.listdir(f"/proc/{worker}/fd"))
            links = {fd: os.readlink(f"/proc/{worker}/fd/{fd}") for fd in after
                     if fd not in before}
            self.fail(f"worker {worker}: {base} fds after 1 session, "
                      f"{fd_count(worker)} after 51; new: {links}")
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(IS_ROOT, "privilege drop needs root")
    def test_workers_run_as_configured_user(self):
        d = self.start()
        nobody = pwd.getpwnam("nobody").pw_uid
        workers = wait_until(lambda: d.workers_pids(), 10, "workers")
        for pid in workers:
            with open(f"/proc/{pid}/status") as f:
                ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid", "Gid", "Groups"))}
            self.assertEqual(set(ids["Uid"]), {str(nobody)}, f"worker {pid} uids {ids['Uid']}")
            self.assertNotIn("0", ids["Gid"], f"worker {pid} gids {ids['Gid']}")
            self.assertNotIn("0", ids.get("Groups", []), f"worker {pid} groups")
        self.serve_ok(d.port)
        self.assertEqual(d.stop(), 0)

    def test_children_set_no_new_privs(self):
        # Workers and hubs alike: priv_drop sets no_new_privs, root or not.
        d = self.start(relay_extra=dict(park_after=1))
        workers = wait_until(lambda: d.workers_pids(), 10, "workers")
        hubs = wait_until(lambda: d.hub_pids(), 10, "hubs")
        for pid in workers + hubs:
            with open(f"/proc/{pid}/status") as f:
                nnp = [l.split()[1] for l in f if l.startswith("NoNewPrivs:")]
            self.assertEqual(nnp, ["1"], f"child {pid} NoNewPrivs {nnp}")
        self.serve_ok(d.port)
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(IS_ROOT, "writing a worker's memory needs root")
    def test_slot_written_free_by_its_worker_is_not_given_away(self):
        # A worker that writes SB_FREE into its own scoreboard slot (as a
        # compromised one could): the master counts it as not idle and
        # forks another worker, which must get a slot of its own, not the
        # one the first worker still holds.
        d = self.start(workers=dict(min_spare=2, max_spare=4, max=8))
        workers = wait_until(lambda: len(d.workers_pids()) >= 2 and d.workers_pids(), 10, "workers")
        victim = workers[0]
        span = scoreboard_map(victim, 8)
        self.assertIsNotNone(span, "no scoreboard mapping in the worker")
        offs = pid_offsets(data_of(victim, span), victim)
        with open(f"/proc/{victim}/mem", "r+b", buffering=0) as mem:
            self.assertEqual(len(offs), 1, f"worker {victim}'s pid in its slot: {offs}")
            # The state word comes right before the pid (struct sb_slot).
            mem.seek(span[0] + offs[0] - 4)
            self.assertEqual(int.from_bytes(mem.read(4), "little"), 2, "SB_IDLE")
            mem.seek(span[0] + offs[0] - 4)
            mem.write((0).to_bytes(4, "little"))  # SB_FREE
        new = wait_until(lambda: [p for p in d.workers_pids() if p not in workers],
                         10, "a worker forked for the one that looks gone")
        self.assertIn(victim, d.workers_pids())
        self.assertEqual(pid_offsets(data_of(victim, span), victim), offs,
                         "the slot of a live worker was given to another")
        for pid in new:
            got = wait_until(lambda: pid_offsets(data_of(victim, span), pid), 5,
                             f"worker {pid} in a slot")
            self.assertNotEqual(got, offs, f"worker {pid} shares worker {victim}'s slot")
        self.serve_ok(d.port)
        self.assertEqual(d.stop(), 0)

    def test_max_sessions_recycles_workers(self):
        d = self.start(workers=dict(min_spare=1, max_spare=2, max=2, max_sessions=3))
        seen = set()
        # 18 sessions need at least 6 workers; 4 seen is the check, with
        # room for a session whose worker could not be told (None).
        for i in range(18):
            s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
            with s:
                seen.add(d.worker_for(s))
                echo_roundtrip(s, b"n%d" % i)
        self.assertGreaterEqual(len(seen - {None}), 4, f"workers used: {seen}")
        wait_until(lambda: not self.zombies(d), 5, "no zombie children of the master")
        self.assertEqual(d.stop(), 0)


    # ---- without -F

    def test_daemon_mode_detaches_serves_and_stops(self):
        import harness
        d = Daemon(relay=self.relay)
        self.addCleanup(shutil.rmtree, d.tmp, True)
        d.write_config()
        # The parent returns once the listeners are open; the master
        # lives on in a session of its own.
        rc = subprocess.run([harness.DAEMON, "-f", d.conf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, timeout=15)
        self.assertEqual(rc.returncode, 0, rc.stderr)

        def ours():
            found = []
            for pid in all_pids():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if d.conf.encode() in f.read():
                            found.append(pid)
                except OSError:
                    pass
            return found

        def master():
            for pid in ours():
                st = proc_stat(pid)
                if st and st[1] not in ours():
                    return pid
            return None
        pid = wait_until(master, 10, "the detached master")
        try:
            self.assertEqual(os.getsid(pid), pid, "the master leads its own session")
            wait_until(lambda: len(ours()) >= 3, 10, "the master and its workers")
            self.serve_ok(d.port)
        finally:
            os.kill(pid, signal.SIGTERM)

        def gone():
            try:  # the runner is a subreaper: the master is its child now
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return not ours()
        wait_until(gone, 15, "no process of the detached daemon left")

    # ---- the pool follows the load

    def test_pool_grows_with_load_and_shrinks_after(self):
        d = self.start(workers=dict(min_spare=2, max_spare=3, max=32))
        wait_until(lambda: len(d.workers_pids()) >= 2, 10, "min_spare workers")
        held = []
        try:
            for i in range(12):
                s, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
                held.append(s)
            # 12 busy and min_spare idle on top of them.
            wait_until(lambda: len(d.workers_pids()) >= 14, 15,
                       "the pool grows to 12 busy + 2 idle workers")
            for s in held:
                echo_roundtrip(s, b"still served")
        finally:
            for s in held:
                s.close()
        # All idle now: the extra ones are retired down to max_spare.
        wait_until(lambda: len(d.workers_pids()) <= 3, 20,
                   "the pool shrinks back to max_spare idle workers")
        self.serve_ok(d.port)
        self.assertEqual(d.stop(), 0)

    def test_pool_full_is_logged_and_waiting_client_served(self):
        d = self.start(workers=dict(min_spare=1, max_spare=2, max=2))
        mark = d.mark()
        a, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        b, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with a, b:
            line = d.wait_log(r"pool-full workers=2 max=2", mark, 10)
            self.assertIn("pool-full", line)
            # A third client waits in the backlog until a worker is free.
            c = connect_proxy(("127.0.0.1", d.port))
            with c:
                c.sendall(b"\x05\x01\x00")
                a.close()
                self.assertEqual(recv_exact(c, 2, 10), b"\x05\x00")
            echo_roundtrip(b, b"b still served")
        self.assertEqual(d.stop(), 0)


    def test_stray_signals_leave_every_session_alive(self):
        """SIGUSR2 (an haproxy administrator's habit), SIGALRM and SIGTSTP
        are ignored by every process; SIGUSR1 logs one status line."""
        d = self.start()
        c, _ = open_session(("127.0.0.1", d.port), *self.echo.addr)
        with c:
            echo_roundtrip(c, b"before")
            mark = d.mark()
            worker = d.worker_for(c)
            self.assertIsNotNone(worker)
            for sig in (signal.SIGUSR2, signal.SIGALRM, signal.SIGTSTP):
                d.signal(sig)
                os.kill(worker, sig)
            d.signal(signal.SIGUSR1)
            line = d.wait_log(r"\bstatus generation=1 workers=\d+ idle=\d+ hubs=\d+ "
                              r"helpers=0 stopping=0$", mark, 10)
            echo_roundtrip(c, b"after")
            self.assertTrue(d.alive())
            self.assertEqual((proc_stat(worker) or ("gone",))[0] in ("S", "R"), True,
                             proc_stat(worker))
            self.assertIn(worker, d.workers_pids())
        self.assertNotIn("worker-exit", d.text(mark))
        self.assertEqual(d.stop(), 0)


class ProcessSplice(ProcessBase):
    relay = "splice"


class ProcessCopy(ProcessBase):
    relay = "copy"

    # Only the tests that involve the relay run twice.
    test_kill_idle_workers_repeatedly = None
    test_sighup_broken_config_keeps_serving = None
    test_sigterm_idle = None
    test_sigint_idle = None
    test_workers_run_as_configured_user = None
    test_max_sessions_recycles_workers = None


del ProcessBase
