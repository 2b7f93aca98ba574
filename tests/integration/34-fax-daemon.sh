#!/bin/bash
# sanitizer: skip
# 34-fax-daemon: the fax channel end to end, through the real daemon, a
# real HylaFAX (faxq, hfaxd on loopback, faxgetty) and virtual Class 1 fax
# modems (tests/fax/fax_vmodem.c: spandsp's T.31 on a pty, its line an
# audio loop to a spandsp fax machine that stores what it receives).
#  - the bar: a two-page Japanese alert to 3 numbers, one of them busy on
#    the first call, is received as 2 correct pages by each (compared
#    pixel by pixel with what `dengon render -o` draws); each delivery is
#    `delivered` with the pages confirmed as evidence in status --json;
#    the busy one was a tempfail retried by dengon (HylaFAX is told to
#    dial once);
#  - no answer and a silent line are tempfails (the silent one within the
#    modem's timeout), retried; a cancel removes the queued job;
#  - HylaFAX unreachable: the channel is down, the delivery waits;
#  - TLP:RED: the fax carries the notice, never the body.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
if [ "$(id -u)" != 0 ]; then
	skip "fax through HylaFAX" "HylaFAX needs root (it chroots and runs as uucp)"
	exit 0
fi
hport=$(peer_hylafax hf) || { echo "not ok 1 - HylaFAX did not start"; exit 1; }
for m in v1 v2 v3 v4 v5 v6; do
	link=$(peer_fax_vmodem "$m") || { echo "not ok 1 - fax modem $m did not start"; exit 1; }
	peer_hylafax_modem hf "$link" >/dev/null ||
	    { echo "not ok 1 - faxgetty on $m is not ready"; exit 1; }
done
printf '%s\n' "$PEER_HYLAFAX_PASSWORD" >"$T/hf.pass"
down_port=$(peer_free_port)
set_key relay retry_min 2s
set_key relay retry_max 4s
set_key "policy standard" steps "fax"
cat >>"$T/dengon.conf" <<CONF

[channel fax]
type          = fax
host          = 127.0.0.1
port          = $hport
user          = dengon
password_file = hf.pass
resolution    = fine
timeout       = 3m
concurrency   = 4
confirm_to    = 電話 03-1234-5678 / replies@bureau.example.jp

[channel faxdown]
type          = fax
host          = 127.0.0.1
port          = $down_port
user          = dengon
password_file = hf.pass

[policy down]
steps         = faxdown
expire        = 1h
CONF
cat >"$T/contacts.csv" <<'CSV'
id,name,org,fax
f1,受信者 一,第一水道,+81312340001
f2,受信者 二,第二水道,+81996123456
f3,受信者 三,第三水道,+81312340003
f4,受信者 四,第四水道,+81997000001
f5,受信者 五,第五水道,+81998000001
f6,受信者 六,第六水道,+81997000002
CSV
dg init
exits 0 "contacts import" contacts import
ok "dengond starts" d_start

# Two pages at fine resolution: a long Japanese body.
{
	echo "本日未明、管内の浄水場で停電が発生しました。現在、非常用発電機により運転を継続しています。"
	for i in $(seq 1 24); do
		echo "$i. 各事業者におかれましては、取水・浄水・配水の各施設の状況を確認し、異常の有無を本センターへ報告してください（報告期限：本日正午）。"
	done
	echo "以上。"
} >"$T/body.txt"
exits 0 "send the alert to f1, f2 and f3" send --to f1,f2,f3 --tlp AMBER \
    --subject "【重要】浄水場の停電について（第1報）" --body-file "$T/body.txt"
A=$(head -1 "$T/out")
# At the same time, a line that does not answer and one that answers with
# silence (no fax tones: the modem gives up after its S7 timeout).
exits 0 "send an alert to f5 (no answer) and f6 (silent)" send --to f5,f6 \
    --subject "応答なし試験" --body-file "$T/body.txt"
B=$(head -1 "$T/out")
exits 0 "render f1's fax as text" render "$A" --recipient f1 --channel fax
like "$(cat "$T/out")" "2 pages, A4, fine" "the alert takes two pages"
like "$(cat "$T/out")" "dialled 0312340001" "dialled as a national number"
for r in f1 f2 f3; do
	exits 0 "render $r's pages to TIFF" render "$A" --recipient "$r" --channel fax -o "$T/$r.tif"
done
exits 0 "and to PNG" render "$A" --recipient f1 --channel fax -o "$T/f1.png"
is "$(head -c 8 "$T/f1.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "a PNG file"

ok "all three are delivered (every page confirmed by the far end)" \
    wait_until 240 state_is "$A" delivered 3
sql "SELECT d.recipient, a.outcome, a.evidence, a.error FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A' ORDER BY a.id" >"$T/attempts.txt"
sed 's/^/# /' "$T/attempts.txt"
is "$(grep -c '|ok|.*pages 2/2' "$T/attempts.txt")" 3 "three attempts ok with pages 2/2"
like "$(grep '^f2|tempfail' "$T/attempts.txt" | head -1)" "[Bb]usy" \
    "f2's first call was busy: a tempfail"
# (a modem's line is busy on its own first call to that number: another
# modem may take the retry and hear busy once more)
is "$(grep '^f2|' "$T/attempts.txt" | tail -1 | cut -d'|' -f2)" ok \
    "f2 was called again by dengon, and the fax went through"
is "$(grep '^f2|' "$T/attempts.txt" | grep -v '|ok|' | grep -vc 'Busy signal')" 0 \
    "every call before was busy"
is "$(grep -c '^f[13]|ok|' "$T/attempts.txt")" 2 "f1 and f3 each sent once"
like "$(sql "SELECT why FROM event WHERE alert = '$A' AND what = 'delivered' LIMIT 1")" \
    "pages 2/2" "the event log says why it is delivered"

# What each number received: 2 pages, equal to what dengon rendered.
for r in f1 f2 f3; do
	num=$(sql "SELECT fax FROM delivery WHERE alert = '$A' AND recipient = '$r'")
	dial=0${num#+81}
	rx=$(ls "$T"/peers/v?.rx/*-"$dial".tif 2>/dev/null | tail -1)
	ok "$r ($dial) received a fax" test -n "$rx"
	if [ -n "$rx" ]; then
		ok "$r: two pages, each as dengon rendered it (pixels)" \
		    "$DENGON_BIN/../tools/fax_compare" "$T/$r.tif" "$rx"
	fi
done
exits 0 "status --json" status "$A" --json
is "$(json "sum(1 for r in d['deliveries'] for a in r['attempts'] if a['outcome'] == 'ok' and 'pages 2/2' in (a['evidence'] or ''))")" 3 \
    "status --json shows pages 2/2 as each fax's evidence"
ok "HylaFAX's done queue is left empty (dengon removes finished jobs)" \
    wait_until 10 bash -c "! ls '$T/peers/hf/doneq' | grep -q '^q[0-9]'"

# --- no answer, a silent line; a cancel removes the queued job --------------
first_fail() {	# RECIPIENT: the error of its first finished attempt
	sql "SELECT a.error FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND d.recipient = '$1' AND a.finished IS NOT NULL ORDER BY a.id LIMIT 1"
}
ok "f5's call is not answered: a tempfail" wait_until 60 bash -c \
    "sqlite3 '$T/queue.db' \"SELECT outcome FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND d.recipient = 'f5' AND a.finished IS NOT NULL\" | grep -q tempfail"
like "$(first_fail f5)" "[Aa]nswer" "HylaFAX says no answer"
ok "f5 is called again by dengon" wait_until 60 bash -c \
    "[ \$(sqlite3 '$T/queue.db' \"SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND d.recipient = 'f5'\") -ge 2 ]"
ok "f6's silent line fails: a tempfail" wait_until 120 bash -c \
    "sqlite3 '$T/queue.db' \"SELECT outcome FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND d.recipient = 'f6' AND a.finished IS NOT NULL\" | grep -q tempfail"
secs=$(sql "SELECT (min(a.finished) - al.created) / 1000 FROM attempt a JOIN delivery d ON d.id = a.delivery JOIN alert al ON al.id = d.alert WHERE d.alert = '$B' AND d.recipient = 'f6' AND a.finished IS NOT NULL")
echo "# f6: the silent line failed ${secs}s after acceptance: $(first_fail f6)"
ok "within the modem's timeout (60 s) and a margin: ${secs}s" test "$secs" -le 100
ok "f6 is called again, the job is in HylaFAX's queue" wait_until 30 bash -c \
    "ls '$T/peers/hf/sendq' | grep -q '^q[0-9]' && sqlite3 '$T/queue.db' \"SELECT 1 FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND d.recipient = 'f6' AND a.finished IS NULL\" | grep -q 1"
exits 0 "cancel B" cancel "$B" --reason "試験終了"
ok "the jobs leave HylaFAX's queue" wait_until 15 bash -c \
    "! ls '$T/peers/hf/sendq' | grep -q '^q[0-9]'"
ok "the attempt in flight says it was withdrawn" wait_until 10 bash -c \
    "sqlite3 '$T/queue.db' \"SELECT error FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B'\" | grep -q withdrawn"
is "$(count_state "$B" cancelled)" 2 "B's deliveries are cancelled"

# --- HylaFAX unreachable --------------------------------------------------------
exits 0 "send through a fax channel whose server is down" send --to f1 --policy down \
    --subject "試験2" --body-file "$T/body.txt"
C=$(head -1 "$T/out")
ok "the attempt is a tempfail (connection refused)" wait_until 15 bash -c \
    "sqlite3 '$T/queue.db' \"SELECT error FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$C'\" | grep -qi refused"
exits 0 "dengon channels" channels
like "$(grep '^faxdown' "$T/out")" "down" "the channel is down"
is "$(state_of "$C" f1)" pending "the delivery waits, not lost"

# --- TLP:RED: the notice, never the body ----------------------------------------
printf '極秘：制御系の脆弱性の詳細。\n' >"$T/red.txt"
exits 0 "send a RED alert (policy down: it is only rendered)" send --to f1 --policy down \
    --tlp RED --subject "極秘の件" --body-file "$T/red.txt"
R=$(head -1 "$T/out")
exits 0 "render the RED fax" render "$R" --recipient f1 --channel fax
unlike "$(cat "$T/out")" "脆弱性の詳細" "the body is not on the page"
unlike "$(cat "$T/out")" "極秘の件" "nor the subject"
like "$(cat "$T/out")" "閉域網" "the page says to read the closed-network mail"
code=$(sql "SELECT code FROM delivery WHERE alert = '$R' AND recipient = 'f1'")
like "$(cat "$T/out")" "${code:0:4}-${code:4:4}" "with the code"
like "$(cat "$T/out")" "TLP:RED" "and the label"
ok "dengond stops" d_stop
