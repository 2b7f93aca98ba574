#!/bin/bash
# 16-mail-confirm: recipients confirm by replying, with no operator.  An
# alert goes to 50 recipients through the real daemon; 30 reply the way
# people do (UTF-8, ISO-2022-JP, Shift_JIS; the code as shown, in lower
# case without its hyphen, or only In-Reply-To), delivered into a real
# Dovecot by swaks over LMTP; dengond reads them over IMAP (STARTTLS,
# verified).  Exactly those 30 are confirmed within one poll interval, the
# other 20 get the reminder; forged replies confirm nothing; a reply read
# again after a SIGKILL is not counted twice; an IMAP server with the wrong
# certificate is refused before the password is sent.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
t_contacts 50
M=$T/mail
U=replies
printf 's3cret-imap-pw\n' >"$T/imap.pass"
port=$(peer_aiosmtpd "$M") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
read -r IMAP POP3 IMAPS POP3S LMTP < <(peer_dovecot "$U" "$T/imap.pass")
[ -n "$LMTP" ] || { echo "not ok 1 - dovecot did not start"; exit 1; }
set_key "channel mail" port "$port"
set_key "policy standard" repeat 20s
set_key "policy standard" expire 10m
cat >>"$T/dengon.conf" <<CONF

[inbox replies]
type          = imap
host          = 127.0.0.1
port          = $IMAP
tls           = starttls
ca_file       = $T/tls/ca.pem
user          = $U
password_file = $T/imap.pass
mailbox       = INBOX
done_mailbox  = dengon-done
poll          = 2s
CONF
dg init
dg contacts import
ok "dengond starts" d_start
dg send --to all --subject "断水のお知らせ"
id=$(head -1 "$T/out")
t_sent=$(date +%s)
ok "the alert reaches all 50" wait_until 20 state_is "$id" sent 50
dg status "$id" --json --show-codes
"$PY" - "$T/out" "$M" >"$T/dlv" <<'PYEOF'
import email, email.policy, json, mailbox, sys
d = json.load(open(sys.argv[1]))
box = mailbox.Maildir(sys.argv[2], factory=None, create=False)
mid = {}
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    mid[m["To"].addresses[0].addr_spec] = str(m["Message-ID"])
for x in d["deliveries"]:
    a = x["recipient"] + "@example.jp"
    print(x["recipient"], a, x["code"], mid[a])
PYEOF

# reply N CHARSET CTE SUBJECT BODY [headers...] - recipient rNNNN replies.
reply() {
	local r=$1 cs=$2 cte=$3 subj=$4 body=$5
	shift 5
	local addr mid
	addr=$(awk -v r="$r" '$1 == r { print $2 }' "$T/dlv")
	mid=$(awk -v r="$r" '$1 == r { print $4 }' "$T/dlv")
	printf '%s' "$body" >"$T/body"
	swaks --server 127.0.0.1 --port "$LMTP" --protocol LMTP --to "$U" \
	    --from "$addr" --h-From "$addr" --header "Subject: $subj" \
	    --add-header "MIME-Version: 1.0" \
	    --add-header "Content-Type: text/plain; charset=$cs" \
	    --add-header "Content-Transfer-Encoding: $cte" \
	    --add-header "In-Reply-To: $mid" --add-header "References: $mid" \
	    "$@" --body "@$T/body" >>"$T/swaks.log" 2>&1
}
code_of() { awk -v r="$1" '$1 == r { print $3 }' "$T/dlv"; }
b64() { printf '%s' "$2" | iconv -f UTF-8 -t "$1" | base64 -w0; }
lower() { echo "$1" | tr -d '-' | tr 'A-Z' 'a-z'; }

sent_ok=1
for i in $(seq 1 10); do	# UTF-8, the code as shown, in the Subject
	r=$(printf 'r%04d' "$i")
	reply "$r" UTF-8 8bit "Re: 断水のお知らせ [確認コード: $(code_of "$r")]" \
	    $'確認しました。\n' || sent_ok=0
done
for i in $(seq 11 20); do	# ISO-2022-JP, the code in the text, lower case
	r=$(printf 'r%04d' "$i")
	body=$(printf '了解しました。コード %s\n' "$(lower "$(code_of "$r")")" |
	    iconv -t ISO-2022-JP)
	reply "$r" ISO-2022-JP 7bit "=?ISO-2022-JP?B?$(b64 ISO-2022-JP 'Re: 断水のお知らせ')?=" \
	    "$body" || sent_ok=0
done
for i in $(seq 21 25); do	# Shift_JIS, base64, ABCD EFGH with a space
	r=$(printf 'r%04d' "$i")
	c=$(code_of "$r")
	body=$(printf '①確認しました～\n%s %s\n' "${c%-*}" "${c#*-}" | iconv -t CP932 | base64)
	reply "$r" Shift_JIS base64 "=?Shift_JIS?B?$(b64 CP932 '確認済')?=" "$body" ||
	    sent_ok=0
done
for i in $(seq 26 30); do	# no code at all: only In-Reply-To names our message
	r=$(printf 'r%04d' "$i")
	reply "$r" UTF-8 8bit "Re: 断水のお知らせ" $'受け取りました\n' || sent_ok=0
done
# forgeries: random codes, and an automatic reply quoting r0031's code
for i in 1 2 3; do
	printf 'Subject: Re: [確認コード: %04X-Z%03d]\nFrom: attacker@evil.example\n\nguess\n' \
	    $((RANDOM % 4096)) "$i" >"$T/forged"
	swaks --server 127.0.0.1 --port "$LMTP" --protocol LMTP --to "$U" \
	    --from attacker@evil.example --data "@$T/forged" >>"$T/swaks.log" 2>&1
done
reply r0031 UTF-8 8bit "自動応答: Re: 断水 [確認コード: $(code_of r0031)]" \
    $'不在です\n' --add-header "Auto-Submitted: auto-replied" || sent_ok=0
is "$sent_ok" 1 "34 replies delivered into Dovecot by swaks (LMTP)"
t0=$(date +%s)
ok "the 30 replies are confirmed within one poll interval (2 s) and a margin" \
    wait_until 6 state_is "$id" confirmed 30
echo "# confirmed after $(( $(date +%s) - t0 )) s"
sleep 1
is "$(count_state "$id" confirmed)" 30 "exactly 30: forged and automatic replies confirmed nothing"
is "$(sql "SELECT group_concat(recipient) FROM delivery WHERE alert='$id' AND state='confirmed' AND CAST(substr(recipient, 2) AS INTEGER) > 30")" "" \
    "none of r0031-r0050 is confirmed"
is "$(sql "SELECT count(*) FROM confirmation c JOIN delivery d ON d.id = c.delivery WHERE d.alert='$id' AND c.via='mail' AND c.foreign_sender = 0")" 30 \
    "all 30 by mail from the recipient's own address"
bad_ge() { [ "$(sql "SELECT count(*) FROM bad_code WHERE origin='$1'")" -ge "$2" ]; }
done_ge() { [ "$(peer_dovecot_count "$U" dengon-done)" -ge "$1" ]; }
ok "the forged codes are recorded against their sender" wait_until 5 bad_ge attacker@evil.example 3
ok "processed replies are moved to dengon-done" wait_until 5 done_ge 34
is "$(peer_dovecot_count "$U" INBOX)" 0 "nothing is left in the INBOX"
dg channels --json
is "$(json '[c["state"] for c in d["channels"]]')" "['up']" "channels: mail up"

# The reminder goes to the 20 who did not confirm, 20 s after acceptance.
ok "the 20 unconfirmed get the reminder" wait_until 30 maildir_ge "$M" 70
sleep 1
is "$(maildir_count "$M")" 70 "and only they"

# SIGKILL during inbox processing: replies for r0031..r0040 arrive and the
# daemon is killed while reading them; after the restart each is counted
# once.
for i in $(seq 32 41); do
	r=$(printf 'r%04d' "$i")
	reply "$r" UTF-8 8bit "Re: [確認コード: $(code_of "$r")]" $'OK\n'
done
sleep 1.5
kill -9 "$DPID"; wait "$DPID" 2>/dev/null
pkill -9 -f "dengond -c $T/dengon.conf" 2>/dev/null
ok "dengond restarts after SIGKILL" d_start
ok "all 10 late replies end up confirmed" wait_until 10 state_is "$id" confirmed 40
is "$(sql "SELECT count(*) FROM confirmation c JOIN delivery d ON d.id = c.delivery WHERE d.alert='$id'")" 40 \
    "no confirmation doubled: one record each"
is "$(sql "SELECT count(*) FROM (SELECT delivery FROM confirmation WHERE duplicate = 0 GROUP BY delivery HAVING count(*) > 1)")" 0 \
    "no delivery confirmed twice"
d_stop
ok "the IMAP password never appears in the log" bash -c "! grep -qF s3cret-imap-pw '$T/dengond.log'"

# An IMAP server whose certificate is for another name: refused before LOGIN.
read -r WIMAP _ < <(peer_dovecot "$U" "$T/imap.pass" wrong)
set_key "inbox replies" port "$WIMAP"
ok "dengond starts on the wrong server" d_start
ok "the inbox is marked down with the TLS reason" wait_until 10 bash -c \
    "'$DENGON_BIN/dengon' -c '$T/dengon.conf' channels | grep -q 'inbox:replies.*down.*\\(TLS\\|certificate\\)'"
d_stop
ok "the wrong server saw no login" bash -c "! grep -qE 'Login: user=|auth failed' '$(peer_dovecot_log "$WIMAP")'"
ok "the password never appears in the log" bash -c "! grep -qF s3cret-imap-pw '$T/dengond.log'"
