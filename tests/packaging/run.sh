#!/bin/bash
# tests/packaging/run.sh: the shipped files as a distribution uses them.
# Man pages lint clean; the logrotate file parses; the Debian package builds
# from the tracked files with no lintian error and no warning we could fix;
# it installs, its configuration passes -t, the installed daemon serves curl
# (debian/tests/relay, the autopkgtest), and a purge leaves nothing but the
# system user (purged also when a step fails); rpmbuild -bb builds the RPM.
# Needs root for the install step (skipped otherwise, and when a socks5d
# package is already installed: it is not ours to replace).
# Prints PASS/FAIL/SKIP lines, then "N passed, N failed, N skipped".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
installed_by_us=0
cleanup() {
	if ((installed_by_us)); then
		env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q socks5d >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

result() { # result NAME STATUS [detail file]
	case $2 in
	0) printf 'PASS    %s\n' "$1"; pass=$((pass + 1)) ;;
	77) printf 'SKIP    %s: %s\n' "$1" "$(tail -n 1 "$3")"; skip=$((skip + 1)) ;;
	*) printf 'FAIL    %s\n' "$1"; sed 's/^/        /' "$3" | tail -n 40
	   fail=$((fail + 1)) ;;
	esac
}

check() { # check NAME FUNCTION: runs it with its output kept aside
	local out=$tmp/$1.out rc
	"$2" >"$out" 2>&1
	rc=$?
	result "$1" "$rc" "$out"
}

man_pages() {
	local page err=0
	for page in doc/socks5d.8 doc/socks5d.conf.5; do
		man --warnings -l "$page" >/dev/null 2>"$tmp/man.err"
		groff -man -ww -z "$page" 2>>"$tmp/man.err"
		if [[ -s $tmp/man.err ]]; then
			echo "$page:"; cat "$tmp/man.err"; err=1
		fi
	done
	return $err
}

logrotate_file() {
	logrotate -d -s "$tmp/logrotate.state" packaging/logrotate/socks5d >"$tmp/lr" 2>&1
	local rc=$?
	cat "$tmp/lr"
	((rc == 0)) && ! grep -qi '^error' "$tmp/lr"
}

# Warnings that no change of ours can remove (listed in the closing note).
LINTIAN_ACCEPTED='initial-upload-closes-no-bugs'

deb_build() {
	"$top/dev" deb || return 1
	if grep -E '^[EW]: ' build-deb/lintian.txt | grep -vE "$LINTIAN_ACCEPTED"; then
		echo "lintian: errors or warnings above"
		return 1
	fi
}

deb_install_serve_purge() {
	local deb
	if ((EUID != 0)); then echo "not root: cannot install"; return 77; fi
	if dpkg-query -W -f='${Status}' socks5d 2>/dev/null | grep -q 'ok installed'; then
		echo "a socks5d package is already installed here: not replacing it"
		return 77
	fi
	deb=$(ls build-deb/socks5d_*.deb 2>/dev/null | head -n 1)
	[[ -n $deb ]] || { echo "no .deb (deb-build failed)"; return 1; }
	installed_by_us=1
	env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$deb" || return 1
	sh packaging/debian/tests/relay || return 1
	if command -v systemd-analyze >/dev/null; then
		systemd-analyze verify /lib/systemd/system/socks5d.service || return 1
	fi
	env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q socks5d || return 1
	installed_by_us=0
	local left=0 f
	for f in /usr/sbin/socks5d /etc/socks5d /etc/pam.d/socks5d \
	    /lib/systemd/system/socks5d.service /etc/logrotate.d/socks5d \
	    /etc/rsyslog.d/49-socks5d.conf /usr/share/man/man8/socks5d.8.gz; do
		[[ -e $f ]] && { echo "left after purge: $f"; left=1; }
	done
	getent passwd socks5d >/dev/null || { echo "the system user is gone (it must stay)"; left=1; }
	return $left
}

rpm_build() {
	local top_rpm=$tmp/rpmbuild rpmfile
	mkdir -p "$top_rpm/SOURCES"
	make -s -C build dist >"$tmp/dist.log" 2>&1 || { cat "$tmp/dist.log"; return 1; }
	mv build/socks5d-*.tar.gz "$top_rpm/SOURCES/"
	# --nodeps: this is a Debian machine, rpm's database knows no package.
	rpmbuild -bb --nodeps --define "_topdir $top_rpm" packaging/rpm/socks5d.spec \
		>"$tmp/rpm.log" 2>&1 || { tail -n 40 "$tmp/rpm.log"; return 1; }
	rpmfile=$(ls "$top_rpm"/RPMS/*/socks5d-*.rpm 2>/dev/null | head -n 1)
	[[ -n $rpmfile ]] || { echo "no .rpm written"; return 1; }
	rpm -qlp "$rpmfile" >"$tmp/rpm.files" 2>/dev/null
	grep -qx /usr/sbin/socks5d "$tmp/rpm.files" &&
		grep -qx /usr/lib/systemd/system/socks5d.service "$tmp/rpm.files" ||
		{ echo "missing files in $rpmfile:"; cat "$tmp/rpm.files"; return 1; }
}

check man-pages man_pages
check logrotate logrotate_file
check deb-build-lintian deb_build
check deb-install-serve-purge deb_install_serve_purge
check rpmbuild rpm_build
printf '%d passed, %d failed, %d skipped\n' "$pass" "$fail" "$skip"
((fail == 0))
