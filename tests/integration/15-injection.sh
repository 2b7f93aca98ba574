#!/bin/bash
# 15-injection: nothing from data becomes a mail header.  The CLI refuses a
# subject with CR/LF (03-send-status); here the queue is tampered with
# behind its back (a revision and a recipient name carrying CR/LF, as a
# buggy or hostile writer could leave them) and the daemon must still put
# no injected header on the wire.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
t_contacts 2
M=$T/mail
port=$(peer_aiosmtpd "$M") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
set_key "channel mail" port "$port"
dg init
dg contacts import
exits 2 "the CLI refuses a subject with CR/LF" send --to r0001 --subject $'a\r\nBcc: victim@example.com'
dg send --to all --subject "正常"
id=$(head -1 "$T/out")
sql "INSERT INTO alert_revision(alert, revision, subject, body, created) VALUES ('$id', 2, '改訂' || char(13,10) || 'Bcc: victim@example.com', 'body' || char(13,10) || '.' || char(13,10) || 'MAIL FROM:<x@y>', 0)"
sql "UPDATE delivery SET name = 'Evil' || char(13,10) || 'X-Injected: 1' WHERE alert='$id' AND recipient='r0002'"
ok "dengond starts" d_start
ok "both messages are sent" wait_until 10 state_is "$id" sent 2
"$PY" - "$M" >"$T/inj" <<'PYEOF'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
bad = 0
subjects = []
for k in box.keys():
    raw = box.get_bytes(k)
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in head.splitlines():
        l = line.lower()
        if l.startswith(b"bcc:") or l.startswith(b"x-injected:"):
            bad += 1
    m = email.message_from_bytes(raw, policy=email.policy.default)
    subjects.append(str(m["Subject"]))
print(bad)
print(all("victim@example.com" in s for s in subjects))
PYEOF
is "$(sed -n 1p "$T/inj")" 0 "no Bcc: or X-Injected: header reached the wire"
is "$(sed -n 2p "$T/inj")" True "the text stays inside the Subject, neutralised"
is "$(maildir_count "$M")" 2 "and no extra message was smuggled into the session"
d_stop
