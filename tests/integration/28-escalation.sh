#!/bin/bash
# sanitizer: skip
# 28-escalation: the policy's steps in real time, through the real daemon,
# with two real SMTP servers and two emulated GSM modems.  One alert to 100
# recipients over `steps = mail+lgwan, sms@5s` (retry_min 1s, retry_max 2s):
#   - the internet sink (tests/tools/escalation_smtpd.py, aiosmtpd) behind
#     [channel mail] refuses RCPT TO bad*@ with 550 5.1.1 (a per-recipient
#     permanent failure) and logs every RCPT it is asked; the closed-network
#     sink (the same tool) behind [channel lgwan] (domains = lg.jp);
#   - two modems (tests/modem/gsmemu.py on ptys) behind [channel sms].
# Recipients (the groups are in the CSV below):
#   N r001-r050  mail + lgwan + sms     mail and lgwan at +0 s, sms at +5 s
#   T r051-r053  busy mail + slow lgwan + sms
#                                       the internet sink answers 451 to the
#                                       first RCPT, the lgwan sink takes
#                                       0.25 s to accept (so its ok comes
#                                       after the tempfail): mail retried
#                                       once after the backoff (S3:
#                                       retry_min, 1 s), sms at +5 s
#   U r054-r055  busy mail + sms        the same without lgwan
#   L r056-r070  mail + sms (no lgwan)  lgwan skipped; mail at 0, sms at 5 s
#   P r071-r080  bad mail + sms         mail permfails: nothing else of step
#                                       1 is left, so the SMS goes at once
#                                       (DESIGN.md Escalation, sched.h S4)
#   Q r081-r085  bad mail + lgwan + sms mail permfails, lgwan ok: step 1 is
#                                       complete (S2), sms at its time (S5)
#   S r086-r090  sms only               step 1 skipped, sms at 5 s
#   C r091-r100  mail + lgwan + sms     confirmed by an operator before
#                                       the sms step: r091-r095 by id via
#                                       phone right after the send (step 1
#                                       still in flight), r096-r100 by code
#                                       via mail at +3 s (step 1 done, their
#                                       SMS scheduled for +5 s): never an SMS
# Every attempt must start at its step's time +-1 s from the acceptance
# (alert.created), read from the attempt table (ms), and the peers' own
# logs (each RCPT TO, each SMS-SUBMIT) must agree; no lg.jp address ever
# reaches the internet sink, not even as a RCPT TO.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
INET=$T/inet
LG=$T/lg
mkdir -p "$INET/new" "$INET/cur" "$INET/tmp" "$LG/new" "$LG/cur" "$LG/tmp"

# _smtpd DIR LOG - the escalation sink on a free port (echoed).
_smtpd() {
	local port
	port=$(peer_free_port) || return 1
	_peer_start "escalation-smtpd-$port" "$PEER_PY" \
	    "$TESTS_DIR/tools/escalation_smtpd.py" "$port" "$1" "$2"
	peer_wait_port "$port" || return 1
	echo "$port"
}
iport=$(_smtpd "$INET" "$T/inet.rcpt") || { echo "not ok 1 - internet sink did not start"; exit 1; }
lport=$(_smtpd "$LG" "$T/lg.rcpt") || { echo "not ok 1 - lgwan sink did not start"; exit 1; }
m1=$(peer_modem m1) || { echo "not ok 1 - modem 1 did not start"; exit 1; }
m2=$(peer_modem m2 --mr-start 100) || { echo "not ok 1 - modem 2 did not start"; exit 1; }
p1=$(readlink -f "$m1")
p2=$(readlink -f "$m2")

set_key "channel mail" port "$iport"
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "policy standard" steps "mail+lgwan, sms@5s"
set_key "policy standard" expire 1h
set_key "policy standard" confirm ack
cat >>"$T/dengon.conf" <<CONF

[channel lgwan]
type           = lgwan
host           = 127.0.0.1
port           = $lport
tls            = none
from           = 警報センター <alerts@bureau.example.lg.jp>
domains        = lg.jp
timeout        = 10s

[channel sms]
type           = sms
devices        = $p1, $p2
max_parts      = 3
CONF

# id,name,org,mail,lgwan,sms - the groups of the header comment.
awk 'BEGIN {
	print "id,name,org,mail,lgwan,sms"
	for (i = 1; i <= 100; i++) {
		id = sprintf("r%03d", i)
		mail = id "@example.jp"; lg = id "@city" i ".example.lg.jp"
		sms = sprintf("090-0000-0%03d", i)
		if (i >= 51 && i <= 55) mail = "busy-" mail
		if (i >= 51 && i <= 53) lg = "slow-" lg
		if (i >= 54 && i <= 55) lg = ""
		if (i >= 56 && i <= 70) lg = ""
		if (i >= 71 && i <= 80) { mail = "bad-" mail; lg = "" }
		if (i >= 81 && i <= 85) mail = "bad-" mail
		if (i >= 86 && i <= 90) { mail = ""; lg = "" }
		printf "%s,受信者 %d,事業者 %d,%s,%s,%s\n", id, i, i, mail, lg, sms
	}
}' >"$T/contacts.csv"
group_of() {	# the group letter of recipient rNNN
	local i=$((10#${1#r}))
	if [ "$i" -le 50 ]; then echo N
	elif [ "$i" -le 53 ]; then echo T
	elif [ "$i" -le 55 ]; then echo U
	elif [ "$i" -le 70 ]; then echo L
	elif [ "$i" -le 80 ]; then echo P
	elif [ "$i" -le 85 ]; then echo Q
	elif [ "$i" -le 90 ]; then echo S
	else echo C
	fi
}
dg init
exits 0 "100 recipients import" contacts import

ok "dengond starts" d_start
sms_up() { dg channels && grep -q "sms@$p1 .*up" "$T/out" && grep -q "sms@$p2 .*up" "$T/out"; }
ok "both modems are up" wait_until 30 sms_up
ok "the mail channel is ready" \
    grep -q 'channel mail: smtp driver ready' "$T/dengond.log"
ok "the lgwan channel is ready" grep -q 'channel lgwan: lgwan driver ready' "$T/dengond.log"

# --- the alert ---------------------------------------------------------------
printf '東町浄水場で水質異常。給水停止中。\n' >"$T/body.txt"
exits 0 "send to all 100" send --to all --subject "水質異常" --body-file "$T/body.txt"
A=$(head -1 "$T/out")
T0=$(sql "SELECT created FROM alert WHERE id = '$A'")
ms_since() { echo $(( $(date +%s%3N) - T0 )); }
# C1: confirmed by an operator on the phone right away, while step 1 is
# (most likely) still in flight.
code_of() { sql "SELECT code FROM delivery WHERE alert = '$A' AND recipient = '$1'"; }
cfail=0
for i in 091 092 093 094 095; do
	dg confirm "$A" "r$i" --via phone --by t || cfail=$((cfail + 1))
done
is "$cfail" 0 "C1: 5 confirmations by id via phone recorded (by +$(ms_since) ms)"
# C2: once step 1 is done and their SMS is scheduled for +5 s, confirmed
# at +3 s by the code read out from the mail.
c2_waiting() {
	[ "$(sql "SELECT count(*) FROM delivery WHERE alert = '$A' AND recipient BETWEEN 'r096' AND 'r100' AND state = 'sent' AND step = 1 AND next_action = $T0 + 5000")" = 5 ]
}
ok "C2: step 1 done, the sms step is scheduled for +5 s exactly" wait_until 3 c2_waiting
w=$((3000 - $(ms_since)))
[ "$w" -gt 0 ] && sleep "$(printf '%d.%03d' $((w / 1000)) $((w % 1000)))"
cfail=0
for i in 096 097 098 099 100; do
	c=$(code_of "r$i")
	dg confirm --code "${c:0:4}-${c:4:4}" --via mail --by t || cfail=$((cfail + 1))
done
is "$cfail" 0 "C2: 5 confirmations by code via mail recorded"
clast=$(sql "SELECT max(c.at) - $T0 FROM confirmation c JOIN delivery d ON d.id = c.delivery WHERE d.alert = '$A'")
ok "every confirmation is in before +4.5 s (the last at +${clast} ms): before the sms step" \
    test "$clast" -lt 4500

# Done: every unconfirmed delivery's sms attempt has ended, nothing in
# flight.  Then 3 s more, to see that nothing else is started.
all_done() {
	[ "$(sql "SELECT count(*) FROM delivery d WHERE d.alert = '$A' AND d.state <> 'confirmed' AND NOT EXISTS (SELECT 1 FROM attempt a WHERE a.delivery = d.id AND a.channel = 'sms' AND a.outcome = 'ok')")" = 0 ] &&
	[ "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A' AND a.finished IS NULL")" = 0 ]
}
ok "every unconfirmed recipient got its SMS (within 40 s)" wait_until 40 all_done
sleep 3
[ -n "${KEEP:-}" ] && echo "# kept: $T"

# --- the timeline --------------------------------------------------------------
# One line per attempt: recipient channel step started-offset finished-offset outcome
sql "SELECT d.recipient, a.channel, a.step, a.started - $T0, coalesce(a.finished - $T0, -1), coalesce(a.outcome, '-') FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A' ORDER BY d.recipient, a.started, a.id" |
    tr '|' ' ' >"$T/attempts"
sql "SELECT d.recipient, c.at - $T0 FROM confirmation c JOIN delivery d ON d.id = c.delivery WHERE d.alert = '$A'" |
    tr '|' ' ' >"$T/confirmed"
while read -r r _; do echo "$r $(group_of "$r")"; done \
    < <(sql "SELECT recipient FROM delivery WHERE alert = '$A' ORDER BY recipient") >"$T/groups"

# Per group and channel: attempts, min and max start offset (ms).
awk 'NR == FNR { g[$1] = $2; next }
	{ k = g[$1] " " $2; n[k]++; if (!(k in lo) || $4 < lo[k]) lo[k] = $4; if (!(k in hi) || $4 > hi[k]) hi[k] = $4 }
	END { for (k in n) printf "%s attempts=%d start=+%.3fs..+%.3fs\n", k, n[k], lo[k] / 1000, hi[k] / 1000 }' \
    "$T/groups" "$T/attempts" | sort | sed 's/^/# timeline: /'

# check_group GROUP CHANNEL EXPECTED-PER-RECIPIENT LO HI DESC - every
# recipient of GROUP has exactly EXPECTED attempts on CHANNEL, each
# started within [LO, HI] ms of acceptance and ended ok (permfail for
# OUTCOME=permfail).
check_group() {
	local grp=$1 ch=$2 want=$3 lo=$4 hi=$5 outcome=${6:-ok} bad
	bad=$(awk -v grp="$grp" -v ch="$ch" -v want="$want" -v lo="$lo" -v hi="$hi" -v oc="$outcome" '
	    NR == FNR { if ($2 == grp) { in_g[$1] = 1; cnt[$1] = 0 } ; next }
	    ($1 in in_g) && $2 == ch {
		cnt[$1]++
		if ($4 < lo || $4 > hi || $6 != oc)
			printf "%s %s started +%dms outcome %s; ", $1, ch, $4, $6
	    }
	    END { for (r in cnt) if (cnt[r] != want) printf "%s has %d %s attempts; ", r, cnt[r], ch }' \
	    "$T/groups" "$T/attempts")
	_t_n=$((_t_n + 1))
	if [ -z "$bad" ]; then
		echo "ok $_t_n - $7"
	else
		echo "not ok $_t_n - $7"
		echo "#   ${bad:0:1500}"
		_t_failed=$((_t_failed + 1))
	fi
}

check_group N mail 1 0 1000 ok "N: one mail attempt each, at +0..1 s, ok"
check_group N lgwan 1 0 1000 ok "N: one lgwan attempt each, at +0..1 s, ok"
check_group N sms 1 4000 6000 ok "N: one sms attempt each, at +5 s +-1 s"
check_group T lgwan 1 0 1000 ok "T: one lgwan attempt each, at +0..1 s, ok"
check_group T sms 1 4000 6000 ok "T: one sms attempt each, at +5 s +-1 s"
check_group U lgwan 0 0 0 ok "U: no lgwan address: lgwan skipped"
check_group U sms 1 4000 6000 ok "U: one sms attempt each, at +5 s +-1 s"
# check_retry GROUP DESC - the first mail attempt tempfails (451) at
# +0..1 s, the retry starts 1-2 s after it ended (S3: retry_min 1 s for
# the first retry) and is ok; exactly two.
check_retry() {
	local bad
	bad=$(awk -v grp="$1" 'NR == FNR { g[$1] = $2; next } g[$1] == grp && $2 == "mail" {
		n[$1]++
		if (n[$1] == 1) { if ($6 != "tempfail" || $4 > 1000) printf "%s first mail +%dms %s; ", $1, $4, $6; f[$1] = $5 }
		else if (n[$1] == 2) { if ($6 != "ok" || $4 - f[$1] < 1000 || $4 - f[$1] > 2000) printf "%s: tempfail at +%dms, retry at +%dms (%dms after it) %s; ", $1, f[$1], $4, $4 - f[$1], $6 }
	    }
	    END { for (r in g) if (g[r] == grp && n[r] != 2) printf "%s has %d mail attempts; ", r, n[r] }' "$T/groups" "$T/attempts")
	is "$bad" "" "$2"
	if [ -n "$bad" ]; then
		local r
		r=$(awk -v grp="$1" '$2 == grp { print $1; exit }' "$T/groups")
		echo "#   the attempts and event log of $r (ms after acceptance):"
		sql "SELECT '#     +' || (a.started - $T0) || '..+' || (a.finished - $T0) || ' ' || a.channel || ' ' || a.outcome FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A' AND d.recipient = '$r' AND a.step = 0 ORDER BY a.finished"
		sql "SELECT '#     +' || (e.at - $T0) || ' ' || e.what || ': ' || coalesce(e.why, '') FROM event e JOIN delivery d ON d.id = e.delivery WHERE d.alert = '$A' AND d.recipient = '$r' AND e.at < $T0 + 4000 ORDER BY e.id"
	fi
}
is "$(awk 'NR == FNR { g[$1] = $2; next } g[$1] == "T" && $2 == "mail" && !($1 in m) { m[$1] = $5 }
	g[$1] == "T" && $2 == "lgwan" { l[$1] = $5 }
	END { for (r in l) if (l[r] > m[r]) n++; print n + 0 }' "$T/groups" "$T/attempts")" 3 \
    "T: lgwan's ok came after the mail tempfail each time (the order this group is for)"
check_retry T "T: mail tempfails at +0..1 s, retried once 1-2 s later (S3 backoff) though lgwan's ok came in between"
check_retry U "U: mail tempfails at +0..1 s, retried once 1-2 s later (S3 backoff), ok"
check_group L mail 1 0 1000 ok "L: one mail attempt each, at +0..1 s"
check_group L lgwan 0 0 0 ok "L: no lgwan address: lgwan skipped"
check_group L sms 1 4000 6000 ok "L: one sms attempt each, at +5 s +-1 s"
check_group P mail 1 0 1000 permfail "P: mail to bad-* permfails at +0..1 s, not retried"
check_group P lgwan 0 0 0 ok "P: no lgwan attempt"
check_group Q mail 1 0 1000 permfail "Q: mail to bad-* permfails at +0..1 s, not retried"
check_group Q lgwan 1 0 1000 ok "Q: lgwan ok at +0..1 s"
check_group Q sms 1 4000 6000 ok "Q: reached on lgwan, so sms at its time: +5 s +-1 s"
check_group S mail 0 0 0 ok "S: no mail attempt"
check_group S lgwan 0 0 0 ok "S: no lgwan attempt"
check_group S sms 1 4000 6000 ok "S: sms only: sms at +5 s +-1 s"
check_group C mail 1 0 1000 ok "C: one mail attempt each, at +0..1 s, ok (not repeated after the confirmation)"
check_group C lgwan 1 0 1000 ok "C: one lgwan attempt each, at +0..1 s, ok"
check_group C sms 0 0 0 ok "C: confirmed before +5 s: never an sms attempt"

# P: the SMS at once after the permfail - within 1 s of it, well before 5 s.
pbad=$(awk 'NR == FNR { g[$1] = $2; next } g[$1] == "P" && $2 == "mail" { pf[$1] = $5 }
	g[$1] == "P" && $2 == "sms" { s[$1] = $4 }
	END { for (r in pf) if (!(r in s)) printf "%s: no sms; ", r;
	      else if (s[r] - pf[r] > 1000 || s[r] - pf[r] < 0 || s[r] >= 3000)
		printf "%s: permfail at +%dms, sms at +%dms; ", r, pf[r], s[r] }' "$T/groups" "$T/attempts")
is "$pbad" "" "P: the SMS starts within 1 s of the mail permfail (escalated at once, not at +5 s)"
if [ -n "$pbad" ]; then
	echo "#   the event log of r071 (ms after acceptance):"
	sql "SELECT '#     +' || (e.at - $T0) || ' ' || e.what || ': ' || coalesce(e.why, '') FROM event e JOIN delivery d ON d.id = e.delivery WHERE d.alert = '$A' AND d.recipient = 'r071' ORDER BY e.id"
fi
is "$(awk 'NR == FNR { g[$1] = $2; next } g[$1] == "P" && $2 == "sms" && $6 == "ok"' "$T/groups" "$T/attempts" | wc -l)" 10 \
    "P: all 10 SMS ok"

# C: nothing started after the confirmation; step 1 went as usual.
cbad=$(awk 'NR == FNR { c[$1] = $2; next } ($1 in c) && $4 > c[$1] { printf "%s %s at +%dms after the confirmation at +%dms; ", $1, $2, $4, c[$1] }' \
    "$T/confirmed" "$T/attempts")
is "$cbad" "" "C: no attempt starts after its confirmation"
echo "# C1: $(awk 'NR == FNR { c[$1] = $2; next } ($1 in c) && $1 <= "r095" && $5 > c[$1] { n[$1] = 1 } END { print length(n) + 0 }' "$T/confirmed" "$T/attempts") of 5 were confirmed while a step-1 attempt was still in flight"
is "$(sql "SELECT count(*) FROM delivery WHERE alert = '$A' AND state = 'confirmed'")" 10 \
    "the 10 confirmed deliveries stay confirmed"
is "$(sql "SELECT count(*) FROM delivery WHERE alert = '$A' AND state = 'confirmed' AND next_action IS NOT NULL")" 0 \
    "and have nothing scheduled"
is "$(awk '$6 == "tempfail" { print $1, $2 }' "$T/attempts" | sort | tr '\n' ' ')" \
    "r051 mail r052 mail r053 mail r054 mail r055 mail " "no other attempt tempfailed (every peer was up)"
is "$(awk '$5 < 0' "$T/attempts" | wc -l)" 0 "no attempt is left in flight"

# Nothing else pending before the reminder (repeat 1h).
is "$(sql "SELECT count(*) FROM delivery WHERE alert = '$A' AND next_action IS NOT NULL AND next_action < $T0 + 600000")" 0 \
    "nothing more is scheduled before the reminder"
is "$(sql "SELECT count(*) FROM delivery WHERE alert = '$A' AND state = 'failed'")" 0 "no delivery failed"
ok "the 90 others are delivered (SMS status reports)" wait_until 10 state_is "$A" delivered 90

# --- what the peers saw ----------------------------------------------------------
"$PY" - "$T/inet.rcpt" "$T/lg.rcpt" "$T/peers/m1.jsonl" "$T/peers/m2.jsonl" "$T0" "$T/groups" >"$T/peerview" <<'PYEOF'
import json, sys
inet, lg, j1, j2, t0, groups = sys.argv[1:]
t0 = int(t0) / 1000.0
grp = dict(l.split() for l in open(groups))
def rcpts(path):
    out = []
    for l in open(path, encoding="utf-8"):
        e = json.loads(l)
        if e["ev"] == "rcpt":
            out.append((e["addr"], e["code"], e["t"] - t0))
    return out
ir, lr = rcpts(inet), rcpts(lg)
print("inet_lgjp", sum(1 for a, c, t in ir if a.lower().endswith("lg.jp")))
print("inet_rcpts", len(ir), "refused", sum(1 for a, c, t in ir if c == 550),
      "busy", sum(1 for a, c, t in ir if c == 451))
def firsts(rs):
    f = {}
    for a, c, t in rs:
        f[a] = min(f.get(a, 1e18), t)
    return f
fi, fl = firsts(ir), firsts(lr)
print("inet_addresses", len(fi), "twice", sorted(set(a.split("@")[0] for a, c, t in ir if sum(1 for x in ir if x[0] == a) > 1)))
print("inet_span %.3f %.3f" % (min(fi.values()), max(fi.values())))
print("lg_rcpts", len(lr), "addresses", len(fl), "nonlg", sum(1 for a, c, t in lr if not a.lower().endswith("lg.jp")))
print("lg_span %.3f %.3f" % (min(fl.values()), max(fl.values())))
# SMS: the first part of each number's first submit, per group.
first = {}
n = 0
for j in (j1, j2):
    for l in open(j, encoding="utf-8"):
        e = json.loads(l)
        if e.get("ev") != "submit" or e.get("mr") is None:
            continue
        n += 1
        r = "r%03d" % int(e["number"][-3:])
        first[r] = min(first.get(r, 1e18), e["t"] - t0)
print("sms_submits", n, "numbers", len(first))
by = {}
for r, t in first.items():
    by.setdefault(grp[r], []).append(t)
for g in sorted(by):
    print("sms_group %s %d %.3f %.3f" % (g, len(by[g]), min(by[g]), max(by[g])))
print("sms_C", sum(1 for r in first if grp[r] == "C"))
PYEOF
sed 's/^/# peers: /' "$T/peerview"
pv() { awk -v k="$1" '$1 == k' "$T/peerview"; }
is "$(pv inet_lgjp)" "inet_lgjp 0" "the internet sink was never asked for an lg.jp address (RCPT TO log)"
ok "the internet sink stores no message for an lg.jp address" \
    bash -c "! grep -rqi 'lg\.jp' '$INET/new' '$INET/cur'"
is "$(pv inet_rcpts)" "inet_rcpts 100 refused 15 busy 5" \
    "the internet sink saw 100 RCPT TO: 95 addresses, 15 refused (550), 5 busy (451) and retried"
is "$(pv inet_addresses)" "inet_addresses 95 twice ['busy-r051', 'busy-r052', 'busy-r053', 'busy-r054', 'busy-r055']" \
    "each mail address was asked for once, the busy ones twice"
is "$(maildir_count "$INET")" 80 "it stored the 80 good mail messages"
is "$(pv lg_rcpts)" "lg_rcpts 68 addresses 68 nonlg 0" "the lgwan sink saw the 68 lgwan addresses once each, nothing else"
is "$(maildir_count "$LG")" 68 "it stored them"
like "$(pv inet_span)" "^inet_span 0\.[0-9]+ (0\.|1\.[0-4])" "the internet sink was asked for every address (first RCPT) within 1.5 s of acceptance"
like "$(pv lg_span)" "^lg_span 0\.[0-9]+ (0\.|1\.[0-4])" "the lgwan sink was asked for every address within 1.5 s of acceptance"
# Each group's first SMS-SUBMIT per number, as the modems logged it.
for g in N T U L Q S; do
	ok "group $g: the modems got each SMS between +4 s and +6.5 s ($(pv sms_group | awk -v g=$g '$2 == g { print $3 " numbers, +" $4 "..+" $5 " s" }'))" \
	    awk -v g=$g '$2 == g && $4 >= 4.0 && $5 <= 6.5 { f = 1 } END { exit !f }' <<<"$(pv sms_group)"
done
ok "group P: the modems got each SMS before +3 s ($(pv sms_group | awk '$2 == "P" { print $3 " numbers, +" $4 "..+" $5 " s" }'))" \
    awk '$2 == "P" && $3 == 10 && $5 < 3.0 { f = 1 } END { exit !f }' <<<"$(pv sms_group)"
is "$(pv sms_C)" "sms_C 0" "no SMS reached a modem for a confirmed recipient"
is "$(pv sms_submits | awk '{ print $4 }')" 90 "the modems got an SMS for each of the 90 others"

d_stop
is "$rc" 0 "dengond stops cleanly"
