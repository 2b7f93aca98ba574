#!/bin/bash
# 05-spool: alerts dropped as files into SPOOL/incoming are accepted
# (moved to done/) or rejected (moved to rejected/ beside a .error file).
. "$(dirname "$0")/../lib.sh"
t_setup
t_contacts 10
dg init
dg contacts import
S=$T/spool

drop() {	# drop NAME: stdin into tmp/, then rename into incoming/
	cat >"$S/tmp/$1" && mv "$S/tmp/$1" "$S/incoming/$1"
}
drop 001-ok.alert <<'EOF2'
To: r0001, group:even
Subject: 断水のお知らせ
TLP: AMBER
Expires: 2h
Drill: yes

本日 14 時より断水します。
EOF2
drop 002-badheader.alert <<'EOF2'
To: r0001
Subjcet: typo

body
EOF2
drop 003-badtlp.alert <<'EOF2'
To: r0001
TLP: PURPLE

body
EOF2
drop 004-unknown.alert <<'EOF2'
To: r0001, nobody

body
EOF2
drop 005-noblank.alert <<'EOF2'
To: r0001
Subject: no body separator
EOF2
printf 'To: r0001\n\n\xff\xfe\n' | drop 006-binary.alert
echo "x" | drop 007-notes.txt

exits 0 "dengon spool processes the folder" spool
like "$(cat "$T/out")" "1 accepted, 6 rejected" "one accepted, six rejected"
ok "the good file moved to done/" test -f "$S/done/001-ok.alert"
ok "incoming/ is empty" test -z "$(ls -A "$S/incoming")"
id=$(sql "SELECT id FROM alert ORDER BY created DESC LIMIT 1")
dg status "$id" --json
is "$(json 'd["recipients"]')" 6 "To: r0001 and group:even: six recipients"
is "$(json 'd["tlp"]')" AMBER "TLP from the file"
is "$(json 'd["drill"]')" True "Drill from the file"
is "$(json 'd["subject"]')" "断水のお知らせ" "Subject from the file"
is "$(sql "SELECT body FROM alert_revision WHERE alert='$id'")" "本日 14 時より断水します。" "the body after the blank line"
is "$(sql "SELECT (expires - created)/1000 FROM alert WHERE id='$id'")" 7200 "Expires from the file"
for f in 002-badheader 003-badtlp 004-unknown 005-noblank 006-binary; do
	ok "$f moved to rejected/" test -f "$S/rejected/$f.alert"
	ok "$f has a .error file" test -s "$S/rejected/$f.alert.error"
done
like "$(cat "$S/rejected/002-badheader.alert.error")" "002-badheader.alert:2: unknown header 'Subjcet'" ".error names the line and the problem"
like "$(cat "$S/rejected/003-badtlp.alert.error")" "TLP" ".error names the bad TLP"
like "$(cat "$S/rejected/004-unknown.alert.error")" "nobody" ".error names the unknown recipient"
like "$(cat "$S/rejected/006-binary.alert.error")" "UTF-8" ".error says the body is not UTF-8"
ok "a file of another type is rejected" test -f "$S/rejected/007-notes.txt.error"

# Accepted once only: the same file dropped again after a crash between
# commit and rename (simulated by copying it back) is not accepted twice.
n=$(sql "SELECT count(*) FROM alert")
cp "$S/done/001-ok.alert" "$S/incoming/001-ok.alert"
exits 0 "spool again" spool
is "$(sql "SELECT count(*) FROM alert")" "$n" "a file already accepted is not accepted again"
ok "it is moved to done/" test -z "$(ls -A "$S/incoming")"
