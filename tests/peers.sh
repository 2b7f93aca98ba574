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
#   peer_dovecot USER PASSWORD_FILE [good|wrong|none]
#                                   a throwaway Dovecot (package dovecot-imapd,
#                                   -pop3d, -lmtpd) serving one user (passwd-file
#                                   auth, the password read from PASSWORD_FILE)
#                                   from a Maildir under $T/peers/dovecot-IMAP/;
#                                   IMAP with STARTTLS, POP3 with STLS, IMAPS,
#                                   POP3S and LMTP on free loopback ports, TLS
#                                   with the test CA's good (default) or wrong
#                                   certificate, or none: no TLS at all (no
#                                   STARTTLS/STLS; IMAPS and POP3S do not
#                                   listen); echoes "IMAP POP3 IMAPS POP3S
#                                   LMTP".  Its log (every login attempt) is
#                                   $T/peers/dovecot-IMAP/dovecot.log.
#                                   $PEER_DOVECOT_EXTRA: more config lines
#                                   (e.g. imap_capability = ... to hide IDLE).
#                                   As root, mail belongs to nobody:nogroup
#                                   (Dovecot refuses uid 0 for mail).
#   peer_dovecot_deliver USER FILE [IMAP]
#                                   put FILE into USER's INBOX (dovecot-lda) of
#                                   the Dovecot on port IMAP (default: the last
#                                   one started); swaks can also deliver, by
#                                   LMTP: swaks --server 127.0.0.1 --port LMTP
#                                   --protocol LMTP --to USER ...
#   peer_dovecot_count USER MAILBOX [IMAP]
#                                   messages in MAILBOX (INBOX, dengon-done ...)
#                                   not marked deleted
#   peer_dovecot_log [IMAP]         the path of that Dovecot's log
#   peer_modem NAME [OPTIONS...]    the GSM modem emulator (tests/modem/
#                                   gsmemu.py, gsmemu options) on a pty:
#                                   echoes its link $T/peers/NAME.tty;
#                                   control socket $T/peers/NAME.ctl, event
#                                   log $T/peers/NAME.jsonl
#   peer_modem_tcp NAME [OPTIONS...] the same on a free TCP port (echoed)
#   peer_modem_ctl NAME JSON        one control command; prints the reply,
#                                   fails unless it says "ok": true
#   peer_modem_count NAME EVENT [KEY=VALUE...]
#                                   events in the emulator's log (smslog.py)
#   peer_modem_messages NAME        the messages sent through it, parts
#                                   reassembled, one JSON line each

PEER_LIFETIME=${PEER_LIFETIME:-600}
PEER_PY=${PEER_PY:-/usr/bin/python3}
PEER_SMTP_SINK=${PEER_SMTP_SINK:-/usr/sbin/smtp-sink}
PEER_DOVECOT=${PEER_DOVECOT:-/usr/sbin/dovecot}
PEER_DOVECOT_LDA=${PEER_DOVECOT_LDA:-/usr/lib/dovecot/dovecot-lda}

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

# _peer_dovecot_dir [IMAP] - the directory of a Dovecot instance.
_peer_dovecot_dir() {
	if [ -n "${1:-}" ]; then
		echo "$T/peers/dovecot-$1"
	else
		cat "$T/peers/dovecot.last"
	fi
}

peer_dovecot() {
	local user=$1 pwfile=$2 cert=${3:-good} d ports=() p uid gid chroot
	local pass ssl wait
	peer_ca >/dev/null || return 1
	[ -x "$PEER_DOVECOT" ] || { echo "# peers.sh: no $PEER_DOVECOT" >&2; return 1; }
	while [ ${#ports[@]} -lt 5 ]; do	# five distinct free ports
		p=$(peer_free_port) || return 1
		[[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
	done
	d=$T/peers/dovecot-${ports[0]}
	mkdir -p "$d/run" "$d/state" "$d/mail"
	pass=$(head -1 "$pwfile" | tr -d '\r')
	printf '%s:{PLAIN}%s::::::\n' "$user" "$pass" >"$d/passwd"
	chmod 0644 "$d/passwd"	# auth runs as the dovecot user; a test password
	if [ "$(id -u)" = 0 ]; then
		uid=nobody gid=nogroup chroot=""
		chown nobody:nogroup "$d/mail"
	else	# a developer's machine: everything runs as us, no chroot
		uid=$(id -un) gid=$(id -gn)
		chroot="default_internal_user = $uid
default_login_user = $uid
service imap-login {
  chroot =
}
service pop3-login {
  chroot =
}
service anvil {
  chroot =
}"
	fi
	if [ "$cert" = none ]; then
		ssl="ssl = no"
		wait=("${ports[0]}" "${ports[1]}" "${ports[4]}")
	else
		ssl="ssl = yes
ssl_cert = <$T/tls/$cert.pem
ssl_key = <$T/tls/$cert.key
ssl_min_protocol = TLSv1.2"
		wait=("${ports[@]}")
	fi
	cat >"$d/dovecot.conf" <<DOVECOT
# a throwaway Dovecot for dengon's tests (tests/peers.sh)
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
$ssl
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:$d/mail/%u/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/passwd
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$d/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${ports[0]}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${ports[2]}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${ports[1]}
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = ${ports[3]}
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${ports[4]}
  }
}
$chroot
${PEER_DOVECOT_EXTRA:-}
DOVECOT
	_peer_start "dovecot-${ports[0]}" "$PEER_DOVECOT" -F -c "$d/dovecot.conf"
	for p in "${wait[@]}"; do
		peer_wait_port "$p" || { sed 's/^/# /' "$T/peers/dovecot-${ports[0]}.log" >&2; return 1; }
	done
	echo "$d" >"$T/peers/dovecot.last"
	echo "${ports[*]}"
}

peer_dovecot_deliver() {
	local user=$1 file=$2 d
	d=$(_peer_dovecot_dir "${3:-}")
	"$PEER_DOVECOT_LDA" -c "$d/dovecot.conf" -d "$user" \
	    -f sender@example.net <"$file"
}

# Maildir: INBOX is Maildir/, others Maildir/.NAME/; a 'T' in the flags
# after ":2," marks a message deleted but not expunged.
peer_dovecot_count() {
	local user=$1 box=$2 d m
	d=$(_peer_dovecot_dir "${3:-}")
	m=$d/mail/$user/Maildir
	[ "$box" = INBOX ] || m=$m/.$box
	find "$m/new" "$m/cur" -type f 2>/dev/null | grep -cv ':2,[A-Z]*T'
}

peer_dovecot_log() {
	echo "$(_peer_dovecot_dir "${1:-}")/dovecot.log"
}

# peer_postfix_master FILE [SERVICE...] - the master.cf of a throwaway
# Postfix instance (tests and bench/): its internal services, no chroot,
# preceded by the SERVICE lines given (e.g. an smtpd listener).
peer_postfix_master() {
	local f=$1
	shift
	{
		[ $# -gt 0 ] && printf '%s\n' "$@"
		cat <<'CF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
	} >"$f"
}

# peer_postfix DIR LMTPPORT BOUNCEPORT - a throwaway Postfix instance (configuration
# in DIR/conf, queue in DIR/queue, log DIR/maillog), as root, that accepts
# mail by SMTP on a free loopback port (echoed) and really delivers it, so
# that it sends real delivery status notifications:
#   *@example.jp          delivered into one virtual Maildir (DIR/vmail):
#                         NOTIFY=SUCCESS gets an "Action: delivered" DSN
#   *@bounce.example.jp   accepted, then relayed to 127.0.0.1:BOUNCEPORT
#                         (e.g. an smtp-sink refusing RCPT with 5xx): an
#                         "Action: failed" DSN
#   *@relay.example.jp    handed to LMTP on 127.0.0.1:LMTPPORT (Dovecot):
#                         where the DSNs for the sender go
peer_postfix() {
	local dir=$1 lmtp=$2 bport=$3 port
	: "${T:?peers.sh: call t_setup first}"
	port=$(peer_free_port) || return 1
	mkdir -p "$dir/conf" "$dir/queue" "$dir/data" "$dir/vmail"
	chown postfix "$dir/data"
	chown nobody:nogroup "$dir/vmail"
	chmod 755 "$dir"
	cat >"$dir/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.test.example
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relay_domains = bounce.example.jp relay.example.jp
virtual_mailbox_domains = example.jp
virtual_mailbox_base = $dir/vmail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
transport_maps = inline:{ {bounce.example.jp = smtp:[127.0.0.1]:$bport}, {relay.example.jp = lmtp:inet:127.0.0.1:$lmtp} }
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
	peer_postfix_master "$dir/conf/master.cf" \
	    "127.0.0.1:$port inet n - n - - smtpd"
	t_cleanup_add "postfix -c '$dir/conf' stop; sleep 0.5; postfix -c '$dir/conf' abort"
	{ postfix -c "$dir/conf" check && postfix -c "$dir/conf" start; } \
	    >"$dir/start.log" 2>&1 || { cat "$dir/start.log" >&2; return 1; }
	peer_wait_port "$port" || return 1
	echo "$port"
}

# ---- the GSM modem emulator (tests/modem/gsmemu.py) ----------------------

# _peer_modem_start NAME ARGS... - run gsmemu.py for NAME with its files
# under $T/peers and ARGS (--pty LINK or --tcp PORT, then the caller's
# options).  Starting a NAME again (a modem back after vanishing) reuses
# its link and control socket; its log goes on, a "start" event between.
_peer_modem_start() {
	local name=$1 d=$T/peers
	shift
	: "${T:?peers.sh: call t_setup first}"
	mkdir -p "$d"
	rm -f "$d/$name.tty" "$d/$name.ctl"
	_peer_start "$name" "$PEER_PY" "$TESTS_DIR/modem/gsmemu.py" \
	    --control "$d/$name.ctl" --log "$d/$name.jsonl" \
	    --lifetime "$PEER_LIFETIME" "$@"
}

# _peer_modem_up NAME [LINK] - wait until the control socket (and the
# link) exist; the emulator's output is shown if it never comes up.
_peer_modem_up() {
	local d=$T/peers tries=100
	while [ "$tries" -gt 0 ]; do
		if [ -S "$d/$1.ctl" ] && { [ -z "${2:-}" ] || [ -L "$2" ]; }; then
			return 0
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	echo "# peers.sh: the modem emulator $1 did not start" >&2
	sed 's/^/# /' "$d/$1.log" >&2
	return 1
}

peer_modem() {
	local name=$1 link=$T/peers/$1.tty
	shift
	_peer_modem_start "$name" --pty "$link" "$@"
	_peer_modem_up "$name" "$link" || return 1
	echo "$link"
}

peer_modem_tcp() {
	local name=$1 port
	shift
	port=$(peer_free_port) || return 1
	_peer_modem_start "$name" --tcp "$port" "$@"
	_peer_modem_up "$name" && peer_wait_port "$port" || return 1
	echo "$port"
}

peer_modem_ctl() {
	"$PEER_PY" - "$T/peers/$1.ctl" "$2" <<'PYEOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
reply = s.makefile(encoding="utf-8").readline().strip()
print(reply)
sys.exit(0 if json.loads(reply or "{}").get("ok") is True else 1)
PYEOF
}

peer_modem_count() {
	local name=$1
	shift
	"$PEER_PY" "$TESTS_DIR/modem/smslog.py" count "$T/peers/$name.jsonl" "$@"
}

peer_modem_messages() {
	"$PEER_PY" "$TESTS_DIR/modem/smslog.py" messages "$T/peers/$1.jsonl"
}
