#!/bin/bash
# sanitizer: skip
# 24-sms-daemon: SMS end to end through the real daemon and two emulated
# GSM modems (tests/modem/gsmemu.py on ptys, the fd transport).  A Japanese
# alert to 20 numbers: every PDU dengon sends is decoded by python3-gammu
# inside the emulator (a decoder we did not write) and the reassembled text
# must be exactly what `dengon render` says that recipient gets; status
# reports make the deliveries delivered; replies by SMS carrying the codes
# confirm them (one concatenated, one from another number); the first
# modem (the faster one) vanishes in the middle of the run (after its 5th submit, before
# answering it) and the second finishes the work: no message lost.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
SMSLOG="$TESTS_DIR/modem/smslog.py"

m1=$(peer_modem m1 --vanish-after-cmgs 5) || { echo "not ok 1 - modem 1 did not start"; exit 1; }
m2=$(peer_modem m2 --mr-start 100 --slow-cmgs 0.2) || { echo "not ok 1 - modem 2 did not start"; exit 1; }
p1=$(readlink -f "$m1")
p2=$(readlink -f "$m2")
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "policy standard" steps "sms"
cat >>"$T/dengon.conf" <<CONF

[channel sms]
type           = sms
devices        = $p1, $p2
max_parts      = 3
CONF
{
	echo "id,name,org,mail,sms"
	for i in $(seq -w 1 20); do
		echo "r$i,利用者 $i,水道事業体 $i,r$i@example.jp,090-0000-00$i"
	done
} >"$T/contacts.csv"
dg init
exits 0 "20 recipients with SMS numbers import" contacts import

# --- bad input: AT-command characters never get in ------------------------
cp "$T/contacts.csv" "$T/good.csv"
for bad in '090;1234' '+81+++ATH' '0901234AT5678' $'090\r1234'; do
	{ cat "$T/good.csv"; printf 'x1,悪意,,x@example.jp,"%s"\n' "$bad"; } >"$T/contacts.csv"
	exits 2 "import refuses the number $(printf %q "$bad")" contacts import
done
cp "$T/good.csv" "$T/contacts.csv"

printf '東町浄水場で水質異常を検知しました。\n給水を一時停止しています。対応状況を確認のうえ返信してください。\n' >"$T/body.txt"
exits 0 "send a Japanese alert to all" send --to all --subject "【第1報】水質異常" \
    --body-file "$T/body.txt" --tlp AMBER
A=$(head -1 "$T/out")

# --- at send: a number forged into the queue never reaches a modem --------
sql "UPDATE delivery SET sms = '+8190;ATD+81312345678;' WHERE alert = '$A' AND recipient = 'r20'"

ok "dengond starts" d_start
ok "modem 1 vanishes after its 5th submit" wait_until 60 \
    grep -q '"ev": *"vanish"' "$T/peers/m1.jsonl"
# What modem 1 completed before it vanished was accepted by the network
# (+CMGS): those stay "sent", since their status reports would come back
# to the SIM that is gone.  Everything else is delivered through modem 2.
on_m1=$("$PY" "$SMSLOG" messages "$T/peers/m1.jsonl" | "$PY" -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l)["complete"] and None not in json.loads(l)["mrs"]))')
ok "the other $((19 - on_m1)) good deliveries become delivered (status reports)" \
    wait_until 90 state_is "$A" delivered $((19 - on_m1))
is "$(count_state "$A" sent)" "$on_m1" "the $on_m1 completed on modem 1 stay sent"
is "$(count_state "$A" pending)" 0 "no delivery is left pending: none lost"
is "$(sql "SELECT state FROM delivery WHERE alert = '$A' AND recipient = 'r20'")" \
    failed "the forged number fails without being sent"
like "$(sql "SELECT error FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.recipient = 'r20'")" \
    "not an E.164 number" "with the reason"
ok "no command or PDU on either modem carries the forged number" \
    bash -c "! grep -q 'ATD+813' '$T/peers/m1.jsonl' '$T/peers/m2.jsonl'"

# --- modem 1 vanished mid-run; modem 2 did the rest ---------------------------
like "$(dg channels; cat "$T/out")" "sms@$p1" "channels lists modem 1"
like "$(grep "sms@$p1 " "$T/out")" "down" "modem 1 is down"
like "$(grep "sms@$p2 " "$T/out")" "up" "modem 2 is up"
like "$(sql "SELECT error FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A' AND a.outcome = 'tempfail' ORDER BY a.id LIMIT 1")" \
    "the device has gone" "the message in flight on modem 1 became a tempfail"
is "$(sql "SELECT count(*) FROM delivery d WHERE d.alert = '$A' AND EXISTS (SELECT 1 FROM attempt a WHERE a.delivery = d.id AND a.outcome = 'tempfail') AND NOT EXISTS (SELECT 1 FROM attempt a WHERE a.delivery = d.id AND a.outcome = 'ok')")" \
    0 "every delivery that tempfailed on modem 1 was sent again"

# --- every PDU, decoded by python3-gammu, says what render says -------------
"$PY" "$SMSLOG" messages "$T/peers/m1.jsonl" >"$T/sent1.jsonl"
"$PY" "$SMSLOG" messages "$T/peers/m2.jsonl" >"$T/sent2.jsonl"
cat "$T/sent1.jsonl" "$T/sent2.jsonl" >"$T/sent.jsonl"
mismatch=0 complete=0
for i in $(seq -w 1 19); do
	"$DENGON_BIN/dengon" -c "$T/dengon.conf" render "$A" --recipient "r$i" \
	    --channel sms >"$T/render.$i" 2>"$T/err" || mismatch=$((mismatch + 1))
	# the text is between the blank line after the header and the parts
	awk 'NR > 3 && /^--- part 1\// { exit } NR > 3 { print }' "$T/render.$i" |
	    sed -e '$ { /^$/d }' >"$T/want.$i"
	n=$("$PY" - "$T/sent.jsonl" "+8190000000$i" "$T/want.$i" <<'PY'
import json, sys
want = open(sys.argv[3], encoding="utf-8").read().rstrip("\n")
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    m = json.loads(line)
    if m["number"] == sys.argv[2] and m["complete"] and m["text"] == want:
        n += 1
print(n)
PY
)
	[ "$n" -ge 1 ] && complete=$((complete + 1)) || mismatch=$((mismatch + 1))
done
is "$complete" 19 "each of the 19 numbers got a complete message equal to its rendering"
is "$mismatch" 0 "no message differs from what render shows"
ok "the messages are UCS2, concatenated (3 parts), UDH consistent" \
    "$PY" -c "
import json, sys
ms = [json.loads(l) for l in open('$T/sent2.jsonl', encoding='utf-8')]
sys.exit(0 if ms and all(m['coding'].startswith('Unicode') and m['parts'] == 3 and m['consistent'] for m in ms if m['complete']) else 1)"

# --- replies confirm -----------------------------------------------------------
code_of() { sql "SELECT code FROM delivery WHERE alert = '$A' AND recipient = '$1'"; }
fmt() { echo "${1:0:4}-${1:4:4}"; }
for i in 01 02 03; do
	ok "r$i replies with its code" peer_modem_ctl m2 \
	    "{\"cmd\":\"deliver\",\"from\":\"+8190000000$i\",\"text\":\"確認しました $(fmt "$(code_of "r$i")")\"}"
done
long=$(printf '東町浄水場の件、承知しました。%.0s' $(seq 1 8))
ok "r04 replies in a long concatenated UCS2 message" peer_modem_ctl m2 \
    "{\"cmd\":\"deliver\",\"from\":\"+819000000004\",\"text\":\"$long 確認コード $(fmt "$(code_of r04)")\"}"
ok "r05's code comes from a national number of r05" peer_modem_ctl m2 \
    "{\"cmd\":\"deliver\",\"from\":\"09000000005\",\"text\":\"$(code_of r05)\"}"
ok "r06's code comes from another number" peer_modem_ctl m2 \
    "{\"cmd\":\"deliver\",\"from\":\"+819099999999\",\"text\":\"代理で確認 $(fmt "$(code_of r06)")\"}"
ok "a reply without a code is read too" peer_modem_ctl m2 \
    '{"cmd":"deliver","from":"+819000000007","text":"了解"}'
ok "the six replies confirm six deliveries" wait_until 60 state_is "$A" confirmed 6
is "$(sql "SELECT count(*) FROM confirmation c JOIN delivery d ON d.id = c.delivery WHERE d.alert = '$A' AND c.via = 'sms'")" \
    6 "six confirmations via sms"
is "$(sql "SELECT foreign_sender FROM confirmation c JOIN delivery d ON d.id = c.delivery WHERE d.recipient = 'r06'")" \
    1 "the one from another number is marked so"
is "$(sql "SELECT foreign_sender FROM confirmation c JOIN delivery d ON d.id = c.delivery WHERE d.recipient = 'r05'")" \
    0 "a national number is the recipient's own"
sim_empty() {
	peer_modem_ctl m2 '{"cmd":"state"}' | "$PY" -c \
	    'import json,sys; sys.exit(0 if json.loads(sys.stdin.read())["stored"] == [] else 1)'
}
ok "the SIM is emptied once the replies are recorded" wait_until 40 sim_empty
exits 0 "status --json" status "$A" --json
is "$(json '[x["state"] for x in d["deliveries"] if x["recipient"] == "r01"][0]')" \
    confirmed "status --json shows r01 confirmed"
ok "dengond stops" d_stop
