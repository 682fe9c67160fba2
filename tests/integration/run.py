#!/usr/bin/python3
"""Integration test runner for socks5d: a real daemon, real clients, loopback only.

  /usr/bin/python3 tests/integration/run.py --daemon build/src/socks5d [--label NAME] [-k PATTERN]

As root it re-executes itself inside `unshare --net --mount`: a private
network namespace (only lo, brought up here) and a private mount namespace in
which /etc/hosts and /etc/nsswitch.conf are ours (`hosts: files`), so no name
lookup leaves the machine. Otherwise it runs directly and skips the tests
that need that namespace. Prints one line per test; the last line is
`N passed, N failed, N skipped`; exit status 1 if anything failed.
"""

import argparse
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
INNER_ENV = "SOCKS5D_IT_INNER"     # set once we re-executed: no recursion
NETNS_ENV = "SOCKS5D_IT_NETNS"     # "1" when the namespace is set up
OUTER_NS_ENV = "SOCKS5D_IT_OUTER_NS"  # namespaces we re-executed from
TEST_TIMEOUT = 120                 # a hung test fails instead of hanging CI

HOSTS = """127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
127.0.0.1 dual.socks5d.test
::1 dual.socks5d.test
::1 v6only.socks5d.test
127.0.0.1 v4only.socks5d.test
"""
NSSWITCH = "hosts: files\npasswd: files\ngroup: files\nshadow: files\n"


def log(msg):
    print(msg, flush=True)


def reexec_in_namespace():
    """Re-runs this script in a new net+mount namespace when we can. Returns
    only when we cannot (not root, or unshare refused)."""
    if os.environ.get(INNER_ENV) or os.geteuid() != 0:
        return
    env = dict(os.environ, **{INNER_ENV: "unshared", OUTER_NS_ENV: ns_ids()})
    probe = subprocess.run(["unshare", "--net", "--mount", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if probe.returncode != 0:
        log(f"# unshare failed ({probe.stderr.strip()}): running without a private namespace")
        return
    # --propagation private (unshare's default) keeps our bind mounts inside.
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation", "private",
                           "--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def ns_ids():
    return ",".join(os.readlink(f"/proc/self/ns/{n}") for n in ("net", "mnt"))


def own_namespaces():
    """True when our net and mount namespaces differ from those of the
    process that re-executed us (recorded in the environment)."""
    try:
        return os.environ.get(OUTER_NS_ENV, ns_ids()) != ns_ids() and \
            all(a != b for a, b in zip(os.environ[OUTER_NS_ENV].split(","), ns_ids().split(",")))
    except (OSError, KeyError):
        return False


def setup_namespace():
    """Inside the namespace: lo up (with ::1), our hosts and nsswitch."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # A new namespace may start with IPv6 disabled by sysctl defaults.
    try:
        with open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w") as f:
            f.write("0")
    except OSError:
        pass
    d = tempfile.mkdtemp(prefix="socks5d-it-etc-")
    for name, text in (("hosts", HOSTS), ("nsswitch.conf", NSSWITCH)):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        subprocess.run(["mount", "--bind", path, "/etc/" + name], check=True)
    os.chmod(d, 0o755)
    # ::1 becomes usable only once DAD-free assignment is done: poll for it.
    import socket
    end = time.monotonic() + 5
    while True:
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
            break
        except OSError:
            if time.monotonic() > end:
                log("# ::1 not available in the namespace")
                break
            time.sleep(0.05)


class LineResult(unittest.TestResult):
    """One line per test as it ends; details collected for the end."""

    def __init__(self):
        super().__init__()
        self.passed = 0
        self.details = []
        self.t0 = {}

    def startTest(self, test):
        super().startTest(test)
        self.t0[test.id()] = time.monotonic()
        signal.alarm(TEST_TIMEOUT)

    def stopTest(self, test):
        signal.alarm(0)
        super().stopTest(test)

    def _secs(self, test):
        t = self.t0.get(test.id())
        return f"{time.monotonic() - t:6.2f}s" if t else "       "

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1
        log(f"PASS  {self._secs(test)} {test.id()}")

    def _bad(self, kind, test, err):
        text = self._exc_info_to_string(err, test)
        last = [l for l in text.strip().splitlines() if l.strip()][-1]
        log(f"{kind}  {self._secs(test)} {test.id()}: {last[:300]}")
        self.details.append((kind, test.id(), text))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._bad("FAIL", test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self._bad("FAIL", test, err)  # an error is a failure for the count

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        log(f"SKIP  {self._secs(test)} {test.id()}: {reason}")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._bad("FAIL", subtest, err)


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout(f"test still running after {TEST_TIMEOUT}s")


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def matches(test_id, patterns):
    if not patterns:
        return True
    for p in patterns:
        if any(c in p for c in "*?["):
            if fnmatch.fnmatchcase(test_id, p if p.startswith("*") else "*" + p + "*"):
                return True
        elif p in test_id:
            return True
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", required=True, help="path to socks5d (or microsocks)")
    ap.add_argument("--label", default="integration")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="run only tests whose id contains PATTERN (or matches a glob)")
    args = ap.parse_args()

    reexec_in_namespace()
    if os.environ.get(INNER_ENV) == "unshared" and NETNS_ENV not in os.environ:
        # Safety: never touch /etc unless we really are in our own namespaces.
        if own_namespaces():
            try:
                setup_namespace()
                os.environ[NETNS_ENV] = "1"
            except (subprocess.CalledProcessError, OSError) as e:
                log(f"# namespace setup failed ({e}): namespace tests skip")
                os.environ[NETNS_ENV] = "0"
        else:
            os.environ[NETNS_ENV] = "0"
    os.environ.setdefault(NETNS_ENV, "0")

    daemon = os.path.abspath(args.daemon) if os.sep in args.daemon else args.daemon
    if not (os.access(daemon, os.X_OK) or shutil.which(daemon)):
        log(f"FAIL  daemon {daemon} not found or not executable")
        log("0 passed, 1 failed, 0 skipped")
        return 1
    os.environ["SOCKS5D_IT_DAEMON"] = daemon
    log(f"# {args.label}: daemon {daemon}, namespace "
        f"{'yes' if os.environ.get(NETNS_ENV) == '1' else 'no'}")

    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree (dist)
    import harness
    harness.become_subreaper()
    signal.signal(signal.SIGALRM, on_alarm)

    loader = unittest.TestLoader()
    try:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
        tests = [t for t in flatten(suite) if matches(t.id(), args.patterns)]
    except Exception:
        traceback.print_exc()
        log("0 passed, 1 failed, 0 skipped")
        return 1
    result = LineResult()
    t0 = time.monotonic()
    unittest.TestSuite(tests).run(result)
    for kind, tid, text in result.details:
        log(f"\n===== {kind} {tid}\n{text.rstrip()}")
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped) + len(result.expectedFailures)
    log(f"\n# {args.label}: {time.monotonic() - t0:.1f}s")
    log(f"{result.passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
