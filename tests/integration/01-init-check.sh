#!/bin/bash
# 01-init-check: `dengon init` creates the queue (0660), the secret key
# (0600) and the spool, idempotently and without overwriting the key;
# `dengon check` validates config and contacts with FILE:LINE messages.
. "$(dirname "$0")/../lib.sh"
t_setup
t_contacts 3

exits 0 "init on a fresh configuration" init
ok "queue database created" test -f "$T/queue.db"
is "$(stat -c %a "$T/queue.db")" 660 "queue database is mode 0660"
is "$(stat -c %a "$T/secret.key")" 600 "secret key is mode 0600"
like "$(cat "$T/secret.key")" '^[0-9a-f]{64}$' "secret key holds 64 hex digits"
for d in tmp incoming done rejected; do
	ok "spool/$d created" test -d "$T/spool/$d"
done
key1=$(sha256sum <"$T/secret.key")
exits 0 "init a second time" init
is "$(sha256sum <"$T/secret.key")" "$key1" "second init keeps the existing key"
like "$(cat "$T/err")" "exists: kept" "second init says the key was kept"
is "$(sql 'PRAGMA journal_mode')" wal "queue is in WAL mode"

exits 0 "check a valid configuration and directory" check
like "$(cat "$T/out")" "OK .*3 recipients" "check reports the directory size"

# A configuration with several problems: every one reported, with its line.
cat >"$T/bad.conf" <<'CONF'
[relay]
queue = queue.db
bogus = 1

[channel mail]
type = smtp
host = 127.0.0.1
port = 99999
from = a@b.jp
timeout = soon

[policy standard]
steps = mail, fax@15m
expire = 24h
CONF
"$DENGON_BIN/dengon" -c "$T/bad.conf" check >"$T/out" 2>"$T/err"
is "$?" 2 "check of a bad configuration exits 2"
errs=$(cat "$T/err")
like "$errs" "bad.conf:3: .*bogus" "unknown key named with its line"
like "$errs" "bad.conf:8: .*port" "out-of-range port named with its line"
like "$errs" "bad.conf:10: .*timeout" "malformed duration named with its line"
like "$errs" "bad.conf:13: .*fax" "a step naming an unknown channel, with its line"

"$DENGON_BIN/dengon" -c "$T/missing.conf" check >"$T/out" 2>"$T/err"
is "$?" 2 "check of a missing configuration exits 2"
like "$(cat "$T/err")" "missing.conf" "the missing file is named"

# DENGON_CONF is honoured when -c is not given.
DENGON_CONF="$T/dengon.conf" "$DENGON_BIN/dengon" check >"$T/out" 2>"$T/err"
is "$?" 0 "DENGON_CONF names the configuration"

# Contacts with a bad row make check fail with the line and column.
printf 'id,name,fax\nr1,山田,03-1234-5678\nr2,佐藤,03-1234;ATD\n' >"$T/contacts.csv"
exits 2 "check with a bad contacts row" check
like "$(cat "$T/err")" "contacts.csv:3: .*fax" "bad contact named by line and column"
