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

# ---- HylaFAX (issue 7) ----
#
#   peer_hylafax NAME [TTY]         a throwaway HylaFAX server: its own spool
#                                   in $T/peers/NAME (a copy of Debian's
#                                   skeleton with the configuration from
#                                   tests/fax/hylafax/), faxq and hfaxd -l
#                                   127.0.0.1 -i on a free port (echoed);
#                                   with TTY, also faxgetty on that modem
#                                   (peer_hylafax_modem).  As root only
#                                   (HylaFAX chroots and runs as uucp).
#                                   Logins (etc/hosts.hfaxd): "dengon" with
#                                   the password $PEER_HYLAFAX_PASSWORD (also
#                                   its ADMIN password), "nopass" and anyone
#                                   else from 127.0.0.1 without a password.
#   peer_hylafax_modem NAME TTY [NUMBER]
#                                   faxgetty on TTY (a path; the virtual
#                                   modem's link) for the server NAME, with
#                                   etc/config.<devid> from tests/fax/
#                                   hylafax/config.modem, NUMBER its own fax
#                                   number; waits until the modem is ready
#                                   and echoes its device id (the path, "/"
#                                   made "_"; for modem@host in sendfax -h)
#   peer_hylafax_ready NAME [SECONDS]
#                                   wait until one of its modems is ready
#   peer_hylafax_spool NAME         the spool directory
#   peer_hylafax_port NAME          the hfaxd port
#   peer_hylafax_q NAME JOBID KEY   a field of the job's queue file (sendq/
#                                   qJOBID or doneq/qJOBID): state (1
#                                   suspended, 2 pending, 3 sleeping, 4
#                                   blocked, 5 ready, 6 active, 7 done, 8
#                                   failed), status, statuscode, npages,
#                                   totpages, totdials, tottries, commid ...
#   peer_hylafax_sessions NAME      the session logs (log/c*), one path a line
#
# Logs: $T/peers/NAME-{faxq,hfaxd,faxgetty-DEVID}.log (stdout/stderr: mostly
# empty, HylaFAX logs to syslog, which no one reads here), the spool's
# log/cNNNNNNNNN (one per call, with every AT command), log/xferfaxlog,
# and log/events.log (what faxq would have mailed: bin/notify).
# Everything stops with the test (by pid; timeout $PEER_LIFETIME as a
# safety net).  faxq and hfaxd answer within 0.3 s; a modem is ready about
# 4 s after faxgetty starts.  A job for an idle modem is dialled 1-2 s after
# JSUBM (more when faxq must convert the TIFF, e.g. VRES 98 for a 196 lpi
# document); after each call the modem is back in about 5 s.  What
# HylaFAX reports for busy, no answer, a silent line, a removed job:
# tests/integration/33-fax-hylafax.sh.

PEER_HYLAFAX_PASSWORD=${PEER_HYLAFAX_PASSWORD:-dengon-test}
PEER_HYLAFAX_SKEL=${PEER_HYLAFAX_SKEL:-/var/spool/hylafax}
PEER_HYLAFAX_ETC=${PEER_HYLAFAX_ETC:-/etc/hylafax}

peer_hylafax_spool() { echo "$T/peers/$1"; }
peer_hylafax_port() { cat "$T/peers/$1.port"; }

# _peer_hylafax_spool DIR - the spool skeleton (hylafax-server(5)): the
# queues belong to the fax user (uucp on Debian), etc/ and bin/ to root.
_peer_hylafax_spool() {
	local d=$1 cf=$TESTS_DIR/fax/hylafax q
	mkdir -p "$d" || return 1
	for q in archive client config dev docq doneq info log pollq recvq \
	    sendq status tmp lock; do
		mkdir -p "$d/$q"
	done
	# etc/: Debian's /etc/hylafax (the init script bind-mounts it onto
	# the spool's etc/; hfaxd chroots to the spool and reads it there).
	cp -a "$PEER_HYLAFAX_ETC" "$d/etc" &&
	    cp -a "$PEER_HYLAFAX_SKEL/bin" "$d/bin" || return 1
	rm -f "$d/etc"/config.* "$d/etc/hosts.hfaxd"
	sed "s|@SPOOL@|$d|g" "$cf/config" >"$d/etc/config"
	# The bin/ scripts call $SBIN/tiffcheck, faxinfo...: not Debian's
	# wrappers in /usr/sbin (see tests/fax/hylafax/config).
	sed -i "s|^SBIN=.*|SBIN='/usr/lib/hylafax/bin'|" "$d/etc/setup.cache"
	cp "$cf/hfaxd.conf" "$d/etc/hfaxd.conf"
	cp "$cf/notify" "$d/bin/notify" && cp "$cf/notify" "$d/bin/wedged"
	chmod 755 "$d/bin/notify" "$d/bin/wedged"
	# hosts.hfaxd(5): user@host regular expressions, first match wins;
	# uid:password(crypt):admin password.  The uid becomes the group of
	# the files a client creates.
	local pw
	pw=$(openssl passwd -6 "$PEER_HYLAFAX_PASSWORD") || return 1
	{
		echo "^dengon@127\\.0\\.0\\.1\$:1001:$pw:$pw"
		echo "^nopass@127\\.0\\.0\\.1\$:1002::"
		echo "^.*@127\\.0\\.0\\.1\$:1003::"
	} >"$d/etc/hosts.hfaxd"
	chown -R uucp:uucp "$d" && chown -R root:root "$d/etc" "$d/bin" &&
	    chown uucp:uucp "$d/etc/hosts.hfaxd" || return 1
	chmod 600 "$d/etc/hosts.hfaxd"	# hfaxd insists: the fax user's alone
	chmod 755 "$d"
	chmod 1777 "$d/tmp"
}

# _peer_hylafax_up NAME - hfaxd answers (its greeting) and faxq has made
# the FIFO through which hfaxd hands it jobs.
_peer_hylafax_up() {
	[ -p "$T/peers/$1/FIFO" ] || return 1
	"$PEER_PY" - "$(peer_hylafax_port "$1")" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
ok = s.makefile("rb").readline().startswith(b"220 ")
s.sendall(b"QUIT\r\n")
sys.exit(0 if ok else 1)
PYEOF
}

peer_hylafax() {
	local name=$1 tty=${2:-} d port n
	: "${T:?peers.sh: call t_setup first}"
	if [ "$(id -u)" != 0 ]; then
		echo "# peers.sh: HylaFAX needs root (it chroots and runs as uucp)" >&2
		return 1
	fi
	command -v faxq >/dev/null && command -v hfaxd >/dev/null || {
		echo "# peers.sh: hylafax-server is not installed" >&2
		return 1
	}
	d=$T/peers/$name
	_peer_hylafax_spool "$d" || return 1
	port=$(peer_free_port) || return 1
	echo "$port" >"$T/peers/$name.port"
	# -D: faxq stays in the foreground; hfaxd -d likewise.  -l must
	# come before -i (hfaxd(8)).
	_peer_start "$name-faxq" faxq -D -q "$d"
	_peer_start "$name-hfaxd" hfaxd -d -q "$d" -l 127.0.0.1 -i "$port"
	peer_wait_port "$port" || return 1
	n=50
	until _peer_hylafax_up "$name" 2>/dev/null; do
		n=$((n - 1))
		if [ "$n" -le 0 ]; then
			echo "# peers.sh: HylaFAX $name did not start" >&2
			sed 's/^/# /' "$T/peers/$name-faxq.log" \
			    "$T/peers/$name-hfaxd.log" >&2
			return 1
		fi
		sleep 0.1
	done
	if [ -n "$tty" ]; then
		peer_hylafax_modem "$name" "$tty" >/dev/null || return 1
	fi
	echo "$port"
}

# HylaFAX's device id: the path without "/dev/", each "/" made "_".
_peer_hylafax_devid() {
	local p=${1#/dev/}
	echo "${p//\//_}"
}

peer_hylafax_modem() {
	local name=$1 tty=$2 number=${3:-+81 3 0000 0001} d devid
	d=$T/peers/$name
	devid=$(_peer_hylafax_devid "$tty")
	sed -e "s|@SPOOL@|$d|g" -e "s|@NUMBER@|$number|g" \
	    "$TESTS_DIR/fax/hylafax/config.modem" >"$d/etc/config.$devid"
	_peer_start "$name-faxgetty-$devid" faxgetty -q "$d" "$tty"
	_peer_hylafax_modem_ready "$d/status/$devid" 20 || {
		echo "# peers.sh: HylaFAX $name: the modem $tty is not ready" >&2
		sed 's/^/# /' "$T/peers/$name-faxgetty-$devid.log" >&2
		sed 's/^/# status: /' "$d/status/$devid" >&2 2>/dev/null
		return 1
	}
	echo "$devid"
}

# faxgetty writes its modem's state to status/<devid> (what faxstat
# shows) and tells faxq through the FIFO.  Set up, the modem says
# "Listening to rings from modem", then "Running and idle" (after each
# call); faxq may also have taken it for a job at once ("Sending job N").
# Before: "Initializing server", "Waiting for modem to come ready".
_peer_hylafax_modem_is_ready() {
	grep -qE '^(Running and idle|Listening to rings from modem|Sending job)' \
	    "$1" 2>/dev/null
}

_peer_hylafax_modem_ready() {
	local f=$1 n=$(( ${2:-10} * 10 ))
	while [ "$n" -gt 0 ]; do
		_peer_hylafax_modem_is_ready "$f" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

peer_hylafax_ready() {
	local name=$1 n=$(( ${2:-10} * 10 )) f
	while [ "$n" -gt 0 ]; do
		for f in "$T/peers/$name"/status/*; do
			_peer_hylafax_modem_is_ready "$f" && return 0
		done
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

peer_hylafax_q() {
	local d=$T/peers/$1 f
	f=$d/sendq/q$2
	[ -f "$f" ] || f=$d/doneq/q$2
	[ -f "$f" ] || return 1
	sed -n "s/^$3://p" "$f" | head -1
}

peer_hylafax_sessions() {
	ls "$T/peers/$1"/log/c[0-9]* 2>/dev/null
}

# At exit, after _peer_stop_all has sent SIGTERM (timeout passes it on to
# its whole process group: hfaxd's per-client children, faxq's faxsend):
# wait until they are gone, so that the spool can be removed.  Registered
# here, not in peer_hylafax: that runs inside $(...).
_peer_hylafax_reap() {
	local n=30 f alive
	[ -n "${T:-}" ] && [ -d "$T/peers" ] || return 0
	while [ "$n" -gt 0 ]; do
		alive=0
		for f in "$T"/peers/*-faxq.pid "$T"/peers/*-hfaxd.pid \
		    "$T"/peers/*-faxgetty-*.pid; do
			[ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
}
t_cleanup_add _peer_hylafax_reap
# ---- end of HylaFAX ----

# ---- fax modem (issue 7) ----
# The virtual Class 1 fax modem (tests/fax/fax_vmodem.c, built by `make
# tests` as $DENGON_BIN/../tools/fax_vmodem; $PEER_FAX_VMODEM overrides):
# spandsp's T.31 modem on a pty, its line an 8 kHz audio loop run in real
# time to a spandsp fax machine that answers and stores what it receives.
# A call takes real time: ~25 s for a short page, ~10 s more per page.
#
#   peer_fax_vmodem NAME [OPTIONS...]
#                       start it; echoes its link $T/peers/NAME.tty (the
#                       device a client opens).  Faxes received go to
#                       $T/peers/NAME.rx/NNNN-NUMBER.tif (NNNN counts the
#                       calls, busy ones too; a file appears complete),
#                       its events to $T/peers/NAME.jsonl.  OPTIONS:
#                       --answer-delay S (2), --busy-delay S (2),
#                       --noanswer-delay S (6), --no-ecm, --verbose (AT
#                       traffic and T.30 in $T/peers/NAME.log)
#   peer_fax_vmodem_pty NAME
#                       the /dev/pts/N the link points at
#   peer_fax_vmodem_count NAME EVENT [KEY=VALUE...]
#                       events of its log (see the program's header: dial,
#                       call, page, end, hangup, abort, warn, start, exit)
#                       whose KEYs have these VALUEs (numbers and booleans
#                       as JSON spells them: status=0 ecm=false)
#   peer_fax_vmodem_has NAME EVENT [KEY=VALUE...]
#                       true when there is at least one (for wait_until)
#
# The number dialled chooses the line: 0999... BUSY; 0998... NO ANSWER;
# 0997... answered but silent (no CED, no DIS: the modem says NO CARRIER
# after S7 seconds, 60 unless the client sets ATS7); 0996... busy on the
# first call to that very number, answered on later ones; anything else is
# answered by the fax machine (its CSI is the number dialled).  Flow
# control: the modem takes from the pty only what T.31 has room for, and
# sends XON/XOFF when the client set IXON.  DTR: a client setting the speed
# to B0, or closing the port (HUPCL, on by default), hangs up a call.
PEER_FAX_VMODEM=${PEER_FAX_VMODEM:-${DENGON_BIN:-.}/../tools/fax_vmodem}

peer_fax_vmodem() {
	local name=$1 d=$T/peers tries=100
	shift
	: "${T:?peers.sh: call t_setup first}"
	[ -x "$PEER_FAX_VMODEM" ] || {
		echo "# peers.sh: no $PEER_FAX_VMODEM (make tests)" >&2
		return 1
	}
	mkdir -p "$d"
	rm -f "$d/$name.tty"
	_peer_start "$name" "$PEER_FAX_VMODEM" --link "$d/$name.tty" \
	    --outdir "$d/$name.rx" --log "$d/$name.jsonl" \
	    --timeout "$PEER_LIFETIME" "$@"
	while [ "$tries" -gt 0 ]; do
		if [ -L "$d/$name.tty" ] &&
		    grep -q '"ev":"start"' "$d/$name.jsonl" 2>/dev/null; then
			echo "$d/$name.tty"
			return 0
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	echo "# peers.sh: the fax modem $name did not start" >&2
	sed 's/^/# /' "$d/$name.log" >&2
	return 1
}

peer_fax_vmodem_pty() { readlink "$T/peers/$1.tty"; }

peer_fax_vmodem_count() {
	local name=$1
	shift
	"$PEER_PY" - "$T/peers/$name.jsonl" "$@" <<'PYEOF'
import json, sys
path, ev, conds = sys.argv[1], sys.argv[2], sys.argv[3:]
want = [c.split("=", 1) for c in conds]
n = 0
try:
    lines = open(path, encoding="utf-8").read().splitlines()
except OSError:
    lines = []
for line in lines:
    try:
        e = json.loads(line)
    except ValueError:
        continue            # a line being written
    if e.get("ev") != ev:
        continue
    if all(k in e and (e[k] if isinstance(e[k], str) else json.dumps(e[k])) == v
           for k, v in want):
        n += 1
print(n)
PYEOF
}

peer_fax_vmodem_has() { [ "$(peer_fax_vmodem_count "$@")" -ge 1 ]; }
# ---- end of fax modem ----
