#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpora of the fuzz targets (fuzz/corpus/TARGET/).

Each seed is a valid message or one of every malformed class the unit tests
use (tests/unit/test_socks5.c, test_auth.c, test_audit.c, test_config*.c),
so that fuzzing starts from every branch the tests know. The hub and auth
helper messages are C structs: build-fuzz/seed_structs writes them with the
compiler's own layout (fuzz/fuzz.mk builds it).

    python3 fuzz/make_corpus.py [--seed-structs build-fuzz/seed_structs]

The files it writes are checked in; run it again after a change here or to
a message layout, and commit what changed. The fuzzer's own findings go to
build-fuzz/corpus/ (not checked in), never here.
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, 'corpus')


def port(p):
    return struct.pack('>H', p)


def v4(a, b, c, d):
    return bytes([1, a, b, c, d])


def v6(addr16):
    return bytes([4]) + addr16


def name(n):
    return bytes([3, len(n)]) + n


V6_DOC = bytes.fromhex('20010db8000000000000000000000001')
V6_MAPPED = bytes.fromhex('00000000000000000000ffffc0000207')


def greeting():
    three = b'\x05\x03\x00\x01\x02'
    seeds = {
        'one-method': b'\x05\x01\x00',
        'userpass-only': b'\x05\x01\x02',
        'three-methods': three,
        'all-255-methods': b'\x05\xff' + bytes(range(255)),
        'zero-methods': b'\x05\x00',
        'bad-version-socks4': b'\x04\x01\x00\x50\x01\x02\x03\x04\x00',
        'bad-version-zero': b'\x00\x01\x00',
        'trailing-bytes': b'\x05\x02\x00\x02' + b'\x05\x01\x00\x01',
        'empty': b'',
    }
    for k in range(1, len(three)):
        seeds['truncated-%d' % k] = three[:k]
    return seeds


def request():
    req_v4 = b'\x05\x01\x00' + v4(192, 0, 2, 7) + port(80)
    req_v6 = b'\x05\x01\x00' + v6(V6_DOC) + port(443)
    req_dn = b'\x05\x01\x00' + name(b'example.org') + port(443)
    seeds = {
        'ipv4': req_v4,
        'ipv6': req_v6,
        'domain': req_dn,
        'domain-255': b'\x05\x01\x00' + name(b'a' * 255) + port(1),
        'bind': b'\x05\x02\x00' + v4(0, 0, 0, 0) + port(0),
        'udp-associate': b'\x05\x03\x00' + v6(bytes(16)) + port(0),
        'bad-version': b'\x04' + req_v4[1:],
        'bad-rsv': req_v4[:2] + b'\x01' + req_v4[3:],
        'domain-empty': b'\x05\x01\x00\x03\x00' + port(80),
        'domain-nul': b'\x05\x01\x00' + name(b'ex\x00mple') + port(80),
        'domain-escapes': b'\x05\x01\x00' + name(b'a b\n"c"=\\\xff') + port(80),
        'bad-cmd-complete': b'\x05\x09\x00' + v4(10, 0, 0, 1) + port(80),
        'bad-cmd-incomplete': b'\x05\x09\x00\x01\x0a',
        'port-byte-order': b'\x05\x01\x00' + v4(10, 0, 0, 1) + b'\x12\x34',
        'port-max': b'\x05\x01\x00' + v4(10, 0, 0, 1) + b'\xff\xff',
        'trailing-bytes': req_v4 + b'GET / HTTP/1.0\r\n',
    }
    for atyp in (0, 2, 5, 0xff):
        seeds['bad-atyp-%02x' % atyp] = b'\x05\x01\x00' + bytes([atyp]) + b'\x0a\x00\x00\x01' + port(80)
    for base, msg in (('ipv4', req_v4), ('domain', req_dn)):
        for k in (1, 3, 4, 5, len(msg) - 1):
            seeds['truncated-%s-%d' % (base, k)] = msg[:k]
    return seeds


def userpass():
    ok = b'\x01\x05alice\x06secret'
    seeds = {
        'ok': ok,
        'max-lengths': b'\x01\xff' + b'u' * 255 + b'\xff' + b'p' * 255,
        'zero-ulen': b'\x01\x00\x06secret',
        'zero-plen': b'\x01\x05alice\x00',
        'nul-in-user': b'\x01\x05al\x00ce\x06secret',
        'nul-in-pass': b'\x01\x05alice\x06sec\x00et',
        'user-escapes': b'\x01\x08a b\n"=\\\xff\x01x',
        'trailing-bytes': ok + b'\x05\x01\x00\x01',
    }
    for ver in (0, 2, 5):
        seeds['bad-version-%d' % ver] = bytes([ver]) + ok[1:]
    for k in (1, 2, 4, 7, 8, len(ok) - 1):
        seeds['truncated-%d' % k] = ok[:k]
    return seeds


def udp_header():
    h4 = b'\x00\x00\x00' + v4(10, 0, 0, 1) + port(53)
    hn = b'\x00\x00\x00' + name(b'abc') + port(53)
    return {
        'ipv4': b'\x00\x00\x00' + v4(192, 0, 2, 7) + b'\x12\x34' + b'payload',
        'ipv6': b'\x00\x00\x00' + v6(V6_DOC) + port(53) + b'q',
        'ipv6-mapped': b'\x00\x00\x00' + v6(V6_MAPPED) + port(53) + b'q',
        'domain': b'\x00\x00\x00' + name(b'host') + port(53) + b'q',
        'header-only': h4,
        'truncated-ipv4': h4[:-1],
        'truncated-domain': hn[:-1],
        'truncated-rsv': b'\x00',
        'rsv0': b'\x01' + h4[1:] + b'x',
        'rsv1': b'\x00\x01' + h4[2:] + b'x',
        'frag': b'\x00\x00\x01' + h4[3:] + b'x',
        'atyp2': b'\x00\x00\x00\x02' + h4[4:] + b'x',
        'domain-empty': b'\x00\x00\x00\x03\x00' + port(53),
        'domain-nul': b'\x00\x00\x00' + name(b'a\x00b') + port(53),
    }


# A configuration that loads (as the unit tests' fixtures: "nobody" exists
# on every Debian system, the default user may not).
BASE = b'''user = "nobody";
listeners = ( { address = "127.0.0.1"; port = 1080; } );
clients = ( { action = "pass"; } );
rules = ( { action = "pass"; } );
'''


def cfg(text, include=None):
    """The target's input: the main file, then a NUL and inc.conf."""
    return text if include is None else text + b'\x00' + include


def config_regressions(seeds):
    """The inputs that failed (each is a test in tests/unit/test_fuzz.c)."""
    many = seeds['many-listeners']
    return {
        # config_control_socket ended the process (libconfig read /tmp).
        'regress-control-include-directory': seeds['include-directory'],
        # A diagnostic echoed a raw newline: two lines for one record.
        'regress-diag-newline': many.replace(b'"127.0.0.2"', b'"8};\n' + b'\xff' * 37 + b'6.0...2"'),
    }


def config():
    with open(os.path.join(TOP, 'etc', 'socks5d.conf'), 'rb') as f:
        shipped = f.read()
    with open(os.path.join(TOP, 'etc', 'socks5d-dev.conf'), 'rb') as f:
        dev = f.read()
    return {
        'shipped': shipped,
        'shipped-nobody': shipped.replace(b'user = "socks5d";', b'user = "nobody";'),
        'dev': dev,
        'minimal': BASE,
        'include': cfg(b'@include "inc.conf"\n' + BASE,
                       b'workers = { min_spare = 1; max_spare = 2; max = 4; };\n'),
        'include-rules': cfg(b'user = "nobody";\n@include "inc.conf"\n'
                             b'clients = ( { action = "pass"; } );\n',
                             b'listeners = ( { address = "::1"; port = 1081; methods = [ "username", "none" ]; } );\n'
                             b'rules = ( { action = "pass"; } );\n'),
        'include-cycle': cfg(b'@include "inc.conf"\n' + BASE, b'@include "socks5d.conf"\n'),
        'include-self': cfg(b'@include "socks5d.conf"\n' + BASE),
        'include-missing': cfg(b'@include "missing.conf"\n' + BASE),
        'include-directory': cfg(BASE + b'@include "/tmp"\n'),
        'include-syntax-error': cfg(b'@include "inc.conf"\n' + BASE, b'workers = {\n'),
        'syntax-error': b'user = "nobody"\nlisteners = (;\n',
        'unterminated-string': b'user = "nobo',
        'unknown-key': BASE + b'colour = "blue";\nworkers = { maximum = 3; };\n',
        'wrong-types': b'user = 7;\nworkers = "many";\nlisteners = { };\n',
        'out-of-range': BASE + b'workers = { min_spare = 0; max = 100001; max_sessions = -1; };\n'
                               b'timeouts = { negotiate = 0; idle = 2147483647; };\n',
        'spare-above-max': BASE + b'workers = { min_spare = 10; max_spare = 5; max = 8; };\n',
        'unknown-user': BASE.replace(b'nobody', b'no-such-user-here'),
        'bad-listener': b'user = "nobody";\nlisteners = ( { address = "300.1.2.3"; port = 70000; methods = [ "gssapi" ]; } );\n'
                        b'clients = ( { action = "pass"; } );\nrules = ( { action = "pass"; } );\n',
        'many-listeners': BASE.replace(b'port = 1080; }', b'port = 1080; }' + b''.join(
            b', { address = "127.0.0.%d"; port = 1080; }' % i for i in range(2, 8))),
        'log-relay-auth': BASE + b'log = { facility = "local3"; level = "debug"; interim = 60; session_start = true; };\n'
                                 b'relay = { mode = "copy"; buffer_size = 4096; park_after = 0; hubs = 2; };\n'
                                 b'auth = { pam_service = "login"; helpers = 2; timeout = 5; cache_ttl = 60; cache_watch = [ "/etc/passwd" ]; };\n',
        'bad-log-relay': BASE + b'log = { facility = "kitchen"; level = "loud"; };\nrelay = { mode = "teleport"; pipe_size = 1; };\n',
        'control-bind-udp': BASE + b'control = { socket = "/run/socks5d/control"; };\n'
                                   b'bind = { ports = "40000-40100"; peer = "any"; };\n'
                                   b'udp = { ports = "50000-50100"; replies = "any"; batch = 16; };\n'
                                   b'external = [ "192.0.2.1", "2001:db8::1" ];\n',
        'bad-control-bind-udp': BASE + b'control = { socket = "relative/path"; };\n'
                                       b'bind = { ports = "9-1"; peer = "nobody"; };\n'
                                       b'udp = { ports = "0-70000"; batch = 65; };\n',
        'rules-full': b'user = "nobody";\nlisteners = ( { address = "127.0.0.1"; port = 1080; name = "lo"; methods = [ "username" ]; } );\n'
                      b'clients = ( { action = "pass"; from = [ "127.0.0.0/8", "::1" ]; listeners = [ "lo" ]; } );\n'
                      b'rules = (\n'
                      b'  { action = "block"; name = "self"; to = [ "self" ]; log = false; },\n'
                      b'  { action = "block"; to = [ "10.0.0.0/8", "fc00::/7", ".example.com", "host.example" ]; ports = [ "1-1023", "8080" ]; },\n'
                      b'  { action = "pass"; users = [ "alice" ]; groups = [ "root" ]; commands = [ "connect", "udp", "bind" ]; '
                      b'max_sessions = 10; sessions_per = "user"; rate_up = 1000000; rate_down = 2000000; rate_per = "session"; },\n'
                      b'  { action = "pass"; name = "rest"; methods = [ "username" ]; }\n);\n',
        'bad-rules': BASE + b'rules = ( { action = "maybe"; to = [ "10.0.0.0/33", "" ]; ports = [ "0" ]; users = [ ]; '
                            b'groups = [ "no-such-group-here" ]; commands = [ "fly" ]; sessions_per = "moon"; } );\n',
        'empty': b'',
        'comments-only': b'# nothing\n// here\n/* at all */\n',
    }


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for k, v in sorted(seeds.items()):
        with open(os.path.join(d, k), 'wb') as f:
            f.write(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seed-structs', default=os.path.join(TOP, 'build-fuzz', 'seed_structs'))
    args = ap.parse_args()
    write('greeting', greeting())
    write('request', request())
    write('userpass', userpass())
    write('udp_header', udp_header())
    seeds = config()
    seeds.update(config_regressions(seeds))
    write('config', seeds)
    for t in ('hubmsg', 'auth_request', 'auth_reply'):
        write(t, {})
    if not os.access(args.seed_structs, os.X_OK):
        sys.exit('make_corpus.py: %s missing: make -f fuzz/fuzz.mk first' % args.seed_structs)
    subprocess.run([args.seed_structs, CORPUS], check=True)
    for t in sorted(os.listdir(CORPUS)):
        print('%-14s %3d seeds' % (t, len(os.listdir(os.path.join(CORPUS, t)))))


if __name__ == '__main__':
    main()
