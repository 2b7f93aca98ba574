#!/bin/bash
# run.sh - run every test of one or two builds and print one summary line.
#
#   tests/run.sh PLAIN_BUILD SAN_BUILD    (either may be "-" to skip it)
#
# Unit tests are the cmocka programs in BUILD/tests/ (TAP output);
# integration tests are tests/integration/NN-*.sh (TAP output), run with
# DENGON_BIN=BUILD/bin.  With the sanitizer build, integration tests whose
# first lines carry "# sanitizer: skip" are left out (they are the slow,
# real-peer ones; TESTING.md allows the sanitizer pass to run the core).
# A test program that dies without reporting counts as one failure.  A
# skipped test ("ok N # SKIP") is counted as skipped, never as passed.
# The last line is "N passed, N failed" (and skipped, if any); the exit
# status is 0 only if nothing failed and something passed.
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)

plain=${1:--}
san=${2:--}
passed=0 failed=0 skipped=0
failures=()

# run_one LABEL LOGFILE COMMAND... - run a TAP producer, tally its lines.
run_one() {
	local label=$1 log=$2 rc p=0 f=0 s=0
	shift 2
	mkdir -p "$(dirname "$log")"
	"$@" >"$log" 2>&1 </dev/null
	rc=$?
	p=$(grep -E '^ok [0-9]+' "$log" | grep -vc '# SKIP')
	s=$(grep -E '^ok [0-9]+.*# SKIP' "$log" | wc -l)
	f=$(grep -cE '^not ok [0-9]+' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $label exited with status $rc" >>"$log"
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if [ "$f" -gt 0 ]; then
		failures+=("$label ($log)")
		printf '%-50s FAIL (%d passed, %d failed)\n' "$label" "$p" "$f"
		grep -E '^not ok|^# ' "$log" | head -40 | sed 's/^/    /'
	else
		printf '%-50s ok (%d passed%s)\n' "$label" "$p" \
		    "$([ "$s" -gt 0 ] && echo ", $s skipped")"
	fi
}

run_build() {
	local build=$1 kind=$2 t name
	[ "$build" = "-" ] && return
	if [ "$kind" = san ]; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	fi
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		CMOCKA_MESSAGE_OUTPUT=TAP run_one "[$kind] unit/$name" \
		    "$build/test-logs/unit-$name.log" "$t"
	done
	for t in tests/integration/[0-9][0-9]-*.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		if [ "$kind" = san ] && head -5 "$t" | grep -q '^# sanitizer: skip'; then
			continue
		fi
		DENGON_BIN="$top/$build/bin" DENGON_BUILD_KIND=$kind \
		    run_one "[$kind] integration/$name" \
		    "$build/test-logs/int-$name.log" bash "$t"
	done
	unset ASAN_OPTIONS UBSAN_OPTIONS
}

run_build "$plain" plain
run_build "$san" san

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$skipped skipped (not counted as passed)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
