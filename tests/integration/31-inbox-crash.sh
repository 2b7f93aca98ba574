#!/bin/bash
# sanitizer: skip
# 31-inbox-crash: SIGKILL dengond while its inbox reader works through
# replies, several times, restarting it at once each time as a supervisor
# would.  A SIGKILL models a process crash, not a power cut: the kernel
# keeps what was written (the queue's WAL, Dovecot's mailbox), so this
# test proves nothing about fsync ordering after a loss of power.
#
# An alert goes by mail to N recipients through aiosmtpd; once all are
# sent the daemon stops.  N replies (each from the recipient's own
# address, its code as XXXX-XXXX in the Subject for odd recipients, in
# the text for even ones) and a few noise messages (a newsletter, a
# message without Message-ID, an automatic reply quoting a valid code, a
# wrong code from a stranger, a delivery report for an attempt that does
# not exist) go into a throwaway Dovecot's INBOX by LMTP in one session.
# dengond then starts with an [inbox replies] on IMAP (STARTTLS, verified,
# poll 1s).  When dengond dies its reader (`dengond -C inbox:replies`, a
# program of its own) gets SIGTERM (PR_SET_PDEATHSIG) and, having no
# handler, ends where it stands.
#
# The reader takes about a millisecond per reply: a kill 0.2-1 s after a
# restart would find the INBOX done.  So each kill is placed by progress:
# a watcher, ready before dengond starts, polls the number of
# confirmations every millisecond and SIGKILLs dengond 0-2 ms after the
# new reader has confirmed a random 2-24 more replies, in the middle of
# its pass (FETCH, record, MOVE).  Between a kill and the restart an
# operator runs `dengon status` once.  What must hold:
#  - the queue passes PRAGMA integrity_check after every kill, after every
#    restart and at the end;
#  - the kills fall while replies are being processed (most of them before
#    the last reply is confirmed);
#  - every reply confirmed its delivery exactly once: N deliveries
#    confirmed, one confirmation row each (none recorded as a duplicate,
#    none from a foreign address), N "confirmed" events and no "confirmed
#    again"; a reply read again after a kill (recorded, then killed before
#    the reader moved it) is recognised by its inbound record (the
#    confirmation and that record share a transaction, queue_confirm());
#  - each message processed is recorded once in `inbound` (N replies plus
#    the noise, each noise message with the kind it was ignored as), and
#    no noise message confirmed anything;
#  - nothing is left in the INBOX: every message is in done_mailbox, once;
#  - no reader outlives its daemon.
# The stranger's wrong code is counted once however often the message is
# read: queue_bad_code() records the inbound message in the same
# transaction (a reader killed between the two used to count it again).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
KILLS=${DENGON_INBOX_CRASH_KILLS:-5}
N=${DENGON_INBOX_CRASH_N:-150}
NOISE=5
t_setup
t_contacts $N
M=$T/mail
U=replies
printf 'inbox-crash-pw\n' >"$T/imap.pass"
port=$(peer_aiosmtpd "$M") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
read -r IMAP _ _ _ LMTP < <(peer_dovecot "$U" "$T/imap.pass")
[ -n "${LMTP:-}" ] || { echo "not ok 1 - dovecot did not start"; exit 1; }
set_key "channel mail" port "$port"
set_key relay retry_min 1s	# a reader that ends on an error restarts
set_key relay retry_max 2s	# after retry_min (30 s by default)
dg init
exits 0 "$N recipients import" contacts import
exits 0 "the alert is accepted" send --to all --subject "断水のお知らせ" --tlp GREEN
A=$(head -1 "$T/out")
ok "dengond starts (no inbox yet)" d_start
ok "the alert reaches all $N by mail" wait_until 60 state_is "$A" sent $N
d_stop

# The replies and the noise, into the INBOX by LMTP (one session).
sql "SELECT recipient, code FROM delivery WHERE alert = '$A' ORDER BY recipient" \
    >"$T/codes"
"$PY" - "$T/codes" "$LMTP" "$U" >"$T/lmtp.log" 2>&1 <<'PYEOF'
import email.message, email.utils, smtplib, sys, time
codes = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
code = dict(codes)
port, user = int(sys.argv[2]), sys.argv[3]

def fmt(c):
    return c[:4] + "-" + c[4:]

def msg(frm, subject, text, mid=True, **hdr):
    m = email.message.EmailMessage()
    m["From"] = frm
    m["To"] = "Test Relay <alerts@relay.example.jp>"
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(localtime=True)
    if mid:
        m["Message-ID"] = mid if isinstance(mid, str) else \
            email.utils.make_msgid(domain="example.jp")
    for k, v in hdr.items():
        m[k.replace("_", "-")] = v
    m.set_content(text, charset="utf-8", cte="8bit")
    return m

def dsn():
    return email.message_from_string(
        "From: MAILER-DAEMON@mta.example.net\n"
        "To: alerts@relay.example.jp\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Message-ID: <noise.dsn@mta.example.net>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        " boundary=\"b1\"\n\n"
        "--b1\nContent-Type: text/plain\n\n"
        "Your message could not be delivered.\n\n"
        "--b1\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mta.example.net\n"
        "Original-Envelope-Id: 987654321\n\n"
        "Final-Recipient: rfc822; gone@example.net\n"
        "Action: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\n\n"
        "--b1--\n")

noise = {
    20: msg("News <news@example.net>", "今月のお知らせ",
            "定期購読のお知らせです。\n", mid="<noise.news@example.net>"),
    50: msg("someone@example.net", "件名なし", "Message-ID のないメール\n",
            mid=False),
    80: msg("r0002@example.jp", "自動応答: Re: 断水のお知らせ [確認コード: %s]"
            % fmt(code["r0002"]), "不在です。\n",
            mid="<noise.auto@example.jp>", Auto_Submitted="auto-replied"),
    110: msg("stranger@evil.example", "Re: [確認コード: 7Q2M-K9XH]",
             "guess\n", mid="<noise.forged@evil.example>"),
    140: dsn(),
}
out = []
for i, (r, c) in enumerate(codes, 1):
    addr = "%s@example.jp" % r
    frm = email.utils.formataddr(("受信者 %d" % i, addr))
    mid = "<reply.%s@example.jp>" % r
    if i % 2:
        m = msg(frm, "Re: 断水のお知らせ [確認コード: %s]" % fmt(c),
                "確認しました。\n", mid=mid)
    else:
        m = msg(frm, "Re: 断水のお知らせ",
                "了解しました。\n確認コード %s\n" % fmt(c), mid=mid)
    out.append((addr, m))
    if i in noise:
        out.append(("noise@example.net", noise.pop(i)))
for m in noise.values():
    out.append(("noise@example.net", m))
s = smtplib.LMTP("127.0.0.1", port)
n = 0
for frm, m in out:
    s.sendmail(frm, [user], m.as_bytes())
    n += 1
s.quit()
print(n)
PYEOF
is "$(tail -1 "$T/lmtp.log")" $((N + NOISE)) "$N replies and $NOISE noise messages delivered into Dovecot by LMTP"
wait_until 10 test "$(peer_dovecot_count "$U" INBOX)" -ge $((N + NOISE))
is "$(peer_dovecot_count "$U" INBOX)" $((N + NOISE)) "the INBOX holds them all"

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
poll          = 1s
CONF

confirmed() { sql "SELECT count(*) FROM confirmation"; }
# start_and_kill TARGET JITTER_MS - start dengond as d_start does, with a
# watcher (started first, so that it is ready before the reader is) that
# SIGKILLs it JITTER_MS after the queue holds TARGET confirmations (or all
# N, or after 15 s); $c is the count when it struck.  The count is polled
# every millisecond: the reader takes about one per reply.
start_and_kill() {
	rm -f "$T/dpid" "$T/watch.ready" "$T/dengon.sock"
	"$PY" - "$T/queue.db" "$T/dpid" "$1" "$2" "$T/watch.ready" \
	    >"$T/watch.out" <<'PYEOF' &
import os, signal, sqlite3, sys, time
db, pidfile, target, jitter, ready = sys.argv[1], sys.argv[2], \
    int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
con = sqlite3.connect(db, timeout=5)
count = lambda: con.execute("SELECT count(*) FROM confirmation").fetchone()[0]
count()
open(ready, "w").close()
end = time.monotonic() + 15
while not os.path.exists(pidfile) and time.monotonic() < end:
    time.sleep(0.001)
pid = int(open(pidfile).read())
try:
    while count() < target and time.monotonic() < end:
        time.sleep(0.001)
    time.sleep(jitter / 1000)
finally:
    os.kill(pid, signal.SIGKILL)
print(count())
con.close()
PYEOF
	local wpid=$!
	wait_until 10 test -e "$T/watch.ready"
	"$DENGON_BIN/dengond" -c "$T/dengon.conf" -d >>"$T/dengond.log" 2>&1 &
	DPID=$!
	t_cleanup_add "kill -9 $DPID"
	echo "$DPID" >"$T/dpid.new" && mv "$T/dpid.new" "$T/dpid"
	wait_until 10 test -S "$T/dengon.sock" || started=0
	# after the restart (its recovery done), beside the running reader
	[ "$(sql 'PRAGMA integrity_check')" = ok ] || integrity=bad
	wait "$DPID" 2>/dev/null	# (first: no "Killed" notice)
	wait "$wpid"
	c=$(cat "$T/watch.out")
}

integrity=ok
started=1
midrun=0
status_ok=0
t0=$(date +%s%N)
for k in $(seq "$KILLS"); do
	c0=$(confirmed)
	delta=$((2 + RANDOM % 23))
	jitter=$((RANDOM % 3))
	start_and_kill $((c0 + delta)) "$jitter"
	[ "$c" -lt $N ] && midrun=$((midrun + 1))
	echo "# kill $k (at $c0 + $delta confirmations + $jitter ms): $c of $N confirmed, $(peer_dovecot_count "$U" INBOX) left in the INBOX"
	# an operator looks while no daemon runs (the killed daemon's reader
	# may still be finishing the message in hand)
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" status "$A" >/dev/null 2>&1 &&
	    status_ok=$((status_ok + 1))
	[ "$(sql 'PRAGMA integrity_check')" = ok ] || integrity=bad
done
is "$started" 1 "dengond starts each time (its control socket appears)"
ok "dengond starts after the last kill" d_start
[ "$(sql 'PRAGMA integrity_check')" = ok ] || integrity=bad
is "$integrity" ok "the queue passes integrity_check after every kill and every restart"
is "$status_ok" "$KILLS" "dengon status works between each kill and restart"
ok "the kills came while replies were processed ($midrun of $KILLS before the end)" \
    test "$midrun" -ge 3
inbox_empty() { [ "$(peer_dovecot_count "$U" INBOX)" = 0 ]; }
ok "every delivery ends up confirmed" wait_until 60 state_is "$A" confirmed $N
ok "and the INBOX empties" wait_until 20 inbox_empty
t1=$(date +%s%N)
echo "# $(( (t1 - t0) / 1000000 )) ms from the first start to the last reply processed"
ok "dengond stops" d_stop
sleep 0.3
orphans=0
for pid in $(sed -n 's/.*inbox replies: reader \([0-9]*\) started.*/\1/p' "$T/dengond.log"); do
	# alive, not a zombie, and ours
	st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
	if [ -n "$st" ] && [ "$st" != Z ] &&
	    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$T/dengon.conf"; then
		orphans=$((orphans + 1))
		echo "# reader $pid still runs: $(tr '\0' ' ' <"/proc/$pid/cmdline") (state $st)"
	fi
done
is "$orphans" 0 "no inbox reader outlives its daemon"
is "$(sql 'PRAGMA integrity_check')" ok "the queue passes integrity_check at the end"

is "$(sql "SELECT count(*) FROM confirmation")" $N "$N confirmation rows in all"
is "$(sql "SELECT count(*) FROM (SELECT delivery FROM confirmation GROUP BY delivery HAVING count(*) <> 1)")" 0 \
    "each delivery has exactly one confirmation"
is "$(sql "SELECT count(*) FROM confirmation WHERE duplicate = 0 AND via = 'mail' AND foreign_sender = 0 AND late = 0")" $N \
    "all first confirmations, by mail, from the recipient's own address"
is "$(sql "SELECT count(*) FROM event WHERE what = 'confirmed'")" $N "$N 'confirmed' events"
is "$(sql "SELECT count(*) FROM event WHERE what = 'confirmed again'")" 0 "no 'confirmed again' event"
is "$(sql "SELECT count(*) FROM inbound WHERE inbox = 'replies'")" $((N + NOISE)) \
    "each message processed is recorded once in inbound ($N + $NOISE)"
is "$(sql "SELECT count(*) FROM inbound WHERE kind = 'reply' AND result = 'confirmation' AND message_id LIKE '<reply.r%@example.jp>'")" $N \
    "the $N replies are recorded as confirmations"
kind_of() { sql "SELECT kind FROM inbound WHERE message_id = '<$1>'"; }
is "$(kind_of noise.news@example.net)" other "the newsletter is ignored (other)"
is "$(sql "SELECT count(*) FROM inbound WHERE message_id LIKE 'sha256:%' AND kind = 'other'")" 1 \
    "the message without Message-ID is ignored once (other, keyed by its digest)"
is "$(kind_of noise.auto@example.jp)" auto "the automatic reply is ignored (auto)"
is "$(kind_of noise.forged@evil.example)" reply "the stranger's wrong code is ignored (reply)"
is "$(kind_of noise.dsn@mta.example.net)" dsn "the report on an unknown attempt is ignored (dsn)"
is "$(sql "SELECT count(*) FROM confirmation WHERE origin LIKE '%evil.example%' OR origin LIKE '%example.net%'")" 0 \
    "no noise message confirmed anything"
is "$(sql "SELECT count(*) FROM bad_code WHERE origin = 'stranger@evil.example'")" 1 \
    "the stranger's wrong code is counted once"
is "$(peer_dovecot_count "$U" INBOX)" 0 "nothing is left in the INBOX"
is "$(peer_dovecot_count "$U" dengon-done)" $((N + NOISE)) "every message is in dengon-done, once"
echo "# replies read again after a kill (already processed): $(grep -c ': already processed' "$T/dengond.log")"
echo "# readers started: $(grep -c 'inbox replies: reader [0-9]* started' "$T/dengond.log"), ended on an error: $(grep -c 'inbox replies: reader [0-9]* ended (status' "$T/dengond.log")"
