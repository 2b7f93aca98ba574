#!/bin/bash
# 03-send-status: accept an alert to 2,000 recipients in one transaction,
# then read it back through `status` (text and the JSON of CONTRACT.md).
. "$(dirname "$0")/../lib.sh"
t_setup
t_contacts 2000
dg init
exits 0 "import 2,000 recipients" contacts import

# One transaction: with synchronous=FULL every commit syncs the WAL, so a
# send that committed row by row would sync about 2,000 times.
printf '関東地方に大雨特別警報が発表されました。\n各事業者は被害状況を報告してください。\n' >"$T/body.txt"
if command -v strace >/dev/null; then
	# (LeakSanitizer cannot run under ptrace: leaks are checked elsewhere.)
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
	    strace -f -qq -e trace=fsync,fdatasync -o "$T/strace" \
	    "$DENGON_BIN/dengon" -c "$T/dengon.conf" send --to all \
	    --subject "大雨特別警報" --body-file "$T/body.txt" --tlp AMBER >"$T/out" 2>"$T/err"
	rc=$?
	is "$rc" 0 "send to all (under strace) exits 0"
	syncs=$(grep -cE 'fsync|fdatasync' "$T/strace")
	ok "send to 2,000 recipients commits once (fsyncs: $syncs)" test "$syncs" -le 10
else
	dg send --to all --subject "大雨特別警報" --body-file "$T/body.txt" --tlp AMBER
	is "$rc" 0 "send to all exits 0"
	skip "send commits once" "strace is not installed"
fi
id=$(head -1 "$T/out")
like "$id" '^[0-9]{8}-[0-9]{4}$' "send prints the new alert id alone on the first line"
is "$(wc -l <"$T/out")" 1 "nothing else on stdout"
is "$(sql "SELECT count(*) FROM delivery WHERE alert='$id'")" 2000 "2,000 deliveries committed"

exits 0 "status ALERT --json" status "$id" --json
is "$(json 'd["alert"]')" "$id" "status names the alert"
is "$(json 'd["recipients"]')" 2000 "recipients: 2000"
is "$(json 'd["counts"]["pending"]')" 2000 "all pending before any delivery"
is "$(json 'd["pending"]')" 2000 "top-level pending count"
is "$(json 'd["tlp"]')" AMBER "TLP recorded"
is "$(json 'd["kind"]')" alert "kind alert"
is "$(json 'd["drill"]')" False "not a drill"
is "$(json 'd["revision"]')" 1 "revision 1"
is "$(json 'len(d["deliveries"])')" 2000 "one delivery per recipient"
is "$(json 'sorted(set(x["state"] for x in d["deliveries"]))')" "['pending']" "every delivery pending"
like "$(json 'd["created"]')" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\+09:00$' "created is RFC 3339 in the configured zone"
is "$(json 'any("code" in x for x in d["deliveries"])')" False "codes hidden without --show-codes"
exits 0 "status --json --show-codes" status "$id" --json --show-codes
is "$(json 'len(set(x["code"] for x in d["deliveries"]))')" 2000 "2,000 distinct codes"
like "$(json 'd["deliveries"][0]["code"]')" '^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$' "codes are XXXX-XXXX Crockford base32"

# Expiry from the policy (24h), or --expires.
is "$(sql "SELECT (expires - created) / 1000 FROM alert WHERE id='$id'")" 86400 "expiry from the policy's expire"
exits 0 "send with --expires 90m --drill" send --to r0001,r0002 --subject "訓練" --expires 90m --drill --json
id2=$(json 'd["alert"]')
is "$(json 'd["recipients"]')" 2 "--json reports the recipient count"
is "$(sql "SELECT (expires - created) / 1000 FROM alert WHERE id='$id2'")" 5400 "--expires overrides the policy"
exits 0 "status of the drill" status "$id2" --json
is "$(json 'd["drill"]')" True "drill recorded"

exits 0 "status without ALERT lists recent alerts" status
like "$(cat "$T/out")" "$id" "the first alert is listed"
like "$(cat "$T/out")" "$id2" "the second alert is listed"
exits 0 "status ALERT (text)" status "$id"
like "$(cat "$T/out")" "pending .* 2000" "text status shows the pending count"
"$DENGON_BIN/dengon" -c "$T/dengon.conf" status "$id2" --watch >"$T/watch" 2>&1 &
wpid=$!
sleep 2
kill -INT $wpid 2>/dev/null; wait $wpid
is "$?" 0 "status --watch on a pipe ends cleanly when interrupted"
like "$(head -1 "$T/watch")" "$id2 pending=2 " "watch prints a plain line when not on a terminal"
is "$(wc -l <"$T/watch")" 1 "and only when the counts change"

exits 0 "queue shows work waiting" queue --json
is "$(json '[(c["channel"], c["waiting"]) for c in d["channels"]]')" "[('mail', 2002)]" "2,002 deliveries wait for mail"

# Targets: groups, ids, unknowns.
exits 0 "send to a group" send --to group:even --subject x --json
is "$(json 'd["recipients"]')" 1000 "group:even has 1,000 members"
exits 0 "send to ids and a group, duplicates collapsed" send --to r0001,r0001,group:odd --subject x --json
is "$(json 'd["recipients"]')" 1000 "r0001 is odd: counted once"
n=$(sql "SELECT count(*) FROM alert")
exits 3 "unknown recipient" send --to r9999 --subject x
like "$(cat "$T/err")" "r9999" "the unknown recipient is named"
exits 3 "unknown group" send --to group:nobody --subject x
is "$(sql "SELECT count(*) FROM alert")" "$n" "refused sends wrote nothing"
exits 2 "missing --to" send --subject x
exits 2 "bad --tlp" send --to r0001 --subject x --tlp PURPLE
exits 2 "bad --expires" send --to r0001 --subject x --expires soon
exits 2 "unknown --policy" send --to r0001 --subject x --policy nosuch
exits 3 "status of an unknown alert" status 19990101-0001

# Header injection and bad text never get in.
exits 2 "a subject with CR/LF is refused" send --to r0001 --subject $'警報\r\nBcc: x@example.com'
printf 'ok\n\xff\xfe bad\n' >"$T/bad.txt"
exits 2 "a body that is not UTF-8 is refused" send --to r0001 --body-file "$T/bad.txt"
like "$(cat "$T/err")" "line 2" "the bad line is named"
head -c 300000 /dev/zero | tr '\0' 'a' >"$T/big.txt"
exits 2 "an oversized body is refused" send --to r0001 --body-file "$T/big.txt"
is "$(sql "SELECT count(*) FROM alert")" "$n" "nothing was written by the refused sends"
echo "本文のみ" >"$T/stdin.txt"
exits 0 "body from stdin" send --to r0001 --body-file - <"$T/stdin.txt"
is "$(sql "SELECT subject FROM alert_revision WHERE alert='$(head -1 "$T/out")'")" "本文のみ" "default subject"

exits 0 "backup" backup "$T/backup.db"
is "$(sqlite3 "$T/backup.db" 'SELECT count(*) FROM delivery')" "$(sql 'SELECT count(*) FROM delivery')" "backup holds every delivery"
is "$(sqlite3 "$T/backup.db" 'PRAGMA integrity_check')" ok "backup passes integrity_check"
