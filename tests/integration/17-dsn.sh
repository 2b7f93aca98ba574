#!/bin/bash
# 17-dsn: real delivery status notifications from a real Postfix.  dengon
# sends through a throwaway Postfix instance (DSN NOTIFY=SUCCESS,FAILURE,
# ENVID = the attempt); Postfix delivers one message, and accepts the other
# but cannot pass it on (its next hop refuses it), and sends its DSNs to our sender address, which lands
# in Dovecot; dengond reads them over IMAP: the first delivery becomes
# delivered, the second's attempt a permfail (and, with no other channel,
# the delivery fails), each with the DSN as evidence.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
if [ "$(id -u)" -ne 0 ]; then
	skip "DSNs from Postfix" "a throwaway Postfix needs root"
	exit 0
fi
U=alerts@relay.example.jp
printf 'dsn-pw\n' >"$T/imap.pass"
read -r IMAP _ _ _ LMTP < <(peer_dovecot "$U" "$T/imap.pass" none)
[ -n "$LMTP" ] || { echo "not ok 1 - dovecot did not start"; exit 1; }
# the next hop of bounce.example.jp refuses every recipient (5xx)
bport=$(peer_smtp_sink "$T/sink" -f rcpt) || { echo "not ok 1 - smtp-sink did not start"; exit 1; }
pport=$(peer_postfix "$T/postfix" "$LMTP" "$bport") || { echo "not ok 1 - postfix did not start"; exit 1; }
printf 'id,name,mail\nok1,届く人,ok1@example.jp\nbad1,届かない人,bad1@bounce.example.jp\n' >"$T/contacts.csv"
set_key "channel mail" port "$pport"
set_key "channel mail" from "警報 <$U>"
cat >>"$T/dengon.conf" <<CONF

[inbox dsn]
type          = imap
host          = 127.0.0.1
port          = $IMAP
tls           = none
user          = $U
password_file = $T/imap.pass
poll          = 1s
CONF
dg init
dg contacts import
ok "dengond starts" d_start
dg send --to all --subject "DSN 試験"
id=$(head -1 "$T/out")
not_pending() { [ "$(count_state "$1" pending)" = 0 ]; }
ok "Postfix accepts both (250)" wait_until 15 not_pending "$id"
is "$(sql "SELECT group_concat(substr(evidence, 1, 3)) FROM attempt")" "250,250" "both attempts: 250 from Postfix"
ok "the success DSN makes ok1 delivered" wait_until 30 state_is "$id" delivered 1
ok "the failure DSN makes bad1 failed" wait_until 30 state_is "$id" failed 1
dg status "$id" --json
is "$(json '[x["state"] for x in d["deliveries"] if x["recipient"] == "ok1"][0]')" delivered "ok1: delivered"
like "$(json '[x["attempts"][0]["evidence"] for x in d["deliveries"] if x["recipient"] == "ok1"][0]')" \
    'DSN delivered 2\.0\.0' "ok1: the DSN is the attempt's evidence"
is "$(json '[x["attempts"][0]["outcome"] for x in d["deliveries"] if x["recipient"] == "bad1"][0]')" permfail "bad1: the attempt became a permfail"
like "$(json '[x["attempts"][0]["evidence"] for x in d["deliveries"] if x["recipient"] == "bad1"][0]')" \
    'DSN failed 5\.[0-9]\.[0-9] smtp; 500' "bad1: with the DSN's status and diagnostic"
ok "Postfix's maillog shows the DSNs it sent" grep -q 'sender delivery status notification\|sender non-delivery notification' "$T/postfix/maillog"
d_stop
