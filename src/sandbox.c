/* sandbox.c: the seccomp filter of the unprivileged roles (workers, hubs). */
#include "sandbox.h"

#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

#ifdef HAVE_LIBSECCOMP
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

/* Sanitizer builds (--enable-sanitizers): LeakSanitizer stops the world
 * at exit from a thread that ptraces the process, and ASan reads
 * /proc/self/maps; those builds allow what that needs (see SANITIZER). */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

/* What both roles need: memory, time, signals, their sockets and pipes
 * (splice), syslog's socket, exit. Names unknown to this architecture
 * (open on arm64) are skipped. */
static const char *const common_calls[] = {
	"read", "write", "readv", "writev", "close", "lseek",
	"fstat", "newfstatat", "statx", "fcntl", "dup", "dup2", "dup3",
	"pipe", "pipe2", "splice", "tee",
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
	"clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday",
	"time", "clock_getres",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "exit", "exit_group", "futex", "set_robust_list",
	"rseq", "sched_yield", "restart_syscall", "getrandom",
	"getrlimit", "prlimit64", "setrlimit", "uname",
	"poll", "ppoll", "epoll_create1", "epoll_ctl", "epoll_wait",
	"epoll_pwait", "epoll_pwait2",
	"connect", "sendto", "sendmsg", "recvmsg", "recvfrom", "shutdown",
	"getsockopt", "setsockopt", "getsockname", "getpeername",
	NULL
};

/* A worker runs a session: accept, the commands' sockets (CONNECT,
 * BIND, UDP ASSOCIATE), datagram batches, the socket pair to an auth
 * helper, and getaddrinfo with NSS files and dns (read-only opens of
 * /etc/hosts, nsswitch.conf, gai.conf, resolv.conf and the NSS modules;
 * see socket_rules for the sockets it makes). */
static const char *const worker_calls[] = {
	"accept", "accept4", "bind", "listen", "recvmmsg", "sendmmsg",
	"socketpair",
	NULL
};

/* A hub relays parked sessions: epoll, splice, its channel (recvmsg),
 * its signalfd, and counts its open fds in /proc/self/fd. */
static const char *const hub_calls[] = {
	"signalfd4", "signalfd", "getdents64",
	NULL
};

#ifdef SANDBOX_SANITIZER
/* LeakSanitizer at exit (clone, ptrace, wait) and ASan's reading of
 * /proc/self/maps and its own symbolizer. */
static const char *const sanitizer_calls[] = {
	"clone", "clone3", "ptrace", "wait4", "waitid", "prctl",
	"sched_getaffinity", "readlink", "readlinkat", "getdents64", "getdents",
	"openat", "open", "process_vm_readv", "execve", "kill", "tgkill",
	"tkill", "mincore", "pread64", "unlink", "unlinkat",
	NULL
};
#endif

static void
add_rule(scmp_filter_ctx ctx, int nr, unsigned n, const struct scmp_arg_cmp *a)
{
	int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, a);

	if (rc != 0)
		fatalx("seccomp_rule_add %d: %s", nr, strerror(-rc));
}

static void
add_calls(scmp_filter_ctx ctx, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);

		if (nr != __NR_SCMP_ERROR)
			add_rule(ctx, nr, 0, NULL);
	}
}

/* A call allowed only when argument arg is value. */
static void
add_eq(scmp_filter_ctx ctx, const char *name, unsigned arg, scmp_datum_t value)
{
	struct scmp_arg_cmp a = SCMP_CMP(arg, SCMP_CMP_EQ, value);
	int nr = seccomp_syscall_resolve_name(name);

	if (nr != __NR_SCMP_ERROR)
		add_rule(ctx, nr, 1, &a);
}

/* Opens that cannot write or create (flags are argument flags_arg). */
static void
add_readonly_open(scmp_filter_ctx ctx, const char *name, unsigned flags_arg)
{
	struct scmp_arg_cmp a = SCMP_CMP(flags_arg, SCMP_CMP_MASKED_EQ,
	    O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND, 0);
	int nr = seccomp_syscall_resolve_name(name);

	if (nr != __NR_SCMP_ERROR)
		add_rule(ctx, nr, 1, &a);
}

/* socket(2) by domain: hubs only reach syslog (AF_UNIX); workers also
 * make IPv4 and IPv6 sockets (commands, DNS, getaddrinfo's sorting) and
 * the routing netlink socket getaddrinfo asks for the local addresses. */
static void
socket_rules(scmp_filter_ctx ctx, bool worker)
{
	struct scmp_arg_cmp nl[2] = {
		SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
		SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE),
	};

	add_eq(ctx, "socket", 0, AF_UNIX);
	if (!worker)
		return;
	add_eq(ctx, "socket", 0, AF_INET);
	add_eq(ctx, "socket", 0, AF_INET6);
	add_rule(ctx, SCMP_SYS(socket), 2, nl);
}

/* Calls limited to the process itself or to a few requests. */
static void
narrow_rules(scmp_filter_ctx ctx)
{
	pid_t self = getpid();

	/* Workers: /proc/sys/net/ipv4/ip_local_port_range (BIND), NSS
	 * files and modules; hubs: /proc/self/fd. */
	add_readonly_open(ctx, "openat", 2);
	add_readonly_open(ctx, "open", 1);

	add_eq(ctx, "prctl", 0, PR_SET_NAME);
	add_eq(ctx, "prctl", 0, PR_GET_DUMPABLE);
	add_eq(ctx, "kill", 0, (scmp_datum_t)self);	/* raise, abort */
	add_eq(ctx, "tgkill", 0, (scmp_datum_t)self);
	add_eq(ctx, "ioctl", 1, SIOCATMARK);	/* io.c: urgent data */
	add_eq(ctx, "ioctl", 1, FIONREAD);
	add_eq(ctx, "ioctl", 1, TCGETS);	/* isatty(stderr) in stdio */
}

#ifdef SANDBOX_TRACE
/* Development aid (CFLAGS=-DSANDBOX_TRACE): a forbidden call is trapped
 * and named, with its first three arguments, in
 * /tmp/socks5d-sandbox-trace.log (if it exists and the role's user may
 * write it; else on stderr) before the process exits 99, to build the
 * lists from a run of the whole suite. */
#include <signal.h>
#include <stdio.h>
#include <ucontext.h>

static int trace_fd = 2;

static void
sandbox_trap(int sig, siginfo_t *si, void *uc)
{
	char line[256], comm[32] = "";
	const ucontext_t *u = uc;
	int n;

	(void)prctl(PR_GET_NAME, comm);
	n = snprintf(line, sizeof(line),
	    "sandbox-trace: forbidden system call %d in pid %d (%s) args "
	    "%llx %llx %llx\n", si->si_syscall, (int)getpid(), comm,
	    (unsigned long long)u->uc_mcontext.gregs[REG_RDI],
	    (unsigned long long)u->uc_mcontext.gregs[REG_RSI],
	    (unsigned long long)u->uc_mcontext.gregs[REG_RDX]);
	(void)sig;
	(void)!write(trace_fd, line, (size_t)n);
	_exit(99);
}

static uint32_t
sandbox_default_action(void)
{
	struct sigaction sa = { .sa_sigaction = sandbox_trap,
	    .sa_flags = SA_SIGINFO };

	int fd = open("/tmp/socks5d-sandbox-trace.log", O_WRONLY | O_APPEND);

	if (fd != -1)
		trace_fd = fd;
	sigaction(SIGSYS, &sa, NULL);
	return SCMP_ACT_TRAP;
}
#else
static uint32_t
sandbox_default_action(void)
{
	return SCMP_ACT_KILL_PROCESS;
}
#endif

static const char *const *
role_calls(const char *role)
{
	if (strcmp(role, "worker") == 0)
		return worker_calls;
	if (strcmp(role, "hub") == 0)
		return hub_calls;
	fatalx("sandbox: no system call list for role %s", role);
}

/* Built with libseccomp, and the kernel has seccomp (PR_GET_SECCOMP
 * fails with EINVAL without CONFIG_SECCOMP). */
bool
sandbox_available(void)
{
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != -1;
}

void
sandbox_enter(const char *role)
{
	const char *const *calls = role_calls(role);
	scmp_filter_ctx ctx = seccomp_init(sandbox_default_action());
	int rc;

	if (ctx == NULL)
		fatalx("seccomp_init failed");
	add_calls(ctx, common_calls);
	add_calls(ctx, calls);
	socket_rules(ctx, calls == worker_calls);
	narrow_rules(ctx);
#ifdef SANDBOX_SANITIZER
	add_calls(ctx, sanitizer_calls);
#endif
	/* no_new_privs is set already (priv_drop); do not let libseccomp
	 * set it again or fail without it. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) != 0)
		fatalx("seccomp_attr_set: %s", strerror(-rc));
	if ((rc = seccomp_load(ctx)) != 0)
		fatalx("seccomp_load: %s", strerror(-rc));
	seccomp_release(ctx);
}
#else
bool
sandbox_available(void)
{
	return false;
}

void
sandbox_enter(const char *role)
{
	(void)role;
}
#endif

void
sandbox_test_hook(const char *role)
{
	const char *want = getenv("SOCKS5D_TEST_FORBIDDEN_CALL");

	if (want != NULL && strcmp(want, role) == 0)
		(void)syscall(SYS_personality, 0xffffffffUL);
}
