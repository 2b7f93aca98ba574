#!/bin/bash
# sanitizer: skip (the fuzz build is its own ASan + UBSan build)
# 90-fuzz: a short libFuzzer run of every parser of outside input
# (tests/fuzz/): each target runs DENGON_FUZZ_SECONDS (default 10) on its
# seed corpus, every seed and every crash input kept there replayed first.
# One "ok" per target that ran that long without a crash, a sanitizer
# report or a leak.  The targets are built here (make fuzz-build: clang,
# build-fuzz/), so the plain `make check` needs nothing more; without
# clang every target is skipped.  `make fuzz FUZZ_SECONDS=N` runs longer.
set -u
cd "$(dirname "$0")/../.." || exit 1
secs=${DENGON_FUZZ_SECONDS:-10}

if ! command -v clang >/dev/null 2>&1; then
	echo "ok 1 - fuzz targets # SKIP clang is not installed (contrib/deps.sh installs it)"
	echo "1..1"
	exit 0
fi
# Called from make check: do not inherit its jobserver or -Werror.
log=$(mktemp)
if ! env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory \
    fuzz-build >"$log" 2>&1; then
	echo "not ok 1 - the fuzz targets build with clang"
	grep -E 'error|Error' "$log" | head -20 | sed 's/^/#   /'
	rm -f "$log"
	echo "1..1"
	exit 1
fi
mkdir -p build-fuzz/logs
mv "$log" build-fuzz/logs/build.log
exec tests/fuzz/run.sh build-fuzz "$secs"
