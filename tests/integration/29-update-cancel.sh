#!/bin/bash
# sanitizer: skip
# 29-update-cancel: `dengon update` and `dengon cancel` through the real
# daemon, with a mail sink (aiosmtpd) and an emulated modem.
#  - update: a new revision; the recipients already reached get it at once
#    on the channel that reached them, as a new message that threads by
#    References to the first and says it is an update; the others get it
#    when their step comes; the code stays the same.
#  - cancel: every pending attempt stops: the SMS step due later never
#    happens, the deliveries are cancelled, and a confirmation after that
#    is refused.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
MAIL=$T/mail
mport=$(peer_aiosmtpd "$MAIL") || { echo "not ok 1 - aiosmtpd did not start"; exit 1; }
modem=$(peer_modem m) || { echo "not ok 1 - modem did not start"; exit 1; }
set_key "channel mail" port "$mport"
set_key relay retry_min 1s
set_key relay retry_max 2s
set_key "policy standard" steps "mail, sms@6s"
cat >>"$T/dengon.conf" <<CONF

[channel sms]
type           = sms
devices        = $(readlink -f "$modem")
CONF
cat >"$T/contacts.csv" <<'CSV'
id,name,mail,sms
u1,利用者 一,u1@example.jp,+819011110001
u2,利用者 二,u2@example.jp,+819011110002
u3,利用者 三,,+819011110003
CSV
dg init
exits 0 "contacts import" contacts import
ok "dengond starts" d_start

printf '第一報です。\n' >"$T/b1.txt"
exits 0 "send alert A" send --to all --subject "第一報" --body-file "$T/b1.txt"
A=$(head -1 "$T/out")
ok "u1 and u2 are reached by mail" wait_until 20 maildir_ge "$MAIL" 2
printf '第二報：内容を訂正します。\n' >"$T/b2.txt"
exits 0 "update A" update "$A" --subject "第二報" --body-file "$T/b2.txt"
is "$(head -1 "$T/out")" "$A revision 2" "revision 2 accepted"
ok "u1 and u2 get revision 2 by mail at once" wait_until 10 maildir_ge "$MAIL" 4
"$PY" - "$MAIL" >"$T/mails.txt" <<'PY'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    print("|".join([str(m["To"]), str(m["Subject"]), str(m["Message-ID"]),
                    str(m.get("References", "")), m.get_content().replace("\n", " ")]))
PY
is "$(grep -c '第二報' "$T/mails.txt")" 2 "two messages carry the new subject"
like "$(grep '第二報' "$T/mails.txt" | head -1)" "【更新】" "the update says so"
like "$(grep '第二報' "$T/mails.txt" | head -1)" "\.r2\.n0@" "its Message-ID is revision 2's"
ok "it refers to the first message (References)" bash -c \
    "grep '第二報' '$T/mails.txt' | awk -F'|' '\$4 ~ /\\.r1\\.n0@/' | grep -q ."
like "$(grep '第二報' "$T/mails.txt" | head -1)" "内容を訂正します" "with the new text"
code_u1=$(sql "SELECT code FROM delivery WHERE alert = '$A' AND recipient = 'u1'")
like "$(grep '第二報' "$T/mails.txt" | grep u1@)" "${code_u1:0:4}-${code_u1:4:4}" \
    "u1 keeps its code"
ok "u3 (SMS only) gets revision 2 by SMS at its step" wait_until 20 bash -c \
    "'$PY' '$TESTS_DIR/modem/smslog.py' messages '$T/peers/m.jsonl' | grep '+819011110003' | grep -q '第二報'"
ok "u1 and u2 get their SMS step with revision 2" wait_until 20 bash -c \
    "[ \$('$PY' '$TESTS_DIR/modem/smslog.py' messages '$T/peers/m.jsonl' | grep -c '第二報') -ge 3 ]"
is "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$A' AND a.channel = 'sms' AND a.revision = 1")" \
    0 "no SMS of the superseded revision went out"
like "$(sql "SELECT why FROM event WHERE alert = '$A' AND what = 'updated'")" \
    "revision 2" "the event log records the update"

# --- cancel ------------------------------------------------------------------
printf '訓練の通知です。\n' >"$T/b3.txt"
exits 0 "send alert B" send --to all --subject "通知B" --body-file "$T/b3.txt"
B=$(head -1 "$T/out")
ok "u1 and u2 are reached by mail" wait_until 20 bash -c \
    "[ \$(grep -l '通知B' '$MAIL'/new/* 2>/dev/null | wc -l) -ge 2 ] || \
     [ \$(grep -rl 'X-Dengon-Alert: $B' '$MAIL/new' | wc -l) -ge 2 ]"
before=$("$PY" "$TESTS_DIR/modem/smslog.py" messages "$T/peers/m.jsonl" | wc -l)
exits 0 "cancel B" cancel "$B" --reason "誤報のため取消"
like "$(cat "$T/out")" "3 deliveries stopped" "every delivery stopped"
is "$(count_state "$B" cancelled)" 3 "B's deliveries are cancelled"
sleep 8
is "$("$PY" "$TESTS_DIR/modem/smslog.py" messages "$T/peers/m.jsonl" | wc -l)" "$before" \
    "the SMS step due 6 s after B's acceptance never happens"
is "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND a.channel = 'sms'")" \
    0 "no SMS attempt for B"
like "$(sql "SELECT why FROM event WHERE alert = '$B' AND what = 'cancelled'")" \
    "誤報のため取消" "the event log has the reason"
# the recipients B reached (u1 and u2, by mail) are told, on that channel
# sql_is N QUERY - the query's one value is N (for wait_until)
sql_is() { [ "$(sql "$2")" = "$1" ]; }
ok "u1 and u2 get a cancellation notice by mail" wait_until 15 sql_is 2 \
    "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND a.notice = 'cancel' AND a.outcome = 'ok'"
"$PY" - "$MAIL" "$B" >"$T/notices.txt" <<'PY'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    if m["X-Dengon-Alert"] == sys.argv[2] and "取消" in str(m["Subject"]):
        print("|".join([str(m["To"]), str(m["Subject"]), str(m["Message-ID"]),
                        str(m.get("References", "")),
                        m.get_content().replace("\n", " ")]))
PY
is "$(wc -l <"$T/notices.txt")" 2 "two notices arrived, one each"
is "$(cut -d'|' -f1 "$T/notices.txt" | grep -o 'u[0-9]@example.jp' | sort | tr '\n' ' ')" "u1@example.jp u2@example.jp " \
    "to u1 and u2"
like "$(head -1 "$T/notices.txt")" "【取消】.*通知B" "the subject says it is cancelled"
like "$(head -1 "$T/notices.txt")" "誤報のため取消" "with the reason"
like "$(head -1 "$T/notices.txt")" "返信は不要" "asking for nothing"
code_b=$(sql "SELECT code FROM delivery WHERE alert = '$B' AND recipient = 'u1'")
unlike "$(cat "$T/notices.txt")" "${code_b:0:4}-${code_b:4:4}" "no confirmation code in it"
like "$(head -1 "$T/notices.txt" | cut -d'|' -f3)" "\.cancel@" "its own Message-ID"
like "$(head -1 "$T/notices.txt" | cut -d'|' -f4)" "\.r1\.n0@" "threaded to the alert (References)"
is "$(sql "SELECT count(*) FROM event WHERE alert = '$B' AND what = 'notice-sent'")" 2 \
    "the event log records each notice"
exits 0 "status --json" status "$B" --json
is "$(json "sum(1 for r in d['deliveries'] for a in r['attempts'] if a['notice'] == 'cancel')")" 2 \
    "status --json shows the notices as attempts"
is "$(sql "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$B' AND d.recipient = 'u3'")" 0 \
    "u3, never reached, is not told"
exits 4 "a confirmation after the cancel is refused" confirm "$B" u1 --via phone --by t

# --- cancel after SMS, with a recipient who had confirmed ---------------------
printf '第三の通知です。\n' >"$T/b4.txt"
exits 0 "send alert C" send --to all --subject "通知C" --body-file "$T/b4.txt"
C=$(head -1 "$T/out")
ok "u1 and u2 are reached by mail" wait_until 5 sql_is 2 \
    "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$C' AND a.outcome = 'ok'"
exits 0 "u1 confirms C by phone" confirm "$C" u1 --via phone --by t
ok "u2 and u3 are reached by SMS at the second step" wait_until 20 bash -c \
    "[ \$('$PY' '$TESTS_DIR/modem/smslog.py' messages '$T/peers/m.jsonl' | grep -c '通知C') -ge 2 ]"
exits 0 "cancel C" cancel "$C" --reason "訓練終了"
is "$(state_of "$C" u1)" confirmed "u1 stays confirmed"
ok "u3 gets the notice by SMS" wait_until 20 bash -c \
    "'$PY' '$TESTS_DIR/modem/smslog.py' messages '$T/peers/m.jsonl' | grep '+819011110003' | grep -q '【取消】通知番号 $C'"
ok "u2 gets it by SMS too" wait_until 20 bash -c \
    "'$PY' '$TESTS_DIR/modem/smslog.py' messages '$T/peers/m.jsonl' | grep '+819011110002' | grep -q '【取消】通知番号 $C'"
ok "u1 (confirmed) and u2 get it by mail" wait_until 20 bash -c \
    "[ \$(grep -rl 'X-Dengon-Alert: $C' '$MAIL/new' | xargs grep -l 'cancel@' | wc -l) -ge 2 ]"
is "$(sql "SELECT count(*) FROM notice n JOIN delivery d ON d.id = n.delivery WHERE d.alert = '$C'")" 4 \
    "four notices: u1 mail, u2 mail and SMS, u3 SMS"
ok "each is sent" wait_until 20 sql_is 4 \
    "SELECT count(*) FROM notice n JOIN delivery d ON d.id = n.delivery WHERE d.alert = '$C' AND n.state = 'sent'"
sms_c=$("$PY" "$TESTS_DIR/modem/smslog.py" messages "$T/peers/m.jsonl" | grep '【取消】通知番号 '"$C" | head -1)
code_c=$(sql "SELECT code FROM delivery WHERE alert = '$C' AND recipient = 'u3'")
unlike "$sms_c" "${code_c:0:4}" "the SMS notice carries no code"
# --- an update reaches those who had confirmed, asking for nothing ----------
printf '第一報（D）です。\n' >"$T/b5.txt"
exits 0 "send alert D to u1 and u2" send --to u1,u2 --subject "通知D" --body-file "$T/b5.txt"
D=$(head -1 "$T/out")
ok "u1 and u2 are reached by mail" wait_until 10 sql_is 2 \
    "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$D' AND a.outcome = 'ok'"
exits 0 "u1 confirms D by phone" confirm "$D" u1 --via phone --by t
printf '第二報（D）：避難所を追加します。\n' >"$T/b6.txt"
exits 0 "update D" update "$D" --body-file "$T/b6.txt"
ok "u1 (confirmed) gets the update as a notice" wait_until 15 sql_is 1 \
    "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$D' AND d.recipient = 'u1' AND a.notice = 'update' AND a.outcome = 'ok'"
ok "u2 (not confirmed) gets revision 2 as the alert itself" wait_until 15 sql_is 1 \
    "SELECT count(*) FROM attempt a JOIN delivery d ON d.id = a.delivery WHERE d.alert = '$D' AND d.recipient = 'u2' AND a.revision = 2 AND a.notice IS NULL AND a.outcome = 'ok'"
"$PY" - "$MAIL" "$D" >"$T/upd.txt" <<'PY'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for k in box.keys():
    m = email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
    if m["X-Dengon-Alert"] == sys.argv[2] and "避難所" in m.get_content():
        print("|".join([str(m["To"]), str(m["Subject"]), str(m["Message-ID"]),
                        str(m.get("References", "")),
                        m.get_content().replace("\n", " ")]))
PY
u1line=$(grep 'u1@' "$T/upd.txt")
like "$u1line" "【更新】" "u1's update says it is an update"
like "$u1line" "受信確認は済んでいます" "and that u1 has confirmed already"
code_d=$(sql "SELECT code FROM delivery WHERE alert = '$D' AND recipient = 'u1'")
unlike "$u1line" "${code_d:0:4}-${code_d:4:4}" "it asks for no code"
like "$(echo "$u1line" | cut -d'|' -f3)" "\.update\.r2@" "its own Message-ID"
like "$(echo "$u1line" | cut -d'|' -f4)" "\.r1\.n0@" "in the first message's thread"
code_d2=$(sql "SELECT code FROM delivery WHERE alert = '$D' AND recipient = 'u2'")
like "$(grep 'u2@' "$T/upd.txt")" "${code_d2:0:4}-${code_d2:4:4}" "u2's asks for its code"
is "$(state_of "$D" u1)" confirmed "u1 stays confirmed"
exits 3 "updating an unknown alert" update 20000101-0001 --body-file "$T/b1.txt"
exits 3 "cancelling an unknown alert" cancel 20000101-0001
ok "dengond stops" d_stop
