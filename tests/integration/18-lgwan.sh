#!/bin/bash
# 18-lgwan: closed-network mail (channels/lgwan.c) through the real daemon,
# with two real SMTP servers (aiosmtpd): the internet one behind
# [channel mail] (type smtp) and the closed-network smarthost behind
# [channel lgwan] (type lgwan, domains = lg.jp, charset = iso-2022-jp,
# max_size = 4k), and a policy of steps = mail+lgwan.  The lgwan sink gets
# ISO-2022-JP that Python's codec decodes to the normalised text; an
# oversized body is cut with the notice and the code kept; an address
# outside `domains` (put in by SQL: import refuses it) fails permanently
# with the reason; and with the lgwan sink down, the internet sink never
# gets a message for an lgwan address while the lgwan attempts tempfail and
# are retried (and arrive once the smarthost is back).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
INET=$T/inet
LG=$T/lg
iport=$(peer_aiosmtpd "$INET") || { echo "not ok 1 - internet aiosmtpd did not start"; exit 1; }
lport=$(peer_aiosmtpd "$LG") || { echo "not ok 1 - lgwan aiosmtpd did not start"; exit 1; }
set_key "channel mail" port "$iport"
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "policy standard" steps "mail+lgwan"
cat >>"$T/dengon.conf" <<CONF

[channel lgwan]
type           = lgwan
host           = 127.0.0.1
port           = $lport
tls            = none
from           = 警報センター <alerts@bureau.example.lg.jp>
domains        = lg.jp
charset        = iso-2022-jp
max_size       = 4k
timeout        = 10s
CONF
cat >"$T/contacts.csv" <<'CSV'
id,name,org,mail,lgwan
r1,髙橋 一郎,㈱東町水道,r1@example.jp,r1@city.example.lg.jp
r2,山田 花子,西町役場,r2@example.jp,r2@lg.jp
r3,佐藤 次郎,南町役場,r3@example.jp,r3@town.example.lg.jp
CSV
dg init
exits 0 "contacts with lgwan addresses import" contacts import

# --- an address outside domains is refused at import ----------------------
cp "$T/contacts.csv" "$T/good.csv"
printf 'r4,外部 太郎,,r4@example.jp,r4@gmail.com\n' >>"$T/contacts.csv"
exits 2 "import refuses an lgwan address outside domains" contacts import
like "$(cat "$T/err")" "r4@gmail.com' is outside the domains" "import says why"
cp "$T/good.csv" "$T/contacts.csv"

# --- accepted while the daemon is down; r3's lgwan address forged by SQL --
printf '①避難所は㈱東町会館です～髙橋課長まで。\n第二報は追って。\n.\n以上\n' >"$T/body.txt"
exits 0 "send to all" send --to all --subject "断水のお知らせ①" \
    --body-file "$T/body.txt" --tlp AMBER
A1=$(head -1 "$T/out")
sql "UPDATE delivery SET lgwan = 'r3@gmail.com' WHERE alert = '$A1' AND recipient = 'r3'"
is "$(sql "SELECT lgwan FROM delivery WHERE alert = '$A1' AND recipient = 'r3'")" \
    "r3@gmail.com" "r3's lgwan address is now outside domains"

ok "dengond starts" d_start
ok "the internet sink gets A1's 3 messages" wait_until 60 maildir_ge "$INET" 3
ok "the lgwan sink gets A1's 2 messages" wait_until 60 maildir_ge "$LG" 2
# (sent once A1 is out: one alert per dispatch pass, see the report on
# relay/dengond.c pass_text())
awk 'BEGIN { for (i = 0; i < 400; i++) printf "%04d行目：長い本文の一行です。\n", i }' >"$T/big.txt"
exits 0 "send an oversized body to r1" send --to r1 --subject "長文" \
    --body-file "$T/big.txt"
A2=$(head -1 "$T/out")
ok "the internet sink gets 4 messages" wait_until 60 maildir_ge "$INET" 4
ok "the lgwan sink gets 3 messages" wait_until 60 maildir_ge "$LG" 3
ok "r3's lgwan attempt ends" wait_until 30 attempts_ge "$A1" permfail 1
sleep 1
is "$(maildir_count "$INET")" 4 "the internet sink holds exactly 4"
is "$(maildir_count "$LG")" 3 "the lgwan sink holds exactly 3"

# r3 on lgwan: permfail, with the reason, never sent anywhere
q="SELECT a.outcome || '|' || a.error FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A1' AND d.recipient = 'r3' AND a.channel = 'lgwan'"
is "$(sql "$q")" "permfail|lgwan: address r3@gmail.com is outside the closed network (domains: lg.jp)" \
    "r3's lgwan attempt fails permanently with the reason"
is "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A1' AND d.recipient = 'r3' AND a.channel = 'lgwan'")" 1 \
    "and is not retried"
is "$(sql "SELECT group_concat(a.channel || '=' || a.outcome, ' ') FROM (SELECT a.* FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A1' AND d.recipient = 'r3' AND a.channel = 'mail') a")" \
    "mail=ok" "r3 still gets its internet mail"

dg status "$A1" --json --show-codes
cp "$T/out" "$T/a1.json"
dg status "$A2" --json --show-codes
cp "$T/out" "$T/a2.json"

# What each sink holds, read with Python's email package and codecs.
# inet: every envelope recipient; lgwan: per message, checks.
"$PY" - "$INET" "$LG" "$T/a1.json" "$T/a2.json" "$A1" "$A2" >"$T/check" <<'PYEOF'
import email, email.policy, json, mailbox, sys
inet, lg, a1, a2, A1, A2 = sys.argv[1:]
codes = {}
for f in (a1, a2):
    d = json.load(open(f))
    for x in d["deliveries"]:
        codes[(d["alert"], x["recipient"])] = x["code"]
def fmt(c): return c if "-" in c else c[:4] + "-" + c[4:]
def msgs(path):
    box = mailbox.Maildir(path, factory=None, create=False)
    for k in box.keys():
        raw = box.get_bytes(k)
        yield raw, email.message_from_bytes(raw, policy=email.policy.default)
rcpts = sorted(m["X-RcptTo"] + "/" + m["To"].addresses[0].addr_spec for _, m in msgs(inet))
print("inet_rcpts", " ".join(rcpts))
for raw, m in msgs(lg):
    to = m["To"].addresses[0].addr_spec
    alert = m["X-Dengon-Alert"]
    rid = to.split("@")[0]
    body_raw = raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else raw.split(b"\r\n\r\n", 1)[1]
    seven = all(b < 0x80 for b in raw)
    ctype = m.get_content_type() + ";" + m.get_content_charset()
    text = m.get_content()
    subj = str(m["Subject"])
    code = fmt(codes[(alert, rid)])
    tag = "A1" if alert == A1 else "A2"
    print(tag, rid, "7bit=%d" % seven, "ctype=" + ctype,
          "cte=" + m["Content-Transfer-Encoding"],
          "esc=%d" % (b"\x1b$B" in body_raw),
          "size=%d" % len(raw),
          "norm=%d" % ("(1)避難所は(株)東町会館です〜高橋課長まで。\n第二報は追って。\n.\n以上\n" in text),
          "raw_bad=%d" % any(c in text for c in "①㈱～髙"),
          "subj=%d" % ("断水のお知らせ(1)" in subj if tag == "A1" else "長文" in subj),
          "subjcode=%d" % (code in subj),
          "code=%d" % (("確認コード: " + code) in text),
          "alertid=%d" % (("通知番号: " + alert) in text),
          "cut=%d" % ("本文は長さの上限により省略されました" in text),
          "first=%d" % ("0000行目：長い本文の一行です。" in text),
          "last=%d" % ("0399行目" in text),
          "name=%d" % (str(m["To"]).startswith("高橋 一郎") if rid == "r1" else 1))
PYEOF
sed 's/^/# /' "$T/check"
inet_rcpts=$(awk '$1 == "inet_rcpts"' "$T/check")
is "$inet_rcpts" "inet_rcpts r1@example.jp/r1@example.jp r1@example.jp/r1@example.jp r2@example.jp/r2@example.jp r3@example.jp/r3@example.jp" \
    "the internet sink got only the mail addresses"
for r in r1 r2; do
	line=$(awk -v r=$r '$1 == "A1" && $2 == r' "$T/check")
	like "$line" "7bit=1 ctype=text/plain;iso-2022-jp cte=7bit esc=1" "A1 to $r: text/plain ISO-2022-JP, 7bit"
	like "$line" "norm=1 raw_bad=0" "A1 to $r: decodes to the normalised text (①→(1) ㈱→(株) ～→〜 髙→高; a lone . line intact)"
	like "$line" "subj=1 subjcode=1 code=1 alertid=1 cut=0" "A1 to $r: Subject decodes, code and alert id present, not cut"
done
like "$(awk '$1 == "A1" && $2 == "r1"' "$T/check")" "name=1" "the recipient's name is normalised too (髙橋 → 高橋)"
line=$(awk '$1 == "A2" && $2 == "r1"' "$T/check")
like "$line" "7bit=1" "A2 (oversized) is 7bit ISO-2022-JP"
size=$(sed -n 's/.* size=\([0-9]*\).*/\1/p' <<<"$line")
ok "A2 on lgwan fits in max_size 4k (got $size bytes, as stored by the sink)" test "$size" -le 4200
like "$line" "code=1 alertid=1 cut=1 first=1 last=0" "A2 is cut with the notice, its code and alert id intact"
is "$(grep -l 'X-Dengon-Alert: '"$A2" "$INET"/new/* | wc -l)" 1 "A2 went by internet mail too"
ok "and there it is not cut (no max_size on smtp)" test "$(wc -c <"$(grep -l 'X-Dengon-Alert: '"$A2" "$INET"/new/*)")" -gt 8000

exits 0 "render the lgwan mail of r1" render "$A1" --recipient r1 --channel lgwan
like "$(grep -a -m1 '^Content-Type:' "$T/out" | tr -d '\r')" "charset=ISO-2022-JP" "render shows the ISO-2022-JP message"
exits 2 "render of r3 on lgwan is refused" render "$A1" --recipient r3 --channel lgwan
like "$(cat "$T/err")" "outside the closed network" "with the reason"

# --- the lgwan smarthost goes down -----------------------------------------
kill "$(cat "$T/peers/aiosmtpd-$lport.pid")"
ok "the lgwan sink is down" wait_until 10 sh -c "! awk -v p=\":\$(printf '%04X' $lport)\" '\$4 == \"0A\" && substr(\$2, length(\$2) - 4) == p { f = 1 } END { exit !f }' /proc/net/tcp"
exits 0 "send while the lgwan sink is down" send --to all --subject "停止中" \
    --body-file "$T/body.txt"
A3=$(head -1 "$T/out")
ok "the internet sink gets A3's 3 mails" wait_until 60 maildir_ge "$INET" 7
ok "lgwan attempts tempfail and are retried (>= 6 tempfails for 3 recipients)" \
    wait_until 60 attempts_ge "$A3" tempfail 6
is "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A3' AND a.channel = 'lgwan' AND a.outcome <> 'tempfail'")" 0 \
    "every lgwan attempt of A3 so far is a tempfail"
is "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A3' AND a.channel <> 'lgwan' AND a.address LIKE '%lg.jp'")" 0 \
    "no attempt on another channel carries an lgwan address"
is "$(maildir_count "$INET")" 7 "the internet sink holds only the 3 new mail messages"
"$PY" - "$INET" >"$T/rcpts" <<'PYEOF'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    print(m["X-RcptTo"], m["To"].addresses[0].addr_spec)
PYEOF
is "$(grep -c 'lg\.jp\|gmail' "$T/rcpts")" 0 "the internet sink never received an lgwan address"
is "$(grep -c '@example\.jp' "$T/rcpts")" 7 "only mail addresses"
is "$(sql "SELECT count(*) FROM delivery WHERE alert = '$A3' AND state IN ('failed', 'expired')")" 0 \
    "no A3 delivery failed because the lgwan sink is down"

# --- it comes back: the retries go through ----------------------------------
_peer_start "aiosmtpd-again" "$PEER_PY" -m aiosmtpd -n -l "127.0.0.1:$lport" \
    -c aiosmtpd.handlers.Mailbox "$LG"
ok "the lgwan sink is back on its port" peer_wait_port "$lport" 10
ok "A3's 3 lgwan messages arrive on retry" wait_until 60 maildir_ge "$LG" 6
ok "A3's lgwan attempts end ok" wait_until 10 attempts_ge "$A3" ok 6
is "$(maildir_count "$INET")" 7 "the internet sink still holds 7"
d_stop
is "$rc" 0 "dengond stops cleanly"
