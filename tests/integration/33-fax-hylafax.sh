#!/bin/bash
# sanitizer: skip
# 33-fax-hylafax: a real HylaFAX server as a peer (tests/peers.sh,
# peer_hylafax: faxq + hfaxd on loopback, its own spool under $T) driven by
# HylaFAX's own client tools (sendfax, faxstat, faxrm) and by a small
# client-protocol script, sending through the virtual Class 1 fax modem
# (tests/fax/fax_vmodem.c, two of them, each under its own faxgetty).
#   - without a modem a job is accepted and held (READY, "W"); faxrm
#     removes a queued job (FAILED, "Job aborted by request");
#   - once the modems are up the held job is really sent: the modem's fax
#     machine stores a TIFF with the 3 pages at 196 lines/inch;
#   - a busy number with one dial allowed fails at once ("Busy signal
#     detected; too many attempts to dial"), as do no answer and a silent
#     line; a number busy on the first call only is requeued ("Busy signal
#     detected", SLEEPING) and sent on the second dial.
# Slow (real-time fax calls, about a minute): run once, not under the
# sanitizers.  Needs root (HylaFAX chroots and runs as uucp).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup

if [ "$(id -u)" != 0 ]; then
	skip "HylaFAX as a peer" "needs root (hfaxd chroots, faxq runs as uucp)"
	exit 0
fi
for p in faxq hfaxd faxgetty sendfax faxstat faxrm gs tiffinfo; do
	if ! command -v "$p" >/dev/null; then
		skip "HylaFAX as a peer" "$p is missing (contrib/deps.sh)"
		exit 0
	fi
done
# bail DESC - a failure the rest cannot go on from.
bail() {
	_t_n=$((_t_n + 1))
	echo "not ok $_t_n - $1"
	exit 1
}
[ -x "$PEER_FAX_VMODEM" ] || bail "no $PEER_FAX_VMODEM (make tests)"

# Documents: G3 TIFFs at 204x196 dpi, A4, made by Ghostscript (a
# dependency of hylafax-server), 3 pages and 1 page.
mkdoc() {
	local pages=$1 out=$2
	printf '%%!PS\n/Helvetica findfont 40 scalefont setfont\n1 1 %d { /n exch def 72 700 moveto (dengon HylaFAX test page ) show n 3 string cvs show showpage } for\n' \
	    "$pages" >"$T/doc.ps"
	gs -q -dSAFER -dNOPAUSE -dBATCH -sDEVICE=tiffg3 -r204x196 \
	    -sPAPERSIZE=a4 -dFIXEDMEDIA -sOutputFile="$out" "$T/doc.ps"
}
pages() { tiffinfo "$1" 2>/dev/null | grep -c '^TIFF Directory'; }
mkdoc 3 "$T/doc3.tif" && mkdoc 1 "$T/doc1.tif"
is "$(pages "$T/doc3.tif") $(pages "$T/doc1.tif")" "3 1" "a 3-page and a 1-page fax TIFF"

q() { peer_hylafax_q hf "$@"; }
# submit ARGS... - sendfax through the server; echoes the job id.
submit() {
	sendfax -h "${SFX_HOST:-127.0.0.1:$PORT}" -n "$@" 2>>"$T/sendfax.err" |
	    sed -n 's/^request id is \([0-9]*\) .*/\1/p'
}
done_q() { [ -f "$T/peers/hf/doneq/q$1" ]; }

# --- the server alone: jobs are accepted and held ---------------------------
t0=$(date +%s)
PORT=$(peer_hylafax hf) || bail "HylaFAX did not start"
ok "faxq and hfaxd start on 127.0.0.1:$PORT" test -n "$PORT"
like "$(faxstat -h "127.0.0.1:$PORT" 2>&1)" "HylaFAX scheduler on .*: Running" \
    "faxstat reaches the scheduler"

GOOD=$(submit -m -d 0312340001 "$T/doc3.tif")
like "$GOOD" '^[0-9]+$' "sendfax submits a 3-page fax (job $GOOD)"
ok "without a modem it waits for one (READY)" wait_until 5 test "$(q "$GOOD" state)" = 5
sleep 2
is "$(q "$GOOD" state)" 5 "and is held there"
faxstat -h "127.0.0.1:$PORT" -s >"$T/faxstat"
ok "faxstat -s shows it waiting (W)" grep -qE "^$GOOD +[0-9]+ W +[a-z]+ +0312340001 " "$T/faxstat"

GONE=$(submit -d 0312340002 "$T/doc1.tif")
like "$GONE" '^[0-9]+$' "a second job (job $GONE)"
like "$(faxrm -h "127.0.0.1:$PORT" "$GONE" 2>&1)" "Job $GONE removed" \
    "faxrm removes it while queued"
ok "it is done with" wait_until 5 done_q "$GONE"
is "$(q "$GONE" state):$(q "$GONE" status)" "8:Job aborted by request" \
    "FAILED: Job aborted by request"
faxstat -h "127.0.0.1:$PORT" -d >"$T/faxstat"
ok "faxstat -d lists it failed" grep -qE "^$GONE +[0-9]+ F .*Job aborted by request" "$T/faxstat"
is "$(q "$GOOD" state)" 5 "the first job is still held"

# --- two virtual modems under faxgetty ----------------------------------------
M1=$(peer_fax_vmodem m1) && M2=$(peer_fax_vmodem m2) ||
    bail "the virtual modems did not start"
D1=$(peer_hylafax_modem hf "$M1" "+81 3 0000 0001")
ok "faxgetty makes modem 1 ready" test -n "$D1"
D2=$(peer_hylafax_modem hf "$M2" "+81 3 0000 0002")
ok "faxgetty makes modem 2 ready" test -n "$D2"
like "$(faxstat -h "127.0.0.1:$PORT")" "Modem $M2 \(\+81 3 0000 0002\): (Running and idle|Sending job)" \
    "faxstat shows the modems"

# The faults.  With one dial allowed (-T 1) a failed call ends the job.
# The number busy once goes through modem 2 only (modem@host: the line
# remembers the numbers it was called with), and first: while it waits to
# be dialled again (JobReqBusy) the other faults take the modems.
ONCE=$(SFX_HOST="$D2@127.0.0.1:$PORT" submit -T 2 -d 0996000001 "$T/doc1.tif")
BUSY=$(submit -T 1 -d 0999000001 "$T/doc1.tif")
NOANS=$(submit -T 1 -d 0998000001 "$T/doc1.tif")
SILENT=$(submit -T 1 -d 0997000001 "$T/doc1.tif")
like "$ONCE $BUSY $NOANS $SILENT" '^[0-9]+ [0-9]+ [0-9]+ [0-9]+$' \
    "four more jobs: busy once, busy, no answer, silent"

# While waiting, note each state:status the busy-once job goes through.
all_done() {
	local j st
	st="$(q "$ONCE" state):$(q "$ONCE" status)"
	[ "$st" = "$(tail -1 "$T/once.states" 2>/dev/null)" ] ||
	    echo "$st" >>"$T/once.states"
	for j in "$@"; do done_q "$j" || return 1; done
}
ok "all of them end within 2 minutes" \
    wait_until 120 all_done "$GOOD" "$BUSY" "$NOANS" "$SILENT" "$ONCE"

# --- the held job was really sent ------------------------------------------------
is "$(q "$GOOD" state):$(q "$GOOD" npages)/$(q "$GOOD" totpages)" 7:3/3 \
    "job $GOOD DONE, 3 of 3 pages"
rx=$(ls "$T"/peers/m1.rx/*-0312340001.tif "$T"/peers/m2.rx/*-0312340001.tif 2>/dev/null | head -1)
ok "the called fax machine stored it" test -n "$rx"
is "$(pages "$rx")" 3 "with 3 pages"
like "$(tiffinfo "$rx" 2>/dev/null | grep -m1 Resolution)" "204, 196" \
    "at fine resolution (sendfax -m)"
faxstat -h "127.0.0.1:$PORT" -d >"$T/faxstat"
ok "faxstat -d lists it done (D)" grep -qE "^$GOOD +[0-9]+ D " "$T/faxstat"

# --- the faults as HylaFAX reports them ------------------------------------------
for c in "$BUSY:Busy signal detected" "$NOANS:No answer from remote" \
    "$SILENT:No carrier detected"; do
	j=${c%%:*}
	is "$(q "$j" state):$(q "$j" status)" \
	    "8:${c#*:}; too many attempts to dial" "job $j: FAILED, ${c#*:}"
	is "$(q "$j" totdials):$(q "$j" tottries)" 1:0 \
	    "job $j: one dial, no try (no fax machine reached)"
done
is "$(q "$BUSY" statuscode)" 333 "statuscode 333 (too many dials)"
calls() {
	echo $(( $(peer_fax_vmodem_count m1 call "result=$1") +
	    $(peer_fax_vmodem_count m2 call "result=$1") ))
}
is "$(calls busy) $(calls noanswer) $(calls silent)" "2 1 1" \
    "the modems saw 2 busy lines (one the busy-once number), no answer, a silent line"
is "$(q "$ONCE" state):$(q "$ONCE" totdials):$(q "$ONCE" npages)" 7:2:1 \
    "busy once: DONE on the second dial"
ok "after sleeping on the busy signal (SLEEPING: Busy signal detected)" \
    grep -qx "3:Busy signal detected" "$T/once.states"
like "$(cat "$T/peers/hf/log/events.log")" "notify sendq/q$ONCE requeued" \
    "requeued (what bin/notify would have mailed)"
echo "# busy once went through (state:status): $(tr '\n' ' ' <"$T/once.states")"
ok "its second call reached modem 2's fax machine" \
    test -f "$(ls "$T"/peers/m2.rx/*-0996000001.tif 2>/dev/null | head -1)"

# --- the client protocol: the password, and the status a client reads -----------
proto=$("$PY" - "$PORT" "$PEER_HYLAFAX_PASSWORD" "$BUSY" <<'PY'
import socket, sys
port, pw, job = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def session(*cmds):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    out = [f.readline().decode().rstrip()]
    for c in cmds:
        s.sendall(c.encode() + b"\r\n")
        out.append(f.readline().decode().rstrip())
    s.close()
    return out
print(session("USER dengon", "PASS wrong")[2])
print(" | ".join(session("USER dengon", "PASS " + pw, "JOB " + job,
                         "JPARM STATE", "JPARM STATUS", "QUIT")[1:]))
PY
)
like "$(sed -n 1p <<<"$proto")" "^530 " "a wrong password: 530"
like "$(sed -n 2p <<<"$proto")" \
    "^331 .* \| 230 .* \| 200 .* \| 213 FAILED \| 213 Busy signal detected; too many attempts to dial \| 221 " \
    "USER/PASS, JOB, JPARM STATE and STATUS"
echo "# HylaFAX test took $(( $(date +%s) - t0 )) s"
