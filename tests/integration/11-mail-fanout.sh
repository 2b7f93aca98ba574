#!/bin/bash
# 11-mail-fanout: one alert to 2,000 recipients through the real daemon and
# a real SMTP server (aiosmtpd): every recipient gets exactly one message
# with its own code and Message-ID, as `status` and `render` say.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
t_contacts 2000
M=$T/mail
port=$(peer_aiosmtpd "$M") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
set_key "channel mail" port "$port"
dg init
dg contacts import
ok "dengond starts" d_start
printf '関東地方に大雨特別警報。\n被害状況を報告してください。\n' >"$T/body.txt"
exits 0 "send to 2,000 recipients" send --to all --subject "大雨特別警報" \
    --body-file "$T/body.txt" --tlp AMBER
id=$(head -1 "$T/out")
ok "all 2,000 accepted by the SMTP server within 120 s" wait_until 120 state_is "$id" sent 2000
is "$(maildir_count "$M")" 2000 "2,000 messages stored"
dg status "$id" --json --show-codes
"$PY" - "$T/out" >"$T/codes" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for x in d["deliveries"]:
    print(f'{x["recipient"]}@example.jp {x["code"]}')
PYEOF
"$PY" - "$M" "$T/codes" "$id" >"$T/check" <<'PYEOF'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
codes = dict(l.split() for l in open(sys.argv[2]))
alert = sys.argv[3]
ids, dlv, bad, subj_ok, body_ok = set(), set(), 0, 0, 0
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    to = m["To"].addresses[0].addr_spec
    ids.add(m["Message-ID"])
    dlv.add(m["X-Dengon-Delivery"])
    if m["X-Dengon-Alert"] != alert:
        bad += 1
    code = codes.get(to)
    subj_ok += code is not None and code in str(m["Subject"])
    body_ok += code is not None and code in m.get_content()
print(len(ids), len(dlv), bad, subj_ok, body_ok)
PYEOF
read -r nids ndlv nbad nsubj nbody <"$T/check"
is "$nids" 2000 "2,000 distinct Message-IDs"
is "$ndlv" 2000 "2,000 distinct X-Dengon-Delivery headers"
is "$nbad" 0 "every message names the alert in X-Dengon-Alert"
is "$nsubj" 2000 "each Subject carries that recipient's own code"
is "$nbody" 2000 "each body carries that recipient's own code"
dg status "$id" --json
is "$(json 'sorted(set(a["outcome"] for x in d["deliveries"] for a in x["attempts"]))')" "['ok']" "every attempt ok"
like "$(json 'd["deliveries"][0]["attempts"][0]["evidence"]')" '^250' "the server's 250 reply is kept as evidence"
exits 0 "render one recipient's mail" render "$id" --recipient r0007 --channel mail
mid=$(grep -m1 '^Message-ID:' "$T/out" | tr -d '\r')
ok "render shows the Message-ID the recipient received ($mid)" grep -rqF "$mid" "$M/new"
d_stop
is "$rc" 0 "dengond stops cleanly"
