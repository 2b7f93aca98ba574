# lib.sh - helpers for the benchmarks (bash), sourced by bench/*.sh.
#
# Each benchmark works in its own temporary directory ($T, removed at
# exit unless KEEP=1) with its own dengon configuration, and uses the real
# programs of $DENGON_BIN (default: build/bin) against real peers started
# with tests/peers.sh (smtp-sink) and, for the comparisons, a throwaway
# Postfix instance with its own configuration directory under $T.  Every
# peer, daemon and Postfix instance started here is stopped at exit, by
# its pid or by `postfix -c DIR stop`.  Everything listens on 127.0.0.1.
#
# Benchmarks print figures; they never fail on a number.  They exit non-0
# only when they could not measure (a peer did not start, a timeout).

set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
DENGON_BIN=${DENGON_BIN:-$TOP/build/bin}
PY=/usr/bin/python3
T=""
_b_cleanup=()

# peers.sh registers its own cleanup through t_cleanup_add.
t_cleanup_add() { _b_cleanup+=("$*"); }

_b_exit() {
	local i
	for ((i = ${#_b_cleanup[@]} - 1; i >= 0; i--)); do
		eval "${_b_cleanup[i]}" >/dev/null 2>&1
	done
	[ -n "$T" ] && [ -z "${KEEP:-}" ] && rm -rf "$T"
}
trap _b_exit EXIT
trap 'exit 130' INT TERM

# shellcheck source=../tests/peers.sh
. "$TOP/tests/peers.sh"

die() { echo "bench: $*" >&2; exit 1; }

# now - the wall clock in seconds, with microseconds.
now() { echo "$EPOCHREALTIME"; }

# calc EXPR - evaluate a Python arithmetic expression.
calc() { "$PY" -c "print($1)"; }

# stats - read numbers (one per line) and print "median p95 min max n".
stats() {
	"$PY" -c '
import sys, statistics
v = sorted(float(x) for x in sys.stdin if x.strip())
if not v:
    print("- - - - 0"); sys.exit()
p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
print("%.1f %.1f %.1f %.1f %d" % (statistics.median(v), p95, v[0], v[-1], len(v)))'
}

# b_tmp - create $T, this benchmark's temporary directory (on disk: the
# queues of dengon and Postfix live there, fsync and all), and $S, where
# the sinks dump what they receive: on tmpfs (/dev/shm) when there is one,
# so that the sink's file creation does not become what is measured.
b_tmp() {
	T=$(mktemp -d /tmp/dengon-bench.XXXXXX)
	chmod 755 "$T"
	if [ -w /dev/shm ]; then
		S=$(mktemp -d /dev/shm/dengon-bench-sink.XXXXXX)
		t_cleanup_add "[ -z \"\${KEEP:-}\" ] && rm -rf '$S'"
	else
		S=$T/sinks
	fi
	chmod 755 "$S"
}

# b_relay_conf LANGUAGE - the [relay] section of a benchmark's
# configuration, written afresh to $T/dengon.conf.  Call b_tmp first.
b_relay_conf() {
	cat >"$T/dengon.conf" <<CONF
[relay]
name           = bench-relay
queue          = queue.db
secret_file    = secret.key
socket         = dengon.sock
spool          = spool
contacts       = contacts.csv
default_policy = standard
language       = $1
timezone       = Asia/Tokyo
country_code   = 81
log            = stderr
group          = $(id -gn)
retry_min      = ${BENCH_RETRY_MIN:-30s}
retry_max      = ${BENCH_RETRY_MAX:-30m}
CONF
}

# b_setup PORT [CONC] - a dengon configuration in $T: a mail channel to
# 127.0.0.1:PORT (plain SMTP, CONC sessions), one policy, logs to
# $T/dengond.log.  Call b_tmp first.
b_setup() {
	local port=$1 conc=${2:-${BENCH_CONCURRENCY:-20}}
	b_relay_conf ja
	cat >>"$T/dengon.conf" <<CONF

[channel mail]
type           = smtp
host           = 127.0.0.1
port           = $port
tls            = none
from           = Bench Relay <alerts@relay.example.jp>
concurrency    = $conc

[policy standard]
steps          = mail
repeat         = 1h
expire         = 24h
CONF
}

# b_contacts N - $T/contacts.csv with N recipients r000001.. (mail only),
# in group "members"; then init and import.
b_contacts() {
	awk -v n="$1" 'BEGIN {
		print "id,name,org,groups,mail"
		for (i = 1; i <= n; i++)
			printf "r%06d,受信者 %d,事業者%d,members,r%06d@example.jp\n",
			    i, i, i, i
	}' >"$T/contacts.csv"
	dg init >/dev/null || die "dengon init failed: $(cat "$T/err")"
	dg contacts import >/dev/null ||
	    die "contacts import failed: $(head -3 "$T/err")"
}

# dg ARGS... - the CLI on this benchmark's configuration; stdout to
# $T/out, stderr to $T/err.
dg() {
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" "$@" >"$T/out" 2>"$T/err"
}

# d_start - dengond in the foreground (-d), in the background; $DPID.
d_start() {
	rm -f "$T/dengon.sock"
	"$DENGON_BIN/dengond" -c "$T/dengon.conf" -d >>"$T/dengond.log" 2>&1 &
	DPID=$!
	t_cleanup_add "kill -9 $DPID"
	wait_for 10 test -S "$T/dengon.sock" || die "dengond did not start"
}

# d_stop - SIGTERM dengond and wait for it.
d_stop() {
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
}

# wait_for SECONDS COMMAND... - poll COMMAND every 10 ms.
wait_for() {
	local end
	end=$(calc "$(now) + $1")
	shift
	until "$@" 2>/dev/null; do
		[[ $(now) < $end ]] || return 1
		sleep 0.01
	done
}

# files_ge DIR N - at least N files in DIR.
files_ge() { [ "$(find "$1" -type f | wc -l)" -ge "$2" ]; }

# mtimes DIR - modification times of DIR's files (s.ns), sorted.
mtimes() { find "$1" -type f -printf '%T@\n' | sort -n; }

# watch_start DIR LOG - record, in LOG, "TIME NAME" for every file DIR's
# sink finishes writing (inotify IN_CLOSE_WRITE, the clock read as the
# event arrives, to the microsecond).  File mtimes would do for seconds,
# but the kernel stamps them with a coarse clock (a jiffy, up to 4 ms).
watch_start() {
	mkdir -p "$1"
	"$PY" -u - "$1" >"$2" 2>/dev/null <<'PYEOF' &
import ctypes, os, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init()
if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x8) < 0:
    sys.exit(1)
print("# watching")
while True:
    buf = os.read(fd, 65536)
    now = time.time()
    i = 0
    while i < len(buf):
        wd, mask, cookie, n = struct.unpack_from("iIII", buf, i)
        name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode()
        print("%.6f %s" % (now, name))
        i += 16 + n
PYEOF
	t_cleanup_add "kill $!"
	wait_for 5 grep -q '^# watching' "$2"
}

# arrivals LOG - how many files LOG has seen.
arrivals() { grep -vc '^#' "$1"; }

# nth_arrival LOG N [SECONDS] - the time of the N-th file in LOG, once it
# is there (within SECONDS, default 30).
nth_arrival() {
	wait_for "${3:-30}" arrivals_ge "$1" "$2" || return 1
	grep -v '^#' "$1" | sed -n "$2{s/ .*//;p}"
}
arrivals_ge() { [ "$(arrivals "$1")" -ge "$2" ]; }

# sink_start DIR [PORT] - smtp-sink dumping each mail to DIR; echoes the
# port.  With PORT, listen there (to bring a "down" peer up).
sink_start() {
	local dir=$1 port=${2:-} user=()
	if [ -z "$port" ]; then
		peer_smtp_sink "$dir"
		return
	fi
	mkdir -p "$dir" "$T/peers"
	[ "$(id -u)" = 0 ] && { user=(-u nobody); chmod 0777 "$dir"; }
	timeout "$PEER_LIFETIME" "$PEER_SMTP_SINK" "${user[@]}" -c \
	    -d "$dir/%Y%m%d%H%M%S." "127.0.0.1:$port" 100 \
	    >"$T/peers/smtp-sink-$port.log" 2>&1 </dev/null &
	echo $! >"$T/peers/smtp-sink-$port.pid"
	peer_wait_port "$port" || return 1
	echo "$port"
}

# ---- a throwaway Postfix instance -------------------------------------

# pf_setup DIR RELAYPORT - a Postfix instance with its configuration in
# DIR/conf and its queue in DIR/queue that relays everything to
# [127.0.0.1]:RELAYPORT.  It listens on nothing (no smtpd: mail comes in
# by `sendmail -C DIR/conf`, through postdrop and pickup), delivers
# nothing locally, logs to DIR/maillog, and runs no chroot.  Concurrency
# and connection caching are Postfix's defaults (20 per destination).
pf_setup() {
	local dir=$1 port=$2
	mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
	chown postfix "$dir/data"
	chmod 755 "$dir"
	cat >"$dir/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.localdomain
mydomain = localdomain
myorigin = \$myhostname
mydestination =
relay_domains =
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [127.0.0.1]:$port
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is disabled
maillog_file_prefixes = $dir
maillog_file = $dir/maillog
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
CF
	peer_postfix_master "$dir/conf/master.cf"	# no listener
}

# pf_start DIR / pf_stop DIR
pf_start() {
	local dir=$1
	t_cleanup_add "pf_stop '$dir'"
	postfix -c "$dir/conf" check >>"$dir/start.log" 2>&1 &&
	    postfix -c "$dir/conf" start >>"$dir/start.log" 2>&1 ||
	    { cat "$dir/start.log" >&2; return 1; }
	wait_for 10 test -S "$dir/queue/public/pickup"
}
pf_stop() {
	postfix -c "$1/conf" stop >/dev/null 2>&1
	# postfix stop returns before its processes are gone.
	wait_for 10 pf_gone "$1" || postfix -c "$1/conf" abort >/dev/null 2>&1
}
pf_gone() { ! [ -f "$1/queue/pid/master.pid" ] ||
    ! kill -0 "$(tr -d ' ' <"$1/queue/pid/master.pid")" 2>/dev/null; }

# pf_send DIR FILE RCPT - submit one message file.
pf_send() {
	/usr/sbin/sendmail -C "$1/conf" -f alerts@relay.example.jp -- "$3" <"$2"
}

# sink_messages_to DIR OUTDIR - turn smtp-sink dumps back into plain
# messages (its X-Client/X-Helo/X-Mail/X-Rcpt lines removed) named by
# recipient, so that Postfix can send exactly what dengon sent.
sink_messages_to() {
	"$PY" - "$1" "$2" <<'PYEOF'
import os, re, sys
src, dst = sys.argv[1:]
os.makedirs(dst, exist_ok=True)
for name in os.listdir(src):
    data = open(os.path.join(src, name), "rb").read()
    lines = data.split(b"\n")
    rcpt = None
    while lines and re.match(rb"X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): ", lines[0]):
        m = re.match(rb"X-Rcpt-Args: <([^>]*)>", lines[0])
        if m:
            rcpt = m.group(1).decode()
        lines.pop(0)
    if rcpt:
        open(os.path.join(dst, rcpt), "wb").write(b"\n".join(lines).replace(b"\r\n", b"\n"))
PYEOF
}

# machine - one line describing this machine.
machine() {
	printf '%s, %s cores, %s MB RAM, %s' "$(uname -srm)" "$(nproc)" \
	    "$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)" \
	    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
}
