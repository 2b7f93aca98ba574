# peers.sh - real peers for the integration tests (bash), sourced after
# tests/lib.sh and used after t_setup (everything lives under $T).
#
# Each peer_* function that starts a program runs it on 127.0.0.1 on a
# free port under `timeout $PEER_LIFETIME` (a hard limit, 600 s by
# default), writes its pid to $T/peers/NAME.pid and its output to
# $T/peers/NAME.log, waits until the port listens, and echoes the port.
# Every peer is stopped (by its pid) when the test exits.  The functions
# work inside $(...): nothing is kept in shell variables.
#
#   peer_free_port                  a free TCP port on 127.0.0.1
#   peer_wait_port PORT [SECONDS]   wait until something listens on PORT
#   peer_ca                         test CA and server certificates in
#                                   $T/tls: ca.pem; good.{pem,key} for
#                                   127.0.0.1 and localhost; wrong.{pem,key}
#                                   for wrong.example.net; echoes the folder
#   peer_aiosmtpd DIR [--tls [good|wrong]]
#                                   aiosmtpd storing mail in Maildir DIR;
#                                   with --tls it offers and requires STARTTLS
#   peer_smtp_sink DIR [OPTIONS...] Postfix's smtp-sink dumping each mail to
#                                   DIR/<time>.<hex> (with X-Mail-Args and
#                                   X-Rcpt-Args), with smtp-sink's fault
#                                   options: -r CMD 4xx, -f CMD 5xx, -q CMD
#                                   disconnect, -Q CMD 421 (see smtp-sink(1))
#   peer_smtp_sink_sessions PORT    sessions smtp-sink has counted so far
#   peer_smtpd_auth DIR USER PASSWORD_FILE
#                                   aiosmtpd with STARTTLS (good cert) and
#                                   AUTH required (tests/tools/smtpd_auth.py);
#                                   AUTH attempts logged to DIR.auth

PEER_LIFETIME=${PEER_LIFETIME:-600}
PEER_PY=${PEER_PY:-/usr/bin/python3}
PEER_SMTP_SINK=${PEER_SMTP_SINK:-/usr/sbin/smtp-sink}

# Stop every peer this test started (registered once, run at exit).
_peer_stop_all() {
	local f pid
	[ -n "${T:-}" ] && [ -d "$T/peers" ] || return 0
	for f in "$T"/peers/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
	done
	sleep 0.2
}
t_cleanup_add _peer_stop_all

# _peer_start NAME COMMAND... - run COMMAND in the background, limited in
# time, its pid in $T/peers/NAME.pid.
_peer_start() {
	local name=$1
	shift
	: "${T:?peers.sh: call t_setup first}"
	mkdir -p "$T/peers"
	timeout "$PEER_LIFETIME" "$@" >"$T/peers/$name.log" 2>&1 </dev/null &
	echo $! >"$T/peers/$name.pid"
}

peer_free_port() {
	"$PEER_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Listening sockets are read from /proc (state 0A): connecting to test
# would count as a session on the peer.
peer_wait_port() {
	local port=$1 tries=$(( ${2:-10} * 10 )) hex
	hex=$(printf '%04X' "$port")
	while [ "$tries" -gt 0 ]; do
		if awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p \
		    { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6
		then
			return 0
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	echo "# peers.sh: nothing listens on port $port" >&2
	return 1
}

# _peer_cert NAME CN SAN - a server certificate signed by the test CA.
_peer_cert() {
	local d=$T/tls name=$1 cn=$2 san=$3
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$d/$name.key" -out "$d/$name.csr" \
	    -subj "/CN=$cn" 2>/dev/null || return 1
	printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\n%s\n%s\n' \
	    "$san" "keyUsage=critical,digitalSignature" \
	    "extendedKeyUsage=serverAuth" >"$d/$name.ext"
	openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" \
	    -CAkey "$d/ca.key" -CAcreateserial -days 2 \
	    -extfile "$d/$name.ext" -out "$d/$name.pem" 2>/dev/null
}

peer_ca() {
	local d=$T/tls
	if [ ! -f "$d/wrong.pem" ]; then
		mkdir -p "$d"
		openssl req -x509 -newkey ec \
		    -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		    -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
		    -subj "/CN=dengon test CA" \
		    -addext "basicConstraints=critical,CA:TRUE" \
		    -addext "keyUsage=critical,keyCertSign,cRLSign" \
		    2>/dev/null || return 1
		_peer_cert good localhost "IP:127.0.0.1,DNS:localhost" || return 1
		_peer_cert wrong wrong.example.net "DNS:wrong.example.net" ||
		    return 1
		chmod 0644 "$d"/*.key	# peers may run as nobody
	fi
	echo "$d"
}

peer_aiosmtpd() {
	local dir=$1 port cert="" args
	shift
	if [ "${1:-}" = --tls ]; then
		cert=${2:-good}
		peer_ca >/dev/null || return 1
	fi
	mkdir -p "$dir/cur" "$dir/new" "$dir/tmp"
	port=$(peer_free_port) || return 1
	args=(-n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox)
	if [ -n "$cert" ]; then
		args+=(--tlscert "$T/tls/$cert.pem" --tlskey "$T/tls/$cert.key")
	fi
	_peer_start "aiosmtpd-$port" "$PEER_PY" -m aiosmtpd "${args[@]}" "$dir"
	peer_wait_port "$port" || return 1
	echo "$port"
}

peer_smtp_sink() {
	local dir=$1 port user=()
	shift
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then	# smtp-sink will not run as root
		user=(-u nobody)
		chmod 0777 "$dir"
	fi
	port=$(peer_free_port) || return 1
	_peer_start "smtp-sink-$port" "$PEER_SMTP_SINK" "${user[@]}" -c \
	    -d "$dir/%Y%m%d%H%M%S." "$@" "127.0.0.1:$port" 100
	peer_wait_port "$port" || return 1
	echo "$port"
}

# smtp-sink -c prints "sess=N quit=N mesg=N" (CR-separated) as it goes.
peer_smtp_sink_sessions() {
	tr '\r' '\n' <"$T/peers/smtp-sink-$1.log" |
	    sed -n 's/^sess=\([0-9]*\) .*/\1/p' | tail -1
}

peer_smtpd_auth() {
	local dir=$1 user=$2 pwfile=$3 port
	peer_ca >/dev/null || return 1
	mkdir -p "$dir/cur" "$dir/new" "$dir/tmp"
	port=$(peer_free_port) || return 1
	_peer_start "smtpd-auth-$port" "$PEER_PY" "$TESTS_DIR/tools/smtpd_auth.py" \
	    "$port" "$dir" "$T/tls/good.pem" "$T/tls/good.key" "$user" \
	    "$pwfile" "$dir.auth"
	peer_wait_port "$port" || return 1
	echo "$port"
}
