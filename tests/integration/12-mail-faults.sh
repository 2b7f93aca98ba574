#!/bin/bash
# 12-mail-faults: what each fault of an SMTP peer becomes, through the real
# daemon: 4xx is retried (and delivered once the server recovers), 5xx is a
# permanent failure, a disconnect in the middle of DATA is retried, a
# certificate for the wrong name is refused with the reason shown in
# `dengon channels`, and a server that never answers is cut off at the
# session deadline while the daemon stays responsive.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
t_contacts 5
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "channel mail" timeout 2s
dg init
dg contacts import

# 4xx on RCPT: tempfail, retried; after the server recovers, delivered.
S4=$T/sink4
p4=$(peer_smtp_sink "$S4" -r rcpt) || { echo "not ok 1 - smtp-sink"; exit 1; }
set_key "channel mail" port "$p4"
ok "dengond starts" d_start
dg send --to r0001,r0002 --subject "一時エラー"
id=$(head -1 "$T/out")
ok "4xx: attempts end in tempfail" wait_until 10 attempts_ge "$id" tempfail 4
is "$(count_state "$id" pending)" 2 "4xx: the deliveries stay pending"
like "$(sql "SELECT evidence FROM attempt a JOIN delivery d ON d.id=a.delivery WHERE d.alert='$id' AND a.outcome='tempfail' LIMIT 1")" '^4[0-9][0-9]' "4xx: the server's reply is the evidence"
M=$T/mail
pok=$(peer_aiosmtpd "$M")
set_key "channel mail" port "$pok"
kill -HUP "$DPID"
ok "4xx: after the server recovers, delivered" wait_until 15 state_is "$id" sent 2
is "$(maildir_count "$M")" 2 "4xx: each delivered once"

# 5xx on RCPT: permfail, and with no other channel the delivery fails.
p5=$(peer_smtp_sink "$T/sink5" -f rcpt)
set_key "channel mail" port "$p5"
kill -HUP "$DPID"
sleep 0.5
dg send --to r0003 --subject "恒久エラー"
id=$(head -1 "$T/out")
ok "5xx: the delivery fails" wait_until 10 state_is "$id" failed 1
like "$(sql "SELECT outcome || ' ' || evidence FROM attempt a JOIN delivery d ON d.id=a.delivery WHERE d.alert='$id'")" '^permfail 5[0-9][0-9]' "5xx: permfail with the server's reply"
is "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id=a.delivery WHERE d.alert='$id'")" 1 "5xx: not retried"

# Disconnect after the message's final dot: retried, never lost.
pq=$(peer_smtp_sink "$T/sinkq" -q .)
set_key "channel mail" port "$pq"
kill -HUP "$DPID"
sleep 0.5
dg send --to r0004 --subject "切断"
id=$(head -1 "$T/out")
ok "disconnect mid-DATA: tempfail" wait_until 10 attempts_ge "$id" tempfail 1
is "$(count_state "$id" pending)" 1 "disconnect mid-DATA: still pending, to be retried"
set_key "channel mail" port "$pok"
kill -HUP "$DPID"
ok "disconnect mid-DATA: delivered once the server behaves" wait_until 15 state_is "$id" sent 1

# A certificate for another name: refused, nothing sent, reason shown.
pw=$(peer_aiosmtpd "$T/mailw" --tls wrong)
set_key "channel mail" port "$pw"
set_key "channel mail" tls starttls
set_key "channel mail" ca_file "$T/tls/ca.pem"
kill -HUP "$DPID"
sleep 0.5
dg send --to r0005 --subject "証明書"
id=$(head -1 "$T/out")
ok "wrong certificate: tempfail" wait_until 10 attempts_ge "$id" tempfail 1
is "$(maildir_count "$T/mailw")" 0 "wrong certificate: nothing was sent"
dg channels --json
is "$(json 'd["channels"][0]["state"]')" down "wrong certificate: the channel is down"
like "$(json 'd["channels"][0]["last_error"]')" "certificate|TLS" "wrong certificate: channels says why"

# A server that accepts and never answers: cut off at the deadline.
"$PY" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
conns = []
end = time.time() + 120
while time.time() < end:
    s.settimeout(1)
    try: conns.append(s.accept()[0])
    except OSError: pass
' >"$T/silent.port" &
t_cleanup_add "kill $!"
wait_until 5 test -s "$T/silent.port"
set_key "channel mail" port "$(cat "$T/silent.port")"
set_key "channel mail" tls none
kill -HUP "$DPID"
sleep 0.5
dg send --to r0001 --subject "無応答"
id=$(head -1 "$T/out")
t0=$(date +%s)
fast=1
for i in 1 2 3 4 5; do
	s0=$(date +%s%N)
	dg status >/dev/null
	[ $(( ($(date +%s%N) - s0) / 1000000 )) -lt 1000 ] || fast=0
	sleep 0.5
done
is "$fast" 1 "silent server: dengon status answers within 1 s meanwhile"
ok "silent server: the attempt ends in tempfail" wait_until 20 attempts_ge "$id" tempfail 1
like "$(sql "SELECT error FROM attempt a JOIN delivery d ON d.id=a.delivery WHERE d.alert='$id' AND a.outcome='tempfail' LIMIT 1")" "." "silent server: the reason is recorded"
ok "dengond is still running" kill -0 "$DPID"
d_stop
is "$rc" 0 "dengond stops cleanly"
