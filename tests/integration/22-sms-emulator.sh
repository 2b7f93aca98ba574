#!/bin/bash
# sanitizer: skip
# 22-sms-emulator: the GSM modem emulator the SMS tests drive
# (tests/modem/gsmemu.py, started by peer_modem) checked against clients we
# did not write, so that what dengon's SMS channel is tested against is a
# modem and not a mirror of our own reading of the standards.
#   - Debian's gammu on the pty (connection = at) sends a short 7-bit
#     message and a long Japanese one (UCS2, 3 parts with UDH) that the
#     emulator's log, decoded by python3-gammu, reassembles (smslog.py) to
#     the very texts; it reads a concatenated Japanese inbound message put
#     in by the control socket (geteachsms links the parts) and deletes it.
#   - gammu over TCP: it has no TCP device for AT, but its proxyat
#     connection runs a command as the line (atchat.py --relay).
#   - A raw dialogue (tests/modem/atchat.py) for what dengon relies on:
#     echo and framing byte for byte, several commands in one write, no
#     unsolicited line while a PDU is typed, +CMTI, +CDS status reports
#     (TP-ST 0x00, and 0x41 for --fail numbers, read back by gammu),
#     +CDSI, the PIN and PUK, and the failure modes: silence (and a reset
#     that ends it), ERROR, +CMS ERROR 500, --cms codes (verbose with
#     CMEE=2), a slow +CMGS, line noise, a modem that vanishes.
# Without gammu or python3-gammu the test fails: it never skips.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup
M=$TESTS_DIR/modem
NUM=+819012345678

if ! command -v gammu >/dev/null || ! "$PY" -c 'import gammu' 2>/dev/null; then
	ok "gammu and python3-gammu are installed (contrib/deps.sh)" false
	exit 1
fi

# gammu_rc NAME DEVICE CONNECTION - $T/gammu-NAME.rc, logging to
# $T/gammu-NAME.log (gammu -d textall: every byte both ways).
gammu_rc() {
	cat >"$T/gammu-$1.rc" <<RC
[gammu]
device = $2
connection = $3
logfile = $T/gammu-$1.log
logformat = textall
RC
}

# gm NAME ARGS... - gammu on $T/gammu-NAME.rc; output in $T/out and
# $T/err, exit status in $rc (shown with the output when not 0).
gm() {
	local name=$1
	shift
	timeout 60 gammu -c "$T/gammu-$name.rc" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != 0 ]; then
		cat "$T/out" "$T/err" | tail -5 | sed 's/^/#   gammu: /'
	fi
	return "$rc"
}

# last NAME EVENT EXPR - EXPR (Python, over the event as e) of the last
# EVENT in modem NAME's log.
last() {
	"$PY" - "$T/peers/$1.jsonl" "$2" "$3" <<'PYEOF'
import json, sys
path, ev, expr = sys.argv[1:]
e = None
for line in open(path, encoding="utf-8"):
    d = json.loads(line)
    if d.get("ev") == ev:
        e = d
print(eval(expr) if e is not None else "no %s event" % ev)
PYEOF
}

# chat NAME [-t S] STEP... - atchat.py on modem NAME's pty and control
# socket; line N of $T/chat is step N: STEP<tab>RESULT<tab>SECONDS<tab>noise=N
chat() {
	local name=$1
	shift
	timeout 60 "$PY" "$M/atchat.py" "$T/peers/$name.tty" \
	    -c "$T/peers/$name.ctl" "$@" >"$T/chat" 2>&1
}
r() { sed -n "${1}p" "$T/chat" | cut -f2; }		# step N's result
secs() { sed -n "${1}p" "$T/chat" | cut -f3; }		# its seconds
noise() { sed -n "${1}p" "$T/chat" | cut -f4 | cut -d= -f2; }
ge() { "$PY" -c 'import sys; sys.exit(not float(sys.argv[1]) >= float(sys.argv[2]))' "$1" "$2"; }

count() { peer_modem_count "$@"; }			# events in a modem's log
ctl() { peer_modem_ctl "$@" >"$T/ctl.out"; }		# a control command

# modem NAME [OPTIONS...] - peer_modem, or the test ends here.
modem() {
	peer_modem "$@" >/dev/null && return 0
	ok "the emulator $1 starts ($*)" false
	exit 1
}

# --- gammu on the pty --------------------------------------------------
modem g
link=$T/peers/g.tty
ok "the emulator's link points at a pty" test -c "$(readlink "$link")"
gammu_rc g "$link" at

ok "gammu sendsms (7-bit) through the emulator exits 0" \
    gm g sendsms TEXT "$NUM" -text "Hello from gammu [W1ZJ-XPNK] 5€"
like "$(cat "$T/out")" "reference=0" "gammu is told the message reference 0"
is "$(last g submit 'e["number"], e["text"], e["coding"], e["udh"], e["mr"]')" \
    "('$NUM', 'Hello from gammu [W1ZJ-XPNK] 5€', 'Default_No_Compression', None, 0)" \
    "python3-gammu decodes gammu's PDU to the number and text"
is "$(last g submit 'e["gammu"]["Type"], e["gammu"]["SMSC"]["Number"]')" \
    "('Submit', '+819012000000')" "gammu put in the SMSC it read with AT+CSCA?"

JA='【訓練】断水のお知らせ：東町一丁目から三丁目で本日午後二時より断水が発生しています。給水車を東町会館前に配置しました。飲料水をお持ちの容器でお受け取りください。確認コード W1ZJ-XPNK をこのSMSに返信してください。詳しくは市のホームページをご覧ください。以上、水道局からのお知らせでした。'
ok "gammu sendsms (a long Japanese text) exits 0" \
    gm g sendsms TEXT "$NUM" -unicode -autolen 400 -text "$JA"
peer_modem_messages g >"$T/messages"
is "$(wc -l <"$T/messages")" 2 "smslog.py finds two messages"
summary=$(tail -1 "$T/messages" | JA=$JA "$PY" -c 'import json, os, sys
m = json.loads(sys.stdin.read())
print(m["number"], m["parts"], m["total"], m["coding"], m["mrs"], m["complete"],
      m["consistent"], m["text"] == os.environ["JA"])')
is "$summary" "$NUM 3 3 Unicode_No_Compression [1, 2, 3] True True True" \
    "the Japanese text came as 3 UCS2 parts with UDH, reassembled to the same text"
is "$(count g submit srr=false)" 4 "four parts, none asking for a report"

# an inbound message, Japanese and concatenated
REPLY='はい、了解しました。確認コード W1ZJ-XPNK です。避難所の場所を教えてください。まだ水は出ません。給水車はいつ来ますか？よろしくお願いします。'
ok "deliver by the control socket" \
    ctl g "{\"cmd\":\"deliver\",\"from\":\"+819011112222\",\"text\":\"$REPLY\"}"
ok "gammu geteachsms exits 0" gm g geteachsms
ok "gammu links the two parts into the text sent" grep -qxF "$REPLY" "$T/out"
ok "from the sender given" grep -q 'Remote number *: "+819011112222"' "$T/out"
ok "with the SMSC time stamp in +09:00" grep -q '^Sent .*+0900$' "$T/out"
is "$(count g read)" 2 "the emulator saw both parts read"
ok "gammu deletesms 1 1 2 exits 0" gm g deletesms 1 1 2
is "$(count g delete)" 2 "the emulator saw both deleted"
is "$(peer_modem_ctl g '{"cmd":"state"}' |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["stored"])')" \
    "[]" "the SIM is empty again"
cmds=$("$PY" -c 'import json, sys
print(" ".join(json.loads(l)["line"] for l in open(sys.argv[1]) if "\"cmd\"" in l))' \
    "$T/peers/g.jsonl")
like "$cmds" 'AT\+CMGF=0 AT\+CMGS=[0-9]+' "gammu chose PDU mode before AT+CMGS"

# --- gammu over TCP (proxyat) ------------------------------------------
port=$(peer_modem_tcp gt) || { ok "the emulator starts on TCP" false; exit 1; }
gammu_rc gt "$PY $M/atchat.py --relay tcp:$port" proxyat
ok "gammu sendsms over TCP exits 0" gm gt sendsms TEXT "$NUM" -text "over TCP"
is "$(last gt submit 'e["number"], e["text"], e["mr"]')" "('$NUM', 'over TCP', 0)" \
    "the emulator on TCP decoded it"
ok "gammu's session was a connection" test "$(count gt connect)" -ge 1
timeout 10 "$PY" "$M/atchat.py" "tcp:$port" AT >"$T/chat"
is "$(r 1)" OK "a raw client on TCP gets OK"

# --- the raw dialogue --------------------------------------------------
# steps 1-4: framing and echo; 5-7: the prompt, cancelled; 8-13: a PDU
# typed while an inbound message comes, its +CMTI and +CDS after the
# answer; 14-16: a report with TP-ST 0x41, the inbound message read;
# 17-20: reports stored (CNMI ds=2) and listed.
modem b --fail +819000000041
chat b raw:AT\\r raw:ATE0\\r raw:AT\\r batch:'AT|AT+CSQ|AT+CGSN|AT+CPMS?' \
    AT+CNMI=2,1,0,1,0 raw:AT+CMGS=10\\r raw:\\x1b \
    "prompt:$NUM:hello:srr" \
    'ctl:{"cmd":"deliver","from":"+819011112222","text":"OK W1ZJ-XPNK"}' \
    quiet:0.5 body 'wait:^\+CMTI' 'wait:^\+CDS' \
    sms:+819000000041:fail:srr 'wait:^\+CDS' AT+CMGR=1 \
    AT+CNMI=2,1,0,2,0 "sms:$NUM:stored:srr" 'wait:^\+CDSI' AT+CMGL=0
is "$(r 1)" "AT<CR><CR><LF>OK<CR><LF>" "echo is on at power-up; OK is framed <CR><LF>OK<CR><LF>"
is "$(r 3)" "<CR><LF>OK<CR><LF>" "ATE0 turns the echo off"
is "$(r 4)" "OK|+CSQ: 20,99|OK|356938035643809|OK|+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30|OK" \
    "four commands in one write get four answers"
is "$(r 6)" "<CR><LF>> " "AT+CMGS=n prompts with <CR><LF>> and no line end"
is "$(r 7)" "<CR><LF>OK<CR><LF>" "ESC cancels the PDU with OK"
is "$(r 10)" SILENT "no +CMTI while the PDU is being typed"
is "$(r 11)" "+CMGS: 0|OK" "the PDU gets +CMGS: 0"
is "$(r 12)" '+CMTI: "SM",1' "then the +CMTI comes"
like "$(r 13)" '^\+CDS: 25\|[0-9A-F]+00$' "+CDS with TP-ST 0x00 for the SRR submit"
like "$(r 15)" '^\+CDS: 25\|[0-9A-F]+41$' "+CDS with TP-ST 0x41 for a --fail number"
ok "the report came after --report-delay" ge "$(secs 15)" 0.2
cds=$(r 15 | cut -d'|' -f2)
is "$("$PY" -c 'import gammu, sys
d = gammu.DecodePDU(bytes.fromhex(sys.argv[1]), True)
print(d["Type"], d["MessageReference"], d["Number"], d["DeliveryStatus"], d["SMSC"]["Number"])' "$cds")" \
    "Status_Report 1 +819000000041 65 +819012000000" "gammu reads our status report"
like "$(r 16)" '^\+CMGR: 0,,[0-9]+\|0791180921000000[0-9A-F]+\|OK$' \
    "AT+CMGR gives the inbound message, REC UNREAD"
is "$(r 19)" '+CDSI: "SM",2' "with CNMI ds=2 the report is stored (+CDSI)"
like "$(r 20)" '^\+CMGL: 2,0,,25\|[0-9A-F]+00\|OK$' "and listed by AT+CMGL"
is "$(count b report st=65)" 1 "the log has the 0x41 report"
is "$(last b deliver 'e["indexes"], e["parts"]')" "([1], 1)" "the log has the delivery"

modem s --mode silence
chat s -t 2 AT send:AT+CFUN=1,1 sleep:0.6 AT
is "$(r 1)" TIMEOUT "silence: no answer"
ok "silence: nothing within 2 s" ge "$(secs 1)" 2
is "$(r 4)" OK "AT+CFUN=1,1 brings a silent modem back"

modem e --mode error
chat e -t 2 AT AT+CMGS=20 AT+CFUN=1,1
is "$(r 1)|$(r 2)|$(r 3)" "ERROR|ERROR|ERROR" "error: every command gets ERROR, a reset too"

modem c5 --mode cms500
chat c5 -t 2 "sms:$NUM:x" AT+CSQ 'ctl:{"cmd":"mode","mode":"normal"}' "sms:$NUM:y"
is "$(r 1)" ">|+CMS ERROR: 500" "cms500: the PDU gets +CMS ERROR: 500"
is "$(r 2)" "+CSQ: 20,99|OK" "cms500: other commands work"
is "$(r 4)" ">|+CMGS: 0|OK" "back to normal by the control socket"
is "$(count c5 submit mr=null)" 1 "the refused submit is logged without an mr"

modem sl --slow-cmgs 2
chat sl -t 5 "sms:$NUM:slow"
is "$(r 1)" ">|+CMGS: 0|OK" "slow-cmgs: the answer comes"
ok "slow-cmgs: after 2 s" ge "$(secs 1)" 2

modem cm --cms +819000000021=21 --cms 819000000042=42
chat cm -t 2 sms:+819000000021:x sms:+819000000042:x "sms:$NUM:x" AT+CMEE=2 \
    sms:+819000000021:x
is "$(r 1)|$(r 2)" ">|+CMS ERROR: 21|>|+CMS ERROR: 42" "--cms: the codes given"
is "$(r 3)" ">|+CMGS: 0|OK" "other numbers are sent (refused ones took no reference)"
is "$(r 5)" ">|+CMS ERROR: Short message transfer rejected" "verbose with AT+CMEE=2"

modem gb --mode garbage --seed 7
chat gb -t 2 ATI AT+CSQ "sms:$NUM:noisy" AT+CFUN=1,1 sleep:0.6 AT+CSQ
is "$(r 1)|$(r 2)|$(r 3)" "DENGON|GSMEMU-1|Revision: GSMEMU-1.0|OK|+CSQ: 20,99|OK|>|+CMGS: 0|OK" \
    "garbage: the answers still come"
ok "garbage: with line noise" test "$(($(noise 1) + $(noise 2)))" -gt 0
is "$(r 6)/$(noise 6)" "+CSQ: 20,99|OK/0" "AT+CFUN=1,1 clears the noise"

modem v --vanish-after-cmgs 2
chat v -t 2 "sms:$NUM:one" "sms:$NUM:two" AT
is "$(r 1)|$(r 2)|$(r 3)" ">|+CMGS: 0|OK|GONE|GONE" "vanish: the second PDU is never answered, reads fail"
ok "vanish: the link is gone" test ! -e "$T/peers/v.tty"
ok "vanish: the emulator exits" wait_until 5 test ! -S "$T/peers/v.ctl"
is "$(last v submit 'e["mr"], e["answer"], e["number"], e["text"]')" \
    "(None, None, '$NUM', 'two')" "vanish: the PDU it took with it is logged, decoded"
modem v2
chat v2 -t 2 AT 'ctl:{"cmd":"vanish"}' AT
is "$(r 1)|$(r 3)" "OK|GONE" "vanish by the control socket, under an open client"

modem p --pin 1234
chat p -t 2 AT+CPIN? "sms:$NUM:x" AT+CREG? 'AT+CPIN="0000"' 'AT+CPIN="1234"' AT+CPIN? \
    "sms:$NUM:x" AT+CFUN=1,1 sleep:0.6 AT+CPIN? 'AT+CPIN="1111"' 'AT+CPIN="2222"' \
    'AT+CPIN="3333"' AT+CPIN? 'AT+CPIN="1234"' "sms:$NUM:x"
is "$(r 1)" "+CPIN: SIM PIN|OK" "pin: SIM PIN at power-up"
is "$(r 2)" "+CMS ERROR: 311" "pin: no SMS before the PIN"
is "$(r 3)" "+CREG: 0,0|OK" "pin: not registered before the PIN"
is "$(r 4)|$(r 5)|$(r 6)" "+CME ERROR: 16|OK|+CPIN: READY|OK" "pin: a wrong PIN is refused, the right one taken"
is "$(r 7)" ">|+CMGS: 0|OK" "pin: SMS once the PIN is in"
is "$(r 10)" "+CPIN: SIM PIN|OK" "pin: a reset forgets the PIN"
is "$(r 13)|$(r 14)" "+CME ERROR: 16|+CPIN: SIM PUK|OK" "pin: three wrong PINs block the SIM"
is "$(r 15)|$(r 16)" "+CME ERROR: 12|+CMS ERROR: 316" "pin: then even the right PIN is refused"
is "$(count p pin ok=false)" 5 "pin: the log has each refused PIN (and never the PIN)"
is "$(count p cmd 'line=AT+CPIN=<hidden>')" 6 "pin: the log hides every PIN given"
