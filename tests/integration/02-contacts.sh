#!/bin/bash
# 02-contacts: CSV import through the CLI - UTF-8, BOM, CP932, all or
# nothing, every bad row named by line and column, warnings for fewer than
# two contact means, and a re-import never changing accepted alerts.
. "$(dirname "$0")/../lib.sh"
t_setup
dg init

cat >"$T/c.csv" <<'CSV'
id,name,org,groups,mail,fax,sms
kanto-01,山田 太郎,関東放送,broadcast;kanto,yamada@example.jp,03-1234-5678,090-1111-2222
kanto-02,"佐藤, 花子","東京""水道""",water,sato@example.jp,,+81 90 3333 4444
CSV
exits 0 "import a UTF-8 directory" contacts import "$T/c.csv"
exits 0 "list the directory as JSON" contacts list --json
is "$(json 'len(d)')" 2 "two recipients listed"
is "$(json 'd[0]["fax"]')" "+81312345678" "national fax number stored in E.164"
is "$(json 'd[1]["name"]')" "佐藤, 花子" "quoted field with a comma"
is "$(json 'd[1]["org"]')" '東京"水道"' "doubled quotes inside a quoted field"
is "$(json 'd[1]["sms"]')" "+819033334444" "spaces removed from an E.164 number"
is "$(json 'd[0]["groups"]')" "['broadcast', 'kanto']" "groups split on ;"
exits 0 "list one group" contacts list --group water --json
is "$(json '[c["id"] for c in d]')" "['kanto-02']" "only the group's members"

# BOM and CP932
printf '\xef\xbb\xbfid,name,mail,sms\nb1,鈴木,b1@example.jp,09012345678\n' >"$T/bom.csv"
exits 0 "import UTF-8 with a BOM" contacts import "$T/bom.csv"
dg contacts list --json
is "$(json 'd[0]["id"]')" b1 "BOM not part of the first column name"
printf 'id,name,mail,sms\nc1,高橋 一郎,c1@example.jp,09012345678\n' |
    iconv -f UTF-8 -t CP932 >"$T/sjis.csv"
exits 0 "import CP932 (detected)" contacts import "$T/sjis.csv"
dg contacts list --json
is "$(json 'd[0]["name"]')" "高橋 一郎" "CP932 name decoded"
exits 0 "import CP932 with --encoding cp932" contacts import "$T/sjis.csv" --encoding cp932
exits 2 "CP932 bytes under --encoding utf-8 are refused" contacts import "$T/sjis.csv" --encoding utf-8

# All or nothing: one bad row among good ones imports nothing.
exits 0 "re-import the first directory" contacts import "$T/c.csv"
cat >"$T/bad.csv" <<'CSV'
id,name,mail,fax,sms
ok1,正常,ok1@example.jp,03-1111-2222,
bad1,注入,"x@example.jp
Bcc: victim@example.com",,
bad2,番号,bad2@example.jp,03-1234-5678;ATD110,
bad3,文字,bad3@example.jp,,090-CALL-ME
CSV
exits 2 "a directory with bad rows is refused" contacts import "$T/bad.csv"
err=$(cat "$T/err")
like "$err" "bad.csv:3: column 'mail'" "header injection in mail named by line and column"
like "$err" "bad.csv:5: column 'fax'" "AT command in a fax number named (line after a multi-line field)"
like "$err" "bad.csv:6: column 'sms'" "letters in a number named"
dg contacts list --json
is "$(json 'sorted(c["id"] for c in d)')" "['kanto-01', 'kanto-02']" "nothing of the bad file was imported"

# Fewer than two contact means: accepted with a warning.
printf 'id,name,mail\nw1,渡辺,w1@example.jp\n' >"$T/one.csv"
exits 0 "a recipient with one contact means is imported" contacts import "$T/one.csv"
like "$(cat "$T/err")" "warning: .*w1" "with a warning naming the recipient"

# Re-import after an alert: the alert keeps the addresses it was made with.
exits 0 "import" contacts import "$T/c.csv"
exits 0 "send to kanto-01" send --to kanto-01 --subject "試験"
id=$(head -1 "$T/out")
sed 's/yamada@example.jp/changed@example.jp/' "$T/c.csv" >"$T/c2.csv"
exits 0 "re-import with a changed address" contacts import "$T/c2.csv"
is "$(sql "SELECT mail FROM delivery WHERE alert='$id'")" "yamada@example.jp" \
    "the accepted delivery keeps its original address"
