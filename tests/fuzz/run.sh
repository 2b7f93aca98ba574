#!/bin/bash
# run.sh - run every libFuzzer target of a fuzz build for a bounded time.
#
#   tests/fuzz/run.sh BUILD SECONDS [NAME...]      (make fuzz, 90-fuzz.sh)
#
# Each BUILD/fuzz/fuzz_NAME runs for SECONDS on its seed corpus
# tests/fuzz/corpus/NAME (read only: new inputs go to BUILD/corpus/NAME,
# which later runs start from as well), with tests/fuzz/NAME.dict when
# there is one.  A crash, sanitizer report, leak or slow input (over 10 s)
# leaves the input in BUILD/crashes/ and makes the target "not ok"; after
# fixing the bug, copy that input into tests/fuzz/corpus/NAME/ so that
# every later run replays it.  Output is TAP, one line per target, with
# the number of inputs run; the exit status is 0 when every target ran
# clean.  The full libFuzzer output is in BUILD/logs/NAME.log.
set -u
cd "$(dirname "$0")/../.." || exit 1
build=${1:?usage: run.sh BUILD SECONDS [NAME...]}
secs=${2:?usage: run.sh BUILD SECONDS [NAME...]}
shift 2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in "$build"/fuzz/fuzz_*; do
		case $f in *.d|*.o) continue ;; esac
		[ -x "$f" ] && names+=("${f##*/fuzz_}")
	done
fi
mkdir -p "$build/crashes" "$build/logs"

n=0 failed=0
for name in "${names[@]}"; do
	n=$((n + 1))
	bin=$build/fuzz/fuzz_$name
	log=$build/logs/$name.log
	seeds=tests/fuzz/corpus/$name
	work=$build/corpus/$name
	opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
	    -print_final_stats=1 -artifact_prefix="$build/crashes/$name-")
	[ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="tests/fuzz/$name.dict")
	mkdir -p "$work"
	if [ ! -x "$bin" ]; then
		echo "not ok $n - $name: $bin was not built"
		failed=$((failed + 1))
		continue
	fi
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	    "$bin" "${opts[@]}" "$work" "$seeds" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		echo "ok $n - $name: ${secs} s, ${runs:-?} inputs, no crash"
	else
		failed=$((failed + 1))
		echo "not ok $n - $name: libFuzzer exited $rc (log: $log)"
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" |
		    head -8 | sed 's/^/#   /'
	fi
done
echo "1..$n"
[ "$failed" -eq 0 ] && [ "$n" -gt 0 ]
