# lib.sh - helpers for the integration tests (bash, TAP output).
#
# A test script sources this file, calls t_setup, then makes assertions;
# each assertion prints one "ok N - ..." or "not ok N - ..." line.  Every
# test works in its own temporary directory ($T), removed at exit, with its
# own configuration ($T/dengon.conf), and runs the real programs from
# $DENGON_BIN (the build under test).

set -u
: "${DENGON_BIN:?DENGON_BIN must name the directory of the built programs}"
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
_t_n=0
_t_failed=0
T=""
_t_cleanup=()

t_cleanup_add() { _t_cleanup+=("$*"); }

_t_exit() {
	local c
	for c in "${_t_cleanup[@]}"; do eval "$c" >/dev/null 2>&1; done
	# The daemon's own sanitizer reports go to its log: they fail the test.
	if [ -n "$T" ] && [ -f "$T/dengond.log" ] && grep -qE \
	    'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/dengond.log"; then
		_t_n=$((_t_n + 1))
		echo "not ok $_t_n - dengond reported a sanitizer error"
		grep -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
		    "$T/dengond.log" | head -40 | sed 's/^/#   /'
	fi
	[ -n "$T" ] && [ -z "${KEEP:-}" ] && rm -rf "$T"
	echo "1..$_t_n"
}
trap _t_exit EXIT

# ok DESC COMMAND... - passes if COMMAND exits 0.
ok() {
	local desc=$1
	shift
	_t_n=$((_t_n + 1))
	if "$@"; then
		echo "ok $_t_n - $desc"
	else
		echo "not ok $_t_n - $desc"
		_t_failed=$((_t_failed + 1))
	fi
}

# is GOT EXPECTED DESC
is() {
	_t_n=$((_t_n + 1))
	if [ "$1" = "$2" ]; then
		echo "ok $_t_n - $3"
	else
		echo "not ok $_t_n - $3"
		echo "#   got:      '$1'"
		echo "#   expected: '$2'"
		_t_failed=$((_t_failed + 1))
	fi
}

# like GOT REGEX DESC
like() {
	_t_n=$((_t_n + 1))
	if [[ $1 =~ $2 ]]; then
		echo "ok $_t_n - $3"
	else
		echo "not ok $_t_n - $3"
		echo "#   got:      '$1'"
		echo "#   expected to match: '$2'"
		_t_failed=$((_t_failed + 1))
	fi
}

# unlike GOT REGEX DESC
unlike() {
	_t_n=$((_t_n + 1))
	if ! [[ $1 =~ $2 ]]; then
		echo "ok $_t_n - $3"
	else
		echo "not ok $_t_n - $3"
		echo "#   got:      '$1'"
		echo "#   expected not to match: '$2'"
		_t_failed=$((_t_failed + 1))
	fi
}

# skip DESC WHY
skip() {
	_t_n=$((_t_n + 1))
	echo "ok $_t_n - $1 # SKIP $2"
}

# dg ARGS... - run the CLI on this test's configuration.  Output goes to
# $T/out and $T/err; the exit status is in $rc (and returned).
dg() {
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	return $rc
}

# exits CODE DESC ARGS... - dg ARGS and check its exit status.
exits() {
	local want=$1 desc=$2
	shift 2
	dg "$@"
	is "$rc" "$want" "$desc (exit $want)"
	if [ "$rc" != "$want" ]; then
		sed 's/^/#   stderr: /' "$T/err" | head -10
	fi
}

# json EXPR - evaluate a Python expression over the JSON in $T/out (as d).
json() {
	"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
	    "$T/out" "$1"
}

# t_setup - a temporary directory with a configuration using only relative
# paths, a mail channel and a policy; the group is the caller's own.
t_setup() {
	T=$(mktemp -d /tmp/dengon-test.XXXXXX)
	chmod 755 "$T"
	cat >"$T/dengon.conf" <<CONF
[relay]
name           = test-relay
queue          = queue.db
secret_file    = secret.key
socket         = dengon.sock
spool          = spool
contacts       = contacts.csv
default_policy = standard
language       = ja
timezone       = Asia/Tokyo
country_code   = 81
log            = stderr
group          = $(id -gn)

[channel mail]
type           = smtp
host           = 127.0.0.1
port           = 2525
tls            = none
from           = Test Relay <alerts@relay.example.jp>

[policy standard]
steps          = mail
repeat         = 1h
expire         = 24h
CONF
}

# t_contacts N - write $T/contacts.csv with N recipients r0001..rNNNN, each
# with mail and sms, in groups "all-members" and "even"/"odd".
t_contacts() {
	awk -v n="$1" 'BEGIN {
		print "id,name,org,groups,mail,sms"
		for (i = 1; i <= n; i++)
			printf "r%04d,受信者 %d,事業者%d,members;%s,r%04d@example.jp,090-%04d-%04d\n",
			    i, i, i, (i % 2 ? "odd" : "even"), i, int(i / 10000), i % 10000
	}' >"$T/contacts.csv"
}

# sql QUERY - run a query on the test's queue with the sqlite3 shell.
sql() { sqlite3 -batch -noheader "$T/queue.db" "$1"; }

# ---- the daemon ---------------------------------------------------------

# d_start - start dengond (-d: foreground, log to stderr) in the
# background on this test's configuration; $DPID is its pid, its log goes
# to $T/dengond.log.  Waits until the control socket answers.
d_start() {
	rm -f "$T/dengon.sock"
	"$DENGON_BIN/dengond" -c "$T/dengon.conf" -d >>"$T/dengond.log" 2>&1 &
	DPID=$!
	t_cleanup_add "kill -9 $DPID"
	wait_until 10 test -S "$T/dengon.sock"
}

# d_stop - SIGTERM and wait; the exit status is in $rc.
d_stop() {
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID"
	rc=$?
}

# wait_until SECONDS COMMAND... - run COMMAND every 0.1 s until it
# succeeds (0) or SECONDS pass (1).
wait_until() {
	local n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" 2>/dev/null && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# count_state ALERT STATE - deliveries of ALERT in STATE.
state_of() { sql "SELECT state FROM delivery WHERE alert='$1' AND recipient='$2'"; }
count_state() { sql "SELECT count(*) FROM delivery WHERE alert='$1' AND state='$2'"; }

# state_is ALERT STATE N - true when N deliveries of ALERT are in STATE.
state_is() { [ "$(count_state "$1" "$2")" = "$3" ]; }

# set_key SECTION KEY VALUE - set (or add) a key in $T/dengon.conf.
set_key() {
	"$PY" - "$T/dengon.conf" "$1" "$2" "$3" <<'PYEOF'
import sys
path, section, key, value = sys.argv[1:]
lines = open(path).read().split("\n")
out, cur, done = [], None, False
for i, l in enumerate(lines):
    s = l.strip()
    if s.startswith("["):
        if cur == section and not done:
            out.append(f"{key} = {value}"); done = True
        cur = s[1:-1]
    elif cur == section and s.split("=")[0].strip() == key:
        out.append(f"{key} = {value}"); done = True; continue
    out.append(l)
if not done:
    if cur != section:
        out.append(f"[{section}]")
    out.append(f"{key} = {value}")
open(path, "w").write("\n".join(out) + "\n")
PYEOF
}

# maildir_count DIR - messages stored in a Maildir.
maildir_count() { find "$1/new" -type f 2>/dev/null | wc -l; }

# attempts_ge ALERT OUTCOME N - true when at least N attempts of ALERT's
# deliveries ended in OUTCOME (for wait_until: evaluated on each call).
attempts_ge() {
	[ "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$1' AND a.outcome = '$2'")" -ge "$3" ]
}

# maildir_ge DIR N - true when the Maildir holds at least N messages.
maildir_ge() { [ "$(maildir_count "$1")" -ge "$2" ]; }
