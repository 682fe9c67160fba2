#!/usr/bin/env bash
# run.sh: builds the libFuzzer targets (fuzz/fuzz.mk, in build-fuzz/) and
# runs each for SECONDS (at most RUNS inputs when given), from its seeds
# (fuzz/corpus/TARGET) and what earlier runs found (build-fuzz/corpus/TARGET).
#   fuzz/run.sh SECONDS [RUNS [TARGET...]]
# Prints a PASS line per target (executions, seconds, corpus size), a FAIL
# line with the crashing input's path and its stack for a crash, then
# "N passed, M failed". Exit status 0 when every target ran clean.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
out=build-fuzz
secs=${1:-60}
runs=${2:-0}
shift $(($# > 2 ? 2 : $#))
targets=("$@")
((${#targets[@]})) || targets=(greeting userpass request udp_header hubmsg
	auth_request auth_reply config)

declare -A dict=([greeting]=socks5 [userpass]=socks5 [request]=socks5
	[udp_header]=socks5 [hubmsg]=hubmsg [auth_request]=auth
	[auth_reply]=auth [config]=config)

mkdir -p "$out"
if ! make -s -f fuzz/fuzz.mk O="$out" -j"$(nproc 2>/dev/null || echo 2)" >"$out/make.log" 2>&1; then
	cat "$out/make.log"
	printf 'FAIL build: make -f fuzz/fuzz.mk (above)\n0 passed, 1 failed\n'
	exit 1
fi

# libconfig 1.5's own leaks (fuzz/lsan.supp); leaks are failures otherwise.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$top/fuzz/lsan.supp
pass=0 fail=0
for t in "${targets[@]}"; do
	bin=$out/fuzz_$t
	[[ -x $bin ]] || { printf 'FAIL %s: no target %s\n' "$t" "$bin"; fail=$((fail + 1)); continue; }
	mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
	log=$out/$t.log
	opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$t/"
		-dict="fuzz/${dict[$t]}.dict")
	((runs > 0)) && opts+=(-runs="$runs")
	# The config target writes its two files under TMPDIR.
	TMPDIR=$top/$out "$bin" "${opts[@]}" "$out/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	took=$(sed -n 's/.* DONE .*//p; s/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	if ((rc == 0)); then
		printf 'PASS %-13s %10s execs %4ss corpus %s\n' "$t" "${execs:-?}" \
			"${took:-$secs}" "$(ls "$out/corpus/$t" | wc -l)"
		pass=$((pass + 1))
	else
		crash=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -n 1)
		printf 'FAIL %-13s exit %d after %s execs: input %s (log %s)\n' "$t" "$rc" \
			"${execs:-?}" "${crash:-none saved}" "$log"
		# The report: the property or sanitizer message and its stack.
		grep -E -A40 'property failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log" |
			grep -vE '^(MS:|artifact_prefix|Base64)' | head -n 60
		fail=$((fail + 1))
	fi
done
printf '%d passed, %d failed\n' "$pass" "$fail"
((fail == 0))
