#!/bin/bash
# 20-smtp-driver: the smtp channel driver (channels/smtp.c, mail.c) against
# real SMTP peers on loopback, through tests/tools/smtp_send: what is
# stored and how it reads back, STARTTLS with verification of the
# certificate and the host, AUTH, DSN parameters, many messages per
# session, and the classification of 4xx, 5xx, 421 and disconnects.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
SEND=${SMTP_SEND:-$DENGON_BIN/../tools/smtp_send}
M=$T/mail
mkdir -p "$M"
peer_ca >/dev/null || { echo "not ok 1 - peer_ca: openssl failed"; exit 1; }

# chan NAME PORT [KEY=VALUE...] - append an smtp [channel NAME]; the given
# keys replace the defaults below.
chan() {
	local name=$1 port=$2 kv k
	shift 2
	declare -A v=([type]=smtp [host]=127.0.0.1 [port]=$port
	    [from]="警報センター <alerts@relay.example.jp>"
	    [reply_to]=replies@relay.example.jp [timeout]=10s [tls]=none)
	for kv in "$@"; do
		v[${kv%%=*}]=${kv#*=}
	done
	{
		echo
		echo "[channel $name]"
		for k in type host port tls tls_verify ca_file user password_file \
		    from reply_to timeout; do
			[ -n "${v[$k]:-}" ] && echo "$k = ${v[$k]}"
		done
	} >>"$T/dengon.conf"
}

# send CHANNEL [smtp_send options] - stdout in $T/out, stderr in $T/err,
# the exit status in $rc.
send() {
	"$SEND" -c "$T/dengon.conf" -C "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

# n OUTCOME - how many results in $T/out had OUTCOME.
n() { awk -v o="$1" '$2 == o' "$T/out" | wc -l; }

# stored DIR - messages in a Maildir.
stored() { find "$1/new" -type f 2>/dev/null | wc -l; }

# mails DIR EXPR - a Python expression over msgs, the messages of the
# Maildir DIR parsed by Python's email package, sorted by To.
mails() {
	"$PY" - "$1" "$2" <<'EOF'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
msgs = sorted((email.message_from_bytes(box.get_bytes(k),
    policy=email.policy.default) for k in box.keys()),
    key=lambda m: str(m["To"]))
raws = [box.get_bytes(k) for k in box.keys()]
print(eval(sys.argv[2]))
EOF
}

ok "the test tool is built" test -x "$SEND"

# ---- plain delivery, read back by Python's email parser -----------------
pplain=$(peer_aiosmtpd "$M/plain")
chan plain "$pplain"
send plain -n 3 -d
is "$rc" 0 "plain: send() returns 0"
is "$(n ok)" 3 "plain: three messages ok"
like "$(head -1 "$T/out")" "^1001 ok 250 " "plain: the evidence is the server's reply"
is "$(stored "$M/plain")" 3 "plain: three messages stored"
like "$(mails "$M/plain" 'msgs[0]["Subject"]')" \
    '^【訓練】\[TLP:AMBER\] 断水のお知らせ \[確認コード: [0-9A-Z]{4}-[0-9A-Z]{4}\]$' \
    "plain: the Subject decodes: drill marker first, TLP, subject, code"
is "$(mails "$M/plain" 'len(set(m["Subject"] for m in msgs))')" 3 \
    "plain: each recipient has its own code"
is "$(mails "$M/plain" 'msgs[0]["From"].addresses[0].display_name')" "警報センター" \
    "plain: the From display name decodes"
is "$(mails "$M/plain" 'msgs[1]["To"]')" "受信者 2 <r0002@example.jp>" \
    "plain: To is the recipient's name and address"
is "$(mails "$M/plain" 'msgs[0]["Reply-To"]')" "replies@relay.example.jp" \
    "plain: Reply-To"
is "$(mails "$M/plain" 'msgs[0]["Message-ID"]')" "<dengon.1.1.0@test-relay>" \
    "plain: the Message-ID is the one given"
is "$(mails "$M/plain" '(msgs[2]["X-Dengon-Alert"], msgs[2]["X-Dengon-Delivery"], msgs[2]["X-Dengon-TLP"])')" \
    "('20261121-0042', '103', 'AMBER')" "plain: the X-Dengon headers"
is "$(mails "$M/plain" 'msgs[0]["Auto-Submitted"]')" "auto-generated" \
    "plain: Auto-Submitted"
body=$(mails "$M/plain" 'msgs[0].get_content()')
code=$(mails "$M/plain" 'msgs[0]["Subject"].split()[-1].rstrip("]")')
like "$body" '^【訓練】' "plain: the body starts with the drill marker"
like "$body" "本日 14 時より、配水管工事のため断水します。" "plain: the alert body"
like "$body" "確認コード: $code" "plain: the body has the Subject's code"
like "$body" "通知番号: 20261121-0042" "plain: the alert id"
like "$body" "発信元: +警報センター（test-relay）" "plain: the sender and the relay"
like "$body" "発信日時: 2026-11-21 20:10 JST" "plain: the time of the alert, local"
like "$body" "このメールに返信" "plain: how to confirm by mail"
is "$(mails "$M/plain" 'msgs[0].get_content_type() + " " + msgs[0].get_content_charset()')" \
    "text/plain utf-8" "plain: text/plain; charset=UTF-8"
is "$(mails "$M/plain" 'max(len(l) for r in raws for l in r.splitlines())<=78')" \
    True "plain: no stored line is longer than 78"

# ---- header injection through the subject --------------------------------
send plain -a injected@example.jp -s $'Hello\r\nBcc: evil@example.net\nX-Evil: 1'
is "$(n ok)" 1 "injection: the message is sent"
sel='[m for m in msgs if "injected" in str(m["To"])][0]'
is "$(mails "$M/plain" "$sel[\"Bcc\"] is None and $sel[\"X-Evil\"] is None")" True \
    "injection: no Bcc or X-Evil header was made"
is "$(mails "$M/plain" "$sel[\"X-RcptTo\"]")" "injected@example.jp" \
    "injection: the envelope has the one recipient"
like "$(mails "$M/plain" "$sel[\"Subject\"]")" "Hello  Bcc: evil@example.net X-Evil: 1" \
    "injection: the line breaks became blanks inside the Subject"
send plain -a $'bad\r\nRCPT TO:<x@y>@example.jp'
is "$(n permfail)" 1 "injection: an address with CR/LF is a permfail"
like "$(cat "$T/out")" "line break" "injection: ... saying why"
send plain -a 'a>b@example.jp'
is "$(n permfail)" 1 "injection: an address with > is a permfail"
is "$(stored "$M/plain")" 4 "injection: nothing more was stored"

# ---- STARTTLS ------------------------------------------------------------
ptls=$(peer_aiosmtpd "$M/tls" --tls good)
chan tls "$ptls" tls=starttls ca_file="$T/tls/ca.pem"
send tls -n 2
is "$rc/$(n ok)" "0/2" "STARTTLS, certificate for 127.0.0.1: ok"
is "$(stored "$M/tls")" 2 "STARTTLS: stored"
chan tlsname "$ptls" host=localhost tls=starttls ca_file="$T/tls/ca.pem"
send tlsname
is "$rc/$(n ok)" "0/1" "STARTTLS to localhost (a DNS name in the certificate): ok"

p=$(peer_aiosmtpd "$M/wrong" --tls wrong)
chan wrong "$p" tls=starttls ca_file="$T/tls/ca.pem"
send wrong -n 3
is "$rc" 1 "wrong name: the session fails"
is "$(n tempfail)" 3 "wrong name: every message tempfail"
is "$(cut -d' ' -f3- "$T/out" | sort -u)" \
    "TLS: certificate does not match host 127.0.0.1" "wrong name: the reason"
is "$(stored "$M/wrong")" 0 "wrong name: nothing stored"
chan noverify "$p" tls=starttls tls_verify=no
send noverify
is "$rc/$(n ok)" "0/1" "tls_verify = no accepts it (for tests only)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$T/tls/other.key" -out "$T/tls/other-ca.pem" -days 2 \
    -subj "/CN=another CA" 2>/dev/null
chan otherca "$ptls" tls=starttls ca_file="$T/tls/other-ca.pem"
send otherca -n 2
is "$rc/$(n tempfail)" "1/2" "a certificate from an unknown CA: refused"
like "$(head -1 "$T/out")" "TLS: certificate verification failed: " \
    "unknown CA: the reason"

before=$(stored "$M/plain")
chan nostarttls "$pplain" tls=starttls ca_file="$T/tls/ca.pem"
send nostarttls -n 2
is "$rc/$(n tempfail)" "1/2" "tls = starttls to a server without STARTTLS: refused"
like "$(head -1 "$T/out")" "TLS: server does not offer STARTTLS" \
    "no STARTTLS: the reason"
is "$(stored "$M/plain")" "$before" "no STARTTLS: nothing stored"

# ---- AUTH ----------------------------------------------------------------
printf 'S3cret-pass\n' >"$T/smtp.pass"
printf 'wrong-pass\n' >"$T/bad.pass"
p=$(peer_smtpd_auth "$M/auth" relay "$T/smtp.pass")
chan auth "$p" tls=starttls ca_file="$T/tls/ca.pem" user=relay \
    password_file=smtp.pass
send auth -n 2
is "$rc/$(n ok)" "0/2" "AUTH over STARTTLS: ok"
like "$(cat "$M/auth.auth")" "^ok relay (PLAIN|LOGIN)" "AUTH: the server saw the user"
is "$(stored "$M/auth")" 2 "AUTH: stored"
chan authbad "$p" tls=starttls ca_file="$T/tls/ca.pem" user=relay \
    password_file=bad.pass
send authbad -n 2
is "$rc/$(n tempfail)" "1/2" "a wrong password: the session fails"
like "$(head -1 "$T/out")" "AUTH refused: 535" "wrong password: the reason"
is "$(stored "$M/auth")" 2 "wrong password: nothing stored"
ok "the password never reaches the output" \
    bash -c "! grep -rqs -e S3cret -e wrong-pass '$T/out' '$T/err'"

# ---- DSN parameters and many messages in one session (smtp-sink) --------
p=$(peer_smtp_sink "$M/sink")
chan sink "$p"
send sink -n 5
is "$rc/$(n ok)" "0/5" "smtp-sink: five messages ok"
like "$(head -1 "$T/out")" "^1001 ok 250 2\.0\.0 Ok" "smtp-sink: the evidence"
is "$(find "$M/sink" -type f | wc -l)" 5 "smtp-sink: five transactions dumped"
is "$(peer_smtp_sink_sessions "$p")" 1 "five messages in one session"
is "$(grep -h '^X-Mail-Args:' "$M"/sink/* | grep -c 'RET=HDRS')" 5 \
    "DSN: RET=HDRS on every MAIL FROM"
is "$(grep -h '^X-Mail-Args:' "$M"/sink/* | grep -o 'ENVID=[0-9]*' | sort | tr '\n' ' ')" \
    "ENVID=1001 ENVID=1002 ENVID=1003 ENVID=1004 ENVID=1005 " \
    "DSN: ENVID is the attempt id"
is "$(grep -h '^X-Rcpt-Args:' "$M"/sink/* | grep -c 'NOTIFY=SUCCESS,FAILURE')" 5 \
    "DSN: NOTIFY=SUCCESS,FAILURE on every RCPT TO"

# ---- faults ----------------------------------------------------------------
p=$(peer_smtp_sink "$M/r4" -r RCPT)
chan r4 "$p"
send r4 -n 3
is "$rc/$(n tempfail)" "0/3" "4xx on RCPT: tempfail"
like "$(head -1 "$T/out")" "RCPT TO refused: 4[0-9][0-9] " "4xx on RCPT: the reply"

p=$(peer_smtp_sink "$M/r5" -f RCPT)
chan r5 "$p"
send r5 -n 3
is "$rc/$(n permfail)" "0/3" "5xx on RCPT: permfail"
like "$(head -1 "$T/out")" "RCPT TO refused: 5[0-9][0-9] " "5xx on RCPT: the reply"

p=$(peer_smtp_sink "$M/d5" -f DATA)
chan d5 "$p"
send d5 -n 2
is "$rc/$(n permfail)" "0/2" "5xx on DATA: permfail"

p=$(peer_smtp_sink "$M/dot" -q .)
chan dot "$p"
send dot -n 3
is "$rc/$(n tempfail)" "0/3" "disconnect before the reply to the data: all tempfail"
like "$(head -1 "$T/out")" "^1001 tempfail DATA: no reply" "disconnect: the first says so"

p=$(peer_smtp_sink "$M/qdata" -q DATA)
chan qdata "$p"
send qdata -n 2
is "$rc/$(n tempfail)" "0/2" "disconnect at DATA: all tempfail"
is "$(find "$M/qdata" -type f | wc -l)" 0 "disconnect at DATA: nothing dumped"

p=$(peer_smtp_sink "$M/q421" -Q MAIL)
chan q421 "$p"
send q421 -n 3
is "$rc/$(n tempfail)" "0/3" "421 on MAIL FROM: all tempfail"
like "$(head -1 "$T/out")" "421" "421: the reply is kept"

chan down "$(peer_free_port)"
send down -n 2
is "$rc/$(n tempfail)" "1/2" "nothing listening: the session fails, tempfail"
like "$(cat "$T/err")" "connect: Connection refused" "connect failure: the reason"
