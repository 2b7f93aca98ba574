#!/bin/bash
# 21-inbox-driver: the inbox drivers (channels/inbox.c, inbox_mime.c)
# against a real Dovecot on loopback, through tests/tools/inbox_dump:
# replies sent by swaks (over LMTP) the way people's mail clients write
# them (UTF-8, ISO-2022-JP, Shift_JIS; quoted-printable, base64, 8bit)
# read back decoded; IMAP (plain, STARTTLS, IMAPS; with and without IDLE,
# MOVE and UIDPLUS) and POP3 (STLS, POP3S); what is acknowledged is moved
# to done_mailbox or deleted and never offered again, what is not stays
# and is offered again; a DSN and an MDN; certificates with a wrong name
# or from an unknown CA refused before LOGIN, and the password nowhere.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
DUMP=${INBOX_DUMP:-$DENGON_BIN/../tools/inbox_dump}
U=replies
PW=S3cret-imap-pw
printf '%s\n' "$PW" >"$T/imap.pass"
printf 'not-the-password\n' >"$T/bad.pass"
peer_ca >/dev/null || { echo "not ok 1 - peer_ca: openssl failed"; exit 1; }
ok "the test tool is built" test -x "$DUMP"

read -r IMAP POP3 IMAPS POP3S LMTP < <(peer_dovecot "$U" "$T/imap.pass")
ok "Dovecot runs (IMAP $IMAP, POP3 $POP3, IMAPS $IMAPS, POP3S $POP3S, LMTP $LMTP)" \
    test -n "$LMTP"
GOOD=$IMAP

# inbox NAME TYPE PORT [KEY=VALUE...] - append an [inbox NAME]; the given
# keys replace the defaults below.
inbox() {
	local name=$1 type=$2 port=$3 kv k
	shift 3
	declare -A v=([type]=$type [host]=127.0.0.1 [port]=$port
	    [tls]=starttls [ca_file]=tls/ca.pem [user]=$U
	    [password_file]=imap.pass [poll]=1s)
	for kv in "$@"; do
		v[${kv%%=*}]=${kv#*=}
	done
	{
		echo
		echo "[inbox $name]"
		for k in type host port tls tls_verify ca_file user password_file \
		    mailbox done_mailbox poll; do
			[ -n "${v[$k]:-}" ] && echo "$k = ${v[$k]}"
		done
	} >>"$T/dengon.conf"
}

# dump INBOX [inbox_dump options] - stdout in $T/out, stderr in $T/err,
# the exit status in $rc; everything also kept in $T/all.
dump() {
	local name=$1
	shift
	"$DUMP" -c "$T/dengon.conf" -I "$name" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	cat "$T/out" "$T/err" >>"$T/all"
}

# col N [PATTERN] - field N of the lines of $T/out (matching PATTERN),
# one per line.
col() { awk -F'\t' -v n="$1" -v p="${2:-}" '!/^  / && (p == "" || $0 ~ p) { print $n }' "$T/out"; }

# lines - messages offered (the lines of $T/out that are not -v extras).
lines() { grep -c -v '^  ' "$T/out"; }

# b64 CHARSET TEXT - TEXT in CHARSET, base64 on one line.
b64() { printf '%s' "$2" | iconv -f UTF-8 -t "$1" | base64 -w0; }

# send FROM SUBJECT CHARSET ENCODING BODYFILE [swaks options] - a reply by
# LMTP, as a mail client writes it: the body file is sent as it is.
send() {
	local from=$1 subj=$2 cs=$3 cte=$4 body=$5
	shift 5
	swaks --server 127.0.0.1 --port "$LMTP" --protocol LMTP --to "$U" \
	    --from "$from" --header "Subject: $subj" \
	    --add-header "MIME-Version: 1.0" \
	    --add-header "Content-Type: text/plain; charset=$cs" \
	    --add-header "Content-Transfer-Encoding: $cte" \
	    --add-header "In-Reply-To: <dengon.1.1.0@test-relay>" \
	    --body "@$body" "$@" >"$T/swaks.log" 2>&1
}

# ---- the replies ---------------------------------------------------------
# 1: UTF-8, 8bit, the code reformatted in lower case without its hyphen,
#    the alert quoted below
printf '確認しました。山田\n\n> 【訓練】断水のお知らせ\n> 確認コード: ABCD-EFGH\n' \
    >"$T/b1"
send taro@example.jp "Re: =?UTF-8?B?$(b64 UTF-8 '【訓練】断水のお知らせ')?= abcdefgh" \
    UTF-8 8bit "$T/b1"
ok "swaks delivers a UTF-8 reply by LMTP" test "$?" = 0
# 2: ISO-2022-JP, as Japanese mail clients send it: Subject in B words,
#    body 7bit, not quoted
printf '了解です。\nコード abcd-efgh\n' | iconv -t ISO-2022-JP >"$T/b2"
send hanako@example.jp "=?ISO-2022-JP?B?$(b64 ISO-2022-JP 'Re: 断水のお知らせ')?=" \
    ISO-2022-JP 7bit "$T/b2"
ok "swaks delivers an ISO-2022-JP reply" test "$?" = 0
# 3: Shift_JIS (Windows: ① and ～), base64 body
printf '①確認しました～\nABCD-EFGH\n' | iconv -t CP932 | base64 >"$T/b3"
send suzuki@example.co.jp "=?Shift_JIS?B?$(b64 CP932 '確認①')?=" \
    Shift_JIS base64 "$T/b3"
ok "swaks delivers a Shift_JIS reply" test "$?" = 0
# 4: UTF-8 quoted-printable, Subject in Q
printf 'Bien re=C3=A7u, code ABCD-=\nEFGH.\n' >"$T/b4"
send jean@example.fr "=?UTF-8?Q?R=C3=A9ponse?= ABCD-EFGH" UTF-8 \
    quoted-printable "$T/b4"
ok "swaks delivers a quoted-printable reply" test "$?" = 0
is "$(peer_dovecot_count "$U" INBOX "$GOOD")" 4 "four replies in the INBOX"

# ---- IMAP without TLS, nothing acknowledged -------------------------------
inbox plain imap "$IMAP" tls=none
dump plain -n -v
is "$rc/$(lines)" "0/4" "IMAP, no TLS: four messages offered"
is "$(col 1 | tr '\n' ' ')" "1 2 3 4 " "the keys are the UIDs, oldest first"
is "$(col 2 | sort -u)" "message" "all four are messages"
is "$(col 3 | tr '\n' ' ')" \
    "taro@example.jp hanako@example.jp suzuki@example.co.jp jean@example.fr " \
    "the senders"
is "$(col 4 taro)" "Re: 【訓練】断水のお知らせ abcdefgh" "UTF-8: the Subject decodes"
is "$(col 5 taro)" "確認しました。山田" "UTF-8: the text's first line"
like "$(cat "$T/out")" "  \| > 確認コード: ABCD-EFGH" "UTF-8: the quoted alert is in the text"
is "$(col 4 hanako)" "Re: 断水のお知らせ" "ISO-2022-JP: the Subject decodes"
is "$(col 5 hanako)" "了解です。" "ISO-2022-JP: the text decodes"
like "$(cat "$T/out")" "  \| コード abcd-efgh" "ISO-2022-JP: the second line"
is "$(col 4 suzuki)" "確認①" "Shift_JIS: the Subject decodes (CP932)"
is "$(col 5 suzuki)" "①確認しました～" "Shift_JIS: the base64 text decodes (CP932)"
is "$(col 4 jean)" "Réponse ABCD-EFGH" "quoted-printable: the Subject"
is "$(col 5 jean)" "Bien reçu, code ABCD-EFGH." "quoted-printable: soft line breaks joined"
like "$(cat "$T/out")" "in-reply-to: <dengon.1.1.0@test-relay>" "In-Reply-To is read"
is "$(col 6 | sort -u)" "keep" "nothing acknowledged"
is "$(peer_dovecot_count "$U" INBOX "$GOOD")" 4 "unacknowledged messages stay in the INBOX"
dump plain -n
is "$rc/$(lines)" "0/4" "... and are offered again on the next pass"

# ---- IMAP STARTTLS, some acknowledged -------------------------------------
inbox starttls imap "$IMAP"
dump starttls -s 断水
is "$rc/$(lines)" "0/4" "IMAP STARTTLS (verified): four offered"
is "$(col 6 | tr '\n' ' ')" "ack ack keep keep " "two acknowledged (their Subject has 断水)"
is "$(peer_dovecot_count "$U" INBOX "$GOOD")/$(peer_dovecot_count "$U" dengon-done "$GOOD")" \
    "2/2" "the two acknowledged moved to dengon-done (created on login)"
dump starttls -n
is "$(col 1 | tr '\n' ' ')" "3 4 " "only the two left are offered again"

# ---- IMAPS ------------------------------------------------------------------
inbox imaps imap "$IMAPS" tls=tls
dump imaps
is "$rc/$(lines)" "0/2" "IMAPS: the two left offered and acknowledged"
is "$(peer_dovecot_count "$U" INBOX "$GOOD")/$(peer_dovecot_count "$U" dengon-done "$GOOD")" \
    "0/4" "IMAPS: the INBOX is empty, dengon-done has all four"
dump imaps
is "$rc/$(lines)" "0/0" "nothing is offered twice"
inbox byname imap "$IMAPS" tls=tls host=localhost
dump byname
is "$rc" 0 "IMAPS to localhost (a DNS name in the certificate, with SNI)"

# ---- a DSN and an MDN, delivered as files -------------------------------------
cat >"$T/dsn.eml" <<'EOF'
Return-Path: <>
From: MAILER-DAEMON@mx.example.jp (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: alerts@relay.example.jp
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4ABC.1795260000/mx.example.jp"
Message-Id: <20261121.4ABC@mx.example.jp>

--4ABC.1795260000/mx.example.jp
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.jp.

--4ABC.1795260000/mx.example.jp
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp
Original-Envelope-Id: 1001
Arrival-Date: Sat, 21 Nov 2026 20:10:00 +0900 (JST)

Final-Recipient: rfc822; r0001@example.jp
Original-Recipient: rfc822;r0001@example.jp
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <r0001@example.jp>: Recipient address
    rejected: User unknown

Final-Recipient: rfc822; r0002@example.jp
Action: delivered
Status: 2.0.0

--4ABC.1795260000/mx.example.jp
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Subject: [確認コード: WXYZ-2345]
Message-ID: <dengon.1.1.0@test-relay>

--4ABC.1795260000/mx.example.jp--
EOF
cat >"$T/mdn.eml" <<'EOF'
From: Taro <taro@example.jp>
Subject: Read: alert
Message-ID: <mdn.1@example.jp>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification;
 boundary="MDN1"

--MDN1
Content-Type: text/plain; charset=UTF-8

This is a receipt for the mail you sent.

--MDN1
Content-Type: message/disposition-notification

Reporting-UA: example.jp; Thunderbird
Final-Recipient: rfc822;taro@example.jp
Original-Message-ID: <dengon.1.1.0@test-relay>
Disposition: manual-action/MDN-sent-manually; displayed

--MDN1--
EOF
peer_dovecot_deliver "$U" "$T/dsn.eml" "$GOOD"
ok "dovecot-lda delivers the DSN" test "$?" = 0
peer_dovecot_deliver "$U" "$T/mdn.eml" "$GOOD"
ok "dovecot-lda delivers the MDN" test "$?" = 0
dump starttls -v
is "$rc/$(lines)" "0/2" "the DSN and the MDN are offered"
is "$(col 2 | tr '\n' ' ')" "dsn mdn " "their kinds"
is "$(col 5 dsn)" "envid=1001 r0001@example.jp:failed:5.1.1 r0002@example.jp:delivered:2.0.0" \
    "DSN: the envelope id and each recipient's action and status"
like "$(cat "$T/out")" "diagnostic: smtp; 550 5.1.1 <r0001@example.jp>: Recipient address rejected: User unknown" \
    "DSN: the diagnostic, unfolded"
like "$(cat "$T/out")" "auto-submitted: auto-replied" "DSN: Auto-Submitted"
is "$(col 5 mdn)" "displayed <dengon.1.1.0@test-relay>" \
    "MDN: the disposition and the original Message-ID"

# ---- IDLE: new mail ends the wait ---------------------------------------------
inbox idle imap "$IMAP" poll=20s
"$DUMP" -c "$T/dengon.conf" -I idle -p 2 >"$T/idle.out" 2>"$T/idle.err" &
dpid=$!
t_cleanup_add "kill $dpid"
sleep 2		# the first pass found nothing and is in IDLE now
printf 'IDLE woke me\n' >"$T/b5"
send idle@example.jp "idle test" UTF-8 8bit "$T/b5"
sent=$(date +%s)
wait_until 15 grep -q 'idle test' "$T/idle.out"
got=$?
took=$(( $(date +%s) - sent ))
kill "$dpid" 2>/dev/null
wait "$dpid" 2>/dev/null
is "$got" 0 "a message that arrives during IDLE is offered"
ok "... at once, not after poll (${took}s after delivery; poll is 20s)" \
    test "$took" -lt 10

# ---- a server without IDLE, MOVE and UIDPLUS ----------------------------------------
read -r IMAP2 _ _ _ LMTP2 < <(PEER_DOVECOT_EXTRA="imap_capability = IMAP4rev1 LITERAL+" \
    peer_dovecot "$U" "$T/imap.pass")
printf 'old style\n' >"$T/b6"
LMTP=$LMTP2 send old@example.jp "old server" UTF-8 8bit "$T/b6"
LMTP=$LMTP2 send old@example.jp "old server 2" UTF-8 8bit "$T/b6"
inbox old imap "$IMAP2" poll=1s mailbox=INBOX done_mailbox=処理済み
dump old
is "$rc/$(lines)" "0/2" "IMAP without IDLE, MOVE, UIDPLUS: offered (then a sleep)"
is "$(peer_dovecot_count "$U" INBOX "$IMAP2")" 0 \
    "COPY, STORE \\Deleted and EXPUNGE emptied the INBOX"
is "$(find "$(dirname "$(peer_dovecot_log "$IMAP2")")/mail/$U/Maildir" -path '*/.&*/cur/*' -o -path '*/.&*/new/*' | wc -l)" \
    2 "into a done_mailbox with a Japanese name (modified UTF-7)"
dump old
is "$rc/$(lines)" "0/0" "old server: nothing offered twice"

# ---- POP3 ------------------------------------------------------------------------
printf 'POP3 で確認\n' >"$T/b7"
send pop@example.jp "pop one" UTF-8 8bit "$T/b7"
printf '%s\n' "$(printf 'ポップ２' | iconv -t ISO-2022-JP)" >"$T/b8"
send pop@example.jp "=?ISO-2022-JP?B?$(b64 ISO-2022-JP 'ポップ 二')?=" ISO-2022-JP 7bit "$T/b8"
is "$(peer_dovecot_count "$U" INBOX "$GOOD")" 2 "two messages for POP3"
inbox pop pop3 "$POP3"
dump pop -n
is "$rc/$(lines)" "0/2" "POP3 STLS (verified): two offered"
like "$(col 1 | head -1)" '^[0-9a-fA-F]{16}$' "POP3: the key is the UIDL"
is "$(col 4 | tr '\n' '|')" "pop one|ポップ 二|" "POP3: the Subjects decode"
is "$(col 5 | tr '\n' '|')" "POP3 で確認|ポップ２|" "POP3: the texts decode"
is "$(peer_dovecot_count "$U" INBOX "$GOOD")" 2 "POP3: unacknowledged messages stay"
dump pop -s one
is "$(col 6 | tr '\n' ' ')" "ack keep " "POP3: one acknowledged"
is "$(peer_dovecot_count "$U" INBOX "$GOOD")" 1 "POP3: the acknowledged one is deleted (QUIT)"
inbox pops pop3 "$POP3S" tls=tls
dump pops
is "$rc/$(col 4)" "0/ポップ 二" "POP3S: the one left offered and acknowledged"
dump pops
is "$rc/$(lines)/$(peer_dovecot_count "$U" INBOX "$GOOD")" "0/0/0" "POP3: nothing offered twice"

# ---- refused: wrong password, wrong name, unknown CA ------------------------------
inbox badpw imap "$IMAP" password_file=bad.pass
dump badpw
is "$rc" 1 "a wrong password: poll() fails"
like "$(cat "$T/err")" "LOGIN refused: .*[Aa]uthentication failed" "... saying LOGIN was refused"
inbox badpop pop3 "$POP3" password_file=bad.pass
dump badpop
like "$rc $(cat "$T/err")" "^1 .*PASS refused" "POP3: a wrong password: PASS refused"

read -r WIMAP WPOP3 WIMAPS WPOP3S _ < <(peer_dovecot "$U" "$T/imap.pass" wrong)
WLOG=$(peer_dovecot_log "$WIMAP")
for kind in "imap $WIMAP starttls" "imap $WIMAPS tls" "pop3 $WPOP3 starttls" \
    "pop3 $WPOP3S tls"; do
	set -- $kind
	inbox "wrong-$1-$3" "$1" "$2" tls="$3"
	dump "wrong-$1-$3"
	is "$rc $(cat "$T/err")" \
	    "1 inbox_dump: poll: TLS: certificate does not match host 127.0.0.1" \
	    "$1 tls=$3, certificate for wrong.example.net: refused"
done
sleep 0.5
ok "the server saw no login attempt (no user name, no AUTH, no LOGIN)" \
    bash -c "! grep -qE 'user=<$U>|auth failed|Login:' '$WLOG'"
like "$(grep -c 'no auth attempts' "$WLOG")" '^[4-9]$' \
    "... four connections closed with no auth attempts"
inbox noverify imap "$WIMAP" tls_verify=no
dump noverify
is "$rc" 0 "tls_verify = no accepts it (for tests only)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$T/tls/other.key" -out "$T/tls/other-ca.pem" -days 2 \
    -subj "/CN=another CA" 2>/dev/null
inbox otherca imap "$GOOD" ca_file=tls/other-ca.pem
dump otherca
like "$rc $(cat "$T/err")" "^1 .*TLS: certificate verification failed: unable to get local issuer certificate" \
    "a certificate from an unknown CA: refused"
peer_dovecot "$U" "$T/imap.pass" none >"$T/nossl.ports"
read -r NIMAP NPOP3 _ <"$T/nossl.ports"
inbox nostarttls imap "$NIMAP"
dump nostarttls
like "$rc $(cat "$T/err")" "^1 .*TLS: STARTTLS" "tls = starttls to a server without STARTTLS: refused"
inbox nostls3 pop3 "$NPOP3"
dump nostls3
like "$rc $(cat "$T/err")" "^1 .*TLS: server does not offer STLS" "POP3 without STLS: refused"
ok "no login reached the server without TLS" \
    bash -c "! grep -qE 'user=<$U>' '$(peer_dovecot_log "$NIMAP")'"

inbox down imap "$(peer_free_port)"
dump down
like "$rc $(cat "$T/err")" "^1 .*connect: Connection refused" "nothing listening: connect fails"

# ---- the password --------------------------------------------------------------------
ok "the password appears in no output and no log" \
    bash -c "! grep -rqsF '$PW' '$T/all' '$T/idle.out' '$T/idle.err' '$T/swaks.log' \
    \$(find '$T/peers' -name '*.log')"
