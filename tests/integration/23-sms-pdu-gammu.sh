#!/bin/bash
# 23-sms-pdu-gammu: the SMS PDU codec (channels/sms_pdu.c) against another
# implementation, python3-gammu (libgammu), through tests/tools/sms_pdu
# and tests/tools/pdu_gammu.py.  A battery of texts (ASCII, the GSM
# extension characters, Japanese with 【訓練】 and full-width forms,
# emoji, control characters, long texts of 2-4 parts in 7-bit and UCS2,
# texts at the exact boundaries, an escape sequence and a surrogate pair
# where a part ends) is encoded by sms_pdu and every part decoded by
# gammu: number, coding, each part's text, the whole text, the UDH
# (reference, part number, parts), TP-SRR, TP-VP, and each TPDU byte for
# byte against gammu.EncodePDU.  Then PDUs from gammu (SMS-DELIVERs it
# encodes: 7-bit, UCS2, alphanumeric senders, 8- and 16-bit concatenation
# references; SMS-SUBMITs with TP-SRR) and SMS-STATUS-REPORTs that gammu
# decodes are read by `sms_pdu decode` and compared field by field.
# Without python3-gammu the test fails: it never skips.
. "$(dirname "$0")/../lib.sh"
t_setup
SMS=${SMS_PDU:-$DENGON_BIN/../tools/sms_pdu}
HELPER=$TESTS_DIR/tools/pdu_gammu.py
NUM=+819012345678

ok "the test tool is built" test -x "$SMS"
if ! "$PY" -c 'import gammu' 2>"$T/err"; then
	ok "python3-gammu can be imported ($(tail -1 "$T/err"))" false
	exit 1
fi
ok "python3-gammu can be imported" true

# gen NAME PYTHON-EXPR - write the text the expression gives to $T/NAME.
gen() { "$PY" -c 'import sys; sys.stdout.write(eval(sys.argv[1]))' "$2" >"$T/$1"; }

# check DESC FILE EXPECT [sms_pdu encode options] -- [pdu_gammu options]
# - encode $T/FILE to $NUM with at most 4 parts and have gammu read every
# part: EXPECT is "parts=N coding=gsm7|ucs2"; any disagreement is shown.
check() {
	local desc=$1 file=$2 want=$3 enc=() chk=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do enc+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	chk=("$@")
	"$SMS" encode "${enc[@]}" "$NUM" 4 ${REF:+"$REF"} <"$T/$file" \
	    >"$T/parts" 2>"$T/err"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		is "exit $rc: $(cat "$T/err")" "$want" "$desc"
		return
	fi
	is "$("$PY" "$HELPER" check "$NUM" "$T/$file" ${REF:+--ref "$REF"} \
	    "${chk[@]}" <"$T/parts" 2>&1)" "$want" "$desc"
}

# --- texts of one message ------------------------------------------------
printf 'Alert: water outage in Higashi-machi from 10:00. Reply with code ABCD-EFGH.' >"$T/ascii"
check "ASCII, one part" ascii "parts=1 coding=gsm7"
printf 'Level {3} [zone 5] ~2h, cost 5€ | a^b \\ end' >"$T/ext"
check "GSM extension characters ^ { } \\ [ ~ ] | €" ext "parts=1 coding=gsm7"
gen alphabet '"@£$¥èéùìòÇ\nØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&\x27()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"'
check "the whole default alphabet (LF included)" alphabet "parts=1 coding=gsm7"
printf 'tab\there, CR\rthere, FF\f, line\nbreak' >"$T/controls"
check "control characters but LF go as spaces, in 7-bit" controls "parts=1 coding=gsm7"
printf '【訓練】断水のお知らせ　ＡＢＣ－１２３（東町）確認コード：ＧＢ４５－０Ｓ６Ｗ' >"$T/ja"
check "Japanese with 【訓練】 and full-width forms, UCS2" ja "parts=1 coding=ucs2"
printf '⚠️ 地震 😀👍🏻 🇯🇵 OK' >"$T/emoji"
check "emoji (surrogate pairs, ZWJ-free sequences)" emoji "parts=1 coding=ucs2"
printf 'caf\xc3\xa9 ok, but \xc3\xa7a needs UCS2' >"$T/ccedil"
check "ç is not in the alphabet (only Ç): UCS2" ccedil "parts=1 coding=ucs2"

# --- the exact boundaries ------------------------------------------------
gen b160 '"a" * 160'
check "160 septets: one message" b160 "parts=1 coding=gsm7"
gen b161 '"a" * 161'
check "161 septets: two parts" b161 "parts=2 coding=gsm7"
gen b80e '"€" * 80'
check "80 euro signs are 160 septets: one message" b80e "parts=1 coding=gsm7"
gen b459 '"b" * 459'
check "153 x 3 septets: three parts" b459 "parts=3 coding=gsm7"
gen b460 '"b" * 460'
check "153 x 3 + 1 septets: four parts" b460 "parts=4 coding=gsm7"
gen u70 '"あ" * 70'
check "70 UTF-16 units: one message" u70 "parts=1 coding=ucs2"
gen u71 '"あ" * 71'
check "71 UTF-16 units: two parts" u71 "parts=2 coding=ucs2"
gen u201 '"訓" * 201'
check "67 x 3 units: three parts" u201 "parts=3 coding=ucs2"
gen u202 '"訓" * 202'
check "67 x 3 + 1 units: four parts" u202 "parts=4 coding=ucs2"
gen u35e '"😀" * 35'
check "35 emoji are 70 units: one message" u35e "parts=1 coding=ucs2"

# --- nothing cut where a part ends ---------------------------------------
gen escedge '"x" * 152 + "€" + "y" * 10'
check "an escape sequence at septet 153 moves to part 2" escedge "parts=2 coding=gsm7"
gen escedge2 '"x" * 151 + "[]" + "y" * 200'
check "escapes at 152-155 across a boundary" escedge2 "parts=3 coding=gsm7"
gen suredge '"あ" * 66 + "😀" + "い" * 5'
check "a surrogate pair at unit 67 moves to part 2" suredge "parts=2 coding=ucs2"
gen suredge2 '"😀" * 34 + "あ" * 70'
check "surrogate pairs up to unit 68: the 34th opens part 2" suredge2 "parts=3 coding=ucs2"

# --- long texts of 2-4 parts -----------------------------------------------
gen long7 '" ".join("Line %d: the pumping station on route %d is closed until further notice." % (i, i * 7) for i in range(7))'
check "a long 7-bit text: four parts" long7 "parts=4 coding=gsm7"
gen long7b '"Evacuation order for districts 1-4; {go to} the [school] gym. " * 4'
check "a long 7-bit text with extension characters: two parts" long7b "parts=2 coding=gsm7"
gen longja '"【訓練】本日10時より総合防災訓練を実施します。各課は所定の手順で安否を報告してください。（ＴＥＬ：０３－１２３４－５６７８）" * 3'
check "a long Japanese text: three parts" longja "parts=3 coding=ucs2"
gen longmix '"避難所は東町会館です😀 Shelter: Higashi-machi hall. " * 5'
check "Japanese, English and emoji: four parts" longmix "parts=4 coding=ucs2"

# --- the reference, TP-SRR and TP-VP ---------------------------------------
REF=200 check "reference 200 in every part" long7b "parts=2 coding=gsm7"
REF=0 check "reference 0" longja "parts=3 coding=ucs2"
check "a status report requested (TP-SRR)" ascii "parts=1 coding=gsm7" -s -- --srr
check "TP-SRR on every part" longja "parts=3 coding=ucs2" -s -- --srr
for vp in 5 61 720 721 1440 2000 43200 43201 70000 700000; do
	check "validity period $vp minutes" ascii "parts=1 coding=gsm7" \
	    -v "$vp" -- --vp "$vp"
done
check "TP-SRR, a validity period and parts" long7 "parts=4 coding=gsm7" \
    -s -v 1440 -- --srr --vp 1440

# --- what is refused ---------------------------------------------------------
gen b613 '"c" * 613'
"$SMS" encode "$NUM" 4 <"$T/b613" >"$T/out" 2>"$T/err"
is "$?" 1 "five parts where four are allowed: refused"
like "$(cat "$T/err")" "needs 5 parts.*4 allowed" "and the reason said"
is "$(wc -c <"$T/out")" 0 "and nothing printed"
for n in '+8190;1234' $'+81\r90' '+++' 'AT' '' '+0812345' '+1234567890123456' \
    '819012345678' '+81 90'; do
	"$SMS" encode "$n" 4 <"$T/ascii" >"$T/out" 2>"$T/err"
	is "$?" 1 "number $(printf '%q' "$n") refused"
done
like "$(cat "$T/err")" "number '\+81\?90' is not" "the number is shown, made printable"
printf 'bad \xff utf-8' >"$T/bad"
"$SMS" encode "$NUM" 4 <"$T/bad" >"$T/out" 2>"$T/err"
is "$?" 1 "invalid UTF-8 refused"
like "$(cat "$T/err")" "not valid UTF-8 \(byte 4\)" "with where"

# --- PDUs from gammu, read by sms_pdu decode -----------------------------------
n=0
while IFS=$'\t' read -r name hex; do
	n=$((n + 1))
	got=$("$SMS" decode "$hex" 2>&1)
	is "$("$PY" "$HELPER" compare "$hex" "$got" 2>&1)" "" "gammu and sms_pdu decode agree: $name"
done < <("$PY" "$HELPER" pdus)
ok "gammu gave at least 16 PDUs ($n)" test "$n" -ge 16
