"""Real PAM for the tests: libpam with pam_wrapper (Debian libpam-wrapper),
a service directory and a pam_matrix password file of the test's own, so
that no system user or /etc/pam.d file is touched."""

import os
import stat
import subprocess
import tempfile

PAM_WRAPPER = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"
PAM_MATRIX = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"
PAM_SECURITY = "/usr/lib/x86_64-linux-gnu/security"
SERVICE = "socks5d"


def daemon_has_asan(daemon):
    """pam_wrapper dlopens libpam with RTLD_DEEPBIND, which AddressSanitizer
    refuses: a sanitizer build gets the test's own /etc/pam.d instead."""
    r = subprocess.run(["ldd", daemon], capture_output=True, text=True)
    return "libasan" in r.stdout


_etc_pam = None


def namespace_pam_dir():
    """A directory mounted over /etc/pam.d in the test runner's own mount
    namespace (run.py: unshare --mount), once per run: the real libpam of
    the daemon reads our service file there and the host's is untouched."""
    global _etc_pam
    if _etc_pam is None:
        d = tempfile.mkdtemp(prefix="socks5d-pam.d-")
        subprocess.run(["mount", "--bind", d, "/etc/pam.d"], check=True)
        _etc_pam = d
    return _etc_pam


def available(daemon):
    """None, or why the PAM tests cannot run here."""
    if not (os.path.exists(PAM_WRAPPER) and os.path.exists(PAM_MATRIX)):
        return "pam_wrapper (Debian libpam-wrapper) is not installed"
    if daemon_has_asan(daemon) and os.environ.get("SOCKS5D_IT_NETNS") != "1":
        return "a sanitizer build needs the test's own namespace for /etc/pam.d"
    return None


class PamFiles:
    """tmp/pam.d/socks5d and tmp/passdb. users: {name: (password, service)};
    a user whose service is not SERVICE passes the auth stage and fails the
    account stage (pam_matrix's account check), like an expired account.
    delay_us: pam_faildelay's delay, the real module first in the stack.
    hang_user: a user for whom pam_exec runs a script that sleeps (a
    directory server that does not answer)."""

    def __init__(self, tmp, users, delay_us=0, hang_user=None, daemon=None):
        self.tmp = tmp
        self.wrapper = daemon is None or not daemon_has_asan(daemon)
        self.dir = os.path.join(tmp, "pam.d") if self.wrapper else namespace_pam_dir()
        self.passdb = os.path.join(tmp, "passdb")
        self.hang = os.path.join(tmp, "hang.sh")
        self.runs = os.path.join(tmp, "pam-runs")  # a line per auth stack run
        os.makedirs(self.dir, exist_ok=True)
        self.write_users(users)
        lines = []
        if delay_us:
            lines.append(f"auth required {PAM_SECURITY}/pam_faildelay.so delay={delay_us}")
        with open(self.hang, "w") as f:
            f.write(f'#!/bin/sh\necho "$PAM_USER" >> {self.runs}\n'
                    f'[ "$PAM_USER" = "{hang_user or ""}" ] && exec sleep 60\nexit 0\n')
        os.chmod(self.hang, stat.S_IRWXU)
        lines.append(f"auth required {PAM_SECURITY}/pam_exec.so quiet {self.hang}")
        lines.append(f"auth required {PAM_MATRIX} passdb={self.passdb}")
        lines.append(f"account required {PAM_MATRIX} passdb={self.passdb}")
        with open(os.path.join(self.dir, SERVICE), "w") as f:
            f.write("\n".join(lines) + "\n")

    def pam_runs(self):
        """How many times the auth stack ran."""
        try:
            with open(self.runs) as f:
                return len(f.read().splitlines())
        except FileNotFoundError:
            return 0

    def write_users(self, users):
        tmp = self.passdb + ".new"
        with open(tmp, "w") as f:
            for name, (password, service) in users.items():
                f.write(f"{name}:{password}:{service}\n")
        os.rename(tmp, self.passdb)

    def env(self):
        """The daemon's environment: pam_wrapper preloaded, or nothing when
        the service file is in the namespace's /etc/pam.d."""
        if not self.wrapper:
            return {}
        return {
            "LD_PRELOAD": PAM_WRAPPER,
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.dir,
        }
