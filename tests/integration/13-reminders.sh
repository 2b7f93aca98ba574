#!/bin/bash
# 13-reminders: while a delivery still needs a confirmation, it is sent
# again on the policy's repeat schedule - to the unconfirmed only, as a new
# message that refers to the first one - and it expires at expire.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
t_contacts 6
M=$T/mail
port=$(peer_aiosmtpd "$M") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
set_key "channel mail" port "$port"
set_key "policy standard" repeat 4s
set_key "policy standard" expire 11s
dg init
dg contacts import
ok "dengond starts" d_start
dg send --to all --subject "再送試験"
id=$(head -1 "$T/out")
ok "first sending: 6 messages" wait_until 5 maildir_ge "$M" 6
for r in r0001 r0002 r0003; do
	dg confirm "$id" "$r" --via phone --by op
done
# Rounds start at 4 s and 8 s after acceptance; expiry at 11 s.
ok "reminders: 6 more messages by 9 s (3 unconfirmed x 2 rounds)" wait_until 12 maildir_ge "$M" 12
sleep 1
is "$(maildir_count "$M")" 12 "no more than that"
"$PY" - "$M" >"$T/rem" <<'PYEOF'
import email, email.policy, mailbox, sys, collections
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
by = collections.defaultdict(list)
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    by[m["To"].addresses[0].addr_spec.split("@")[0]].append(m)
counts = " ".join(f"{r}={len(by[r])}" for r in sorted(by))
first_refs_ok = all(
    len({str(m["Message-ID"]) for m in ms}) == len(ms) and
    all(str(m["References"]) == str(next(x for x in ms if x["References"] is None)["Message-ID"])
        for m in ms if m["References"] is not None) and
    sum(m["References"] is None for m in ms) == 1
    for ms in by.values())
print(counts)
print(first_refs_ok)
PYEOF
is "$(sed -n 1p "$T/rem")" "r0001=1 r0002=1 r0003=1 r0004=3 r0005=3 r0006=3" "reminders went to the unconfirmed only"
is "$(sed -n 2p "$T/rem")" True "each reminder is a new message with References: to the first"
ok "at expire, the unconfirmed expire" wait_until 6 state_is "$id" expired 3
is "$(count_state "$id" confirmed)" 3 "the confirmed stay confirmed"
is "$(sql "SELECT count(*) FROM event WHERE alert='$id' AND what='expired'")" 3 "each expiry is in the event log"
d_stop
