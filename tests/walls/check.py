#!/usr/bin/python3
"""tests/walls/check.py: the architecture's walls, checked from the
includes and calls of src/ (doc/design.md, "Walls"). One PASS/FAIL line per
wall, then the offending places, then "N passed, N failed"."""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
MAX_FILE_LINES = 800
MAX_FUNC_LINES = 80
# Pure wire codecs: no project header but their own, no socket.
CODECS = ["socks5.c", "authmsg.c", "siphash.c"]
# The master's own files; hub.h and worker.h are included for the entry
# points of the roles they fork, which must not bring the relay along.
MASTER = ["master.c", "master.h", "children.c", "children.h", "pool.c", "pool.h",
          "hubchan.c", "hubchan.h", "generation.c", "generation.h", "slots.c", "slots.h",
          "priv.c", "priv.h", "authchan.c", "authchan.h", "listener.c", "listener.h",
          "notify.c", "notify.h", "pidfile.c", "pidfile.h", "nofile.c", "nofile.h",
          "pipepages.c", "pipepages.h", "sandbox.c", "sandbox.h",
          "control.c", "control.h", "control_client.c", "status.c", "status.h", "main.c"]
RELAY = ["relay.c", "relay.h", "relay_poll.c", "hub_relay.c", "hub_relay.h"]
RELAY_HEADERS = {"relay.h", "hub_relay.h"}
SESSION_LAYER = {"session.h", "command.h", "connect.h", "worker.h"}
SOCKET_CALLS = re.compile(r"\b(socket|connect|accept4?|bind|listen|send|recv|sendmsg|"
                          r"recvmsg|read|write|poll|splice|setsockopt|getsockopt)\s*\(")


def files():
    return sorted(f for f in os.listdir(SRC) if f.endswith((".c", ".h")))


def text(name):
    with open(os.path.join(SRC, name), encoding="utf-8") as f:
        return f.read()


def includes(name):
    return re.findall(r'^#include "([a-z_0-9]+\.h)"', text(name), re.M)


def closure(name, seen=None):
    """Every project header name reaches through its includes."""
    seen = set() if seen is None else seen
    for h in includes(name):
        if h not in seen and os.path.exists(os.path.join(SRC, h)):
            seen.add(h)
            closure(h, seen)
    return seen


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', src)


def wall_codecs():
    bad = []
    for f in CODECS:
        own = f[:-2] + ".h"
        bad += [f"{f} includes {h}" for h in includes(f) if h != own]
        bad += [f"{f} calls {m.group(1)}()" for m in SOCKET_CALLS.finditer(strip_comments(text(f)))]
    return bad


def reaches_libconfig(name):
    return any("#include <libconfig.h>" in text(h) for h in closure(name) | {name})


def wall_libconfig():
    # config.c, config_*.c and the config module's private config_*.h.
    own = re.compile(r"config(_[a-z0-9]+)?\.c$|config_[a-z0-9]+\.h$")
    bad = [f"{f} reaches libconfig.h" for f in files()
           if reaches_libconfig(f) and not own.match(f)]
    bad += [f"{f} includes config.h" for f in ("rules.c", "rules.h")
            if os.path.exists(os.path.join(SRC, f)) and "config.h" in closure(f)]
    return bad


def wall_master():
    return [f"{f} reaches {h}" for f in MASTER if os.path.exists(os.path.join(SRC, f))
            for h in sorted(closure(f) & RELAY_HEADERS)]


def wall_relay():
    return [f"{f} reaches {h}" for f in RELAY if os.path.exists(os.path.join(SRC, f))
            for h in sorted(closure(f) & SESSION_LAYER)]


def wall_syslog():
    return [f"{f} calls syslog()" for f in files()
            if f != "log.c" and re.search(r"\bsyslog\s*\(", strip_comments(text(f)))]


def wall_circles():
    bad = []
    for a in files():
        if not a.endswith(".c"):
            continue
        for h in includes(a):
            b = h[:-2] + ".c"
            if b != a and a < b and os.path.exists(os.path.join(SRC, b)) \
                    and a[:-2] + ".h" in includes(b):
                bad.append(f"{a} and {b} include each other")
    return bad


def functions(src):
    """(name, first line, lines) of each function: a name at column 0
    followed by '(' and a body from '{' to '}' at column 0."""
    lines = src.split("\n")
    out, name, start = [], None, None
    for i, line in enumerate(lines):
        m = re.match(r"^([a-z_][a-z_0-9]*)\(", line)
        if m:
            name, start = m.group(1), i
        elif line.startswith("}") and name is not None:
            out.append((name, start + 1, i - start + 1))
            name = None
        elif line and not line[0].isspace() and not line.startswith("{") and name is not None \
                and line.rstrip().endswith(";"):
            name = None  # a prototype
    return out


def wall_sizes():
    bad = []
    for f in files():
        src = text(f)
        n = src.count("\n")
        if n > MAX_FILE_LINES:
            bad.append(f"{f} has {n} lines")
        if f.endswith(".c"):
            bad += [f"{name} in {f}:{line} is {k} lines" for name, line, k in functions(src)
                    if k > MAX_FUNC_LINES]
    return bad


WALLS = [
    ("wire codecs include only their own header and reach no socket", wall_codecs),
    ("only config*.c include libconfig; rules.c does not reach config.h", wall_libconfig),
    ("the master's files reach no relay code", wall_master),
    ("relay code reaches nothing of the session or command layer", wall_relay),
    ("only log.c calls syslog()", wall_syslog),
    ("no two files in src/ include each other", wall_circles),
    (f"no file over {MAX_FILE_LINES} lines, no function over {MAX_FUNC_LINES}", wall_sizes),
]


def main():
    passed = failed = 0
    for title, check in WALLS:
        bad = check()
        print(f"{'PASS' if not bad else 'FAIL'}    {title}")
        for b in bad:
            print(f"        {b}")
        passed += not bad
        failed += bool(bad)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
