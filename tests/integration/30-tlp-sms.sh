#!/bin/bash
# sanitizer: skip
# 30-tlp-sms: sharing levels on SMS.  RED and AMBER+STRICT bodies never go
# over SMS: the recipient gets only a notice that an alert waits in
# closed-network mail, the alert id and the code - also a recipient who
# has no closed-network address.  Checked in `dengon render` and in what
# the emulated modem actually received (decoded by python3-gammu).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
modem=$(peer_modem m) || { echo "not ok 1 - modem did not start"; exit 1; }
set_key relay retry_min 1s
set_key "policy standard" steps "sms"
cat >>"$T/dengon.conf" <<CONF

[channel sms]
type           = sms
devices        = $(readlink -f "$modem")
CONF
cat >"$T/contacts.csv" <<'CSV'
id,name,mail,sms
k1,甲,k1@example.jp,+819011110001
CSV
dg init
exits 0 "contacts import" contacts import
printf '極秘本文：施設の脆弱性の詳細。\n' >"$T/body.txt"
for tlp in RED AMBER+STRICT AMBER; do
	exits 0 "send a $tlp alert" send --to k1 --subject "件名$tlp" --tlp "$tlp" \
	    --body-file "$T/body.txt"
	id=$(head -1 "$T/out")
	exits 0 "render the $tlp alert for SMS" render "$id" --recipient k1 --channel sms
	code=$(sql "SELECT code FROM delivery WHERE alert = '$id'")
	if [ "$tlp" = AMBER ]; then
		like "$(cat "$T/out")" "極秘本文" "AMBER: the body is sent"
		continue
	fi
	ok "$tlp: no body text" bash -c "! grep -q '極秘本文' '$T/out'"
	ok "$tlp: no subject either" bash -c "! grep -q '件名' '$T/out'"
	like "$(cat "$T/out")" "閉域網" "$tlp: the notice points to closed-network mail"
	like "$(cat "$T/out")" "${code:0:4}-${code:4:4}" "$tlp: with the code"
	like "$(cat "$T/out")" "$id" "$tlp: and the alert id"
	like "$(cat "$T/out")" "TLP:${tlp/+/.}" "$tlp: and the label"
done
ok "dengond starts" d_start
ok "the three alerts reach the modem" wait_until 30 bash -c \
    "[ \$('$PY' '$TESTS_DIR/modem/smslog.py' messages '$T/peers/m.jsonl' | grep -c '\"complete\": true') -ge 3 ]"
"$PY" "$TESTS_DIR/modem/smslog.py" messages "$T/peers/m.jsonl" >"$T/sent.jsonl"
is "$(grep -c '極秘本文' "$T/sent.jsonl")" 1 "only the AMBER body went over the air"
is "$(grep -c '閉域網' "$T/sent.jsonl")" 2 "RED and AMBER+STRICT went as notices"
ok "dengond stops" d_stop
