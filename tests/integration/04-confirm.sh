#!/bin/bash
# 04-confirm: an operator records confirmations by recipient and by code;
# wrong codes are refused (exit 4), unknown alerts and recipients exit 3.
. "$(dirname "$0")/../lib.sh"
t_setup
t_contacts 20
dg init
dg contacts import
dg send --to all --subject "試験" ; id=$(head -1 "$T/out")
dg send --to all --subject "別の警報" ; other=$(head -1 "$T/out")

exits 0 "confirm by alert and recipient" confirm "$id" r0001 --via phone --by duty-officer --note "電話で確認"
dg status "$id" --json
is "$(json '[x["state"] for x in d["deliveries"] if x["recipient"]=="r0001"][0]')" confirmed "r0001 confirmed"
is "$(json '[x["confirmed_via"] for x in d["deliveries"] if x["recipient"]=="r0001"][0]')" phone "via phone"
is "$(json '[x["confirmed_by"] for x in d["deliveries"] if x["recipient"]=="r0001"][0]')" duty-officer "by the operator"
is "$(json 'd["confirmed"]')" 1 "one confirmed"
exits 0 "a second confirmation of the same delivery" confirm "$id" r0001 --via fax --by someone
like "$(cat "$T/out")" "duplicate" "is recorded as a duplicate"
is "$(sql "SELECT count(*) FROM confirmation c JOIN delivery d ON d.id=c.delivery WHERE d.alert='$id' AND d.recipient='r0001'")" 2 "both confirmations are kept"
dg status "$id" --json
is "$(json 'd["confirmed"]')" 1 "still one confirmed delivery"

# By code: as shown (XXXX-XXXX), lower case without hyphen, with O/I/L.
dg status "$id" --json --show-codes
code2=$(json '[x["code"] for x in d["deliveries"] if x["recipient"]=="r0002"][0]')
code3=$(json '[x["code"] for x in d["deliveries"] if x["recipient"]=="r0003"][0]')
exits 0 "confirm by code as shown" confirm --code "$code2" --via phone --by op
like "$(cat "$T/out")" "$id r0002 confirmed" "the code's delivery is confirmed"
sloppy=$(echo "$code3" | tr -d '-' | tr 'A-Z' 'a-z' | sed 's/0/o/g; s/1/l/g')
exits 0 "confirm by code typed in lower case, no hyphen, O for 0 and L for 1 ($sloppy)" confirm --code "$sloppy" --via phone --by op
like "$(cat "$T/out")" "$id r0003 confirmed" "matched the right delivery"

# A code of another alert confirms that alert's delivery, never this one.
dg status "$other" --json --show-codes
ocode=$(json '[x["code"] for x in d["deliveries"] if x["recipient"]=="r0004"][0]')
exits 0 "a code of the other alert" confirm --code "$ocode" --via phone --by op
like "$(cat "$T/out")" "^$other r0004 confirmed" "confirms only the other alert's delivery"
dg status "$id" --json
is "$(json '[x["state"] for x in d["deliveries"] if x["recipient"]=="r0004"][0]')" pending "r0004 of the first alert is untouched"

# Refusals.
n=$(sql "SELECT count(*) FROM confirmation")
exits 4 "a wrong code is refused" confirm --code ZZZZ-ZZZZ --via phone --by op
exits 4 "a code-shaped random string is refused" confirm --code 0123-4567 --via sms --by op
is "$(sql "SELECT count(*) FROM confirmation")" "$n" "refused codes confirm nothing"
is "$(sql "SELECT count(*) FROM event WHERE what='confirmation refused' AND why LIKE 'code %'")" 2 "both refused codes are logged as events"
is "$(sql "SELECT group_concat(code, ' ') FROM bad_code")" "ZZZZZZZZ 01234567" "and kept for throttling"
exits 2 "a malformed code is invalid input" confirm --code 'AB;CD' --via phone --by op
exits 3 "unknown alert" confirm 19990101-0001 r0001 --via phone --by op
exits 3 "unknown recipient" confirm "$id" nobody --via phone --by op
exits 2 "missing --by" confirm "$id" r0005 --via phone
exits 2 "bad --via" confirm "$id" r0005 --via pigeon --by op
exits 2 "neither ALERT RECIPIENT nor --code" confirm --via phone --by op
dg status "$id" --json
is "$(json 'd["confirmed"]')" 3 "exactly three deliveries of the first alert confirmed"
