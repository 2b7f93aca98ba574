#!/bin/bash
# sanitizer: skip
# 32-fax-vmodem: the virtual Class 1 fax modem the fax tests drive
# (tests/fax/fax_vmodem.c, started by peer_fax_vmodem) checked against a
# client we did not write, Debian's efax, so that what HylaFAX and dengon's
# fax channel are tested against is a fax modem and not a mirror of our
# own reading of T.31.  Calls take real time, so five modems work side by
# side (about 35 s in all):
#   A  a number of the 0996 kind: BUSY on the first call (efax: exit 1,
#      "number is busy"), answered on the second: a 1-page fax at standard
#      resolution (98 lpi)
#   B  a 2-page fax at fine resolution (196 lpi)
#   C  0999... BUSY and 0998... NO ANSWER (efax exit 2); then a raw
#      dialogue: the Class 1 answers to +FCLASS=? +FTM=? +FRM=? +FTH=?
#      +FRH=?, and flow control: 12 000 bytes of +FTM=146 data written at
#      once all go out (OK only after their air time at 14 400 bit/s), to a
#      client without XON/XOFF (never sent an XOFF) and to one with IXON
#      (the modem's XOFF holds its writes until the buffer drains)
#   D  0997...: a silent line; the modem says NO CARRIER after S7, which
#      efax sets to 30 s (-iS7=30), and efax gives up (exit 2)
#   E  DTR, which a pty does not have: a client setting the speed to B0
#      during a call gets NO CARRIER and the call is hung up; a client that
#      closes the port in a call (killed) hangs it up too, and the next one
#      finds the modem on hook, with nothing stale to read
# Each received TIFF is decoded by libtiff (tiffcp) and compared pixel for
# pixel with the PBM page it was made from (PBM -> efix -> TIFF/G3 ->
# efax -> the line -> spandsp's receiver): as many pages, 1728 wide, the
# resolution sent, and each page's image intact below the header lines efax
# adds on top.  The modem's log is checked against what efax reports, and
# SIGTERM stops a modem cleanly (its link removed).
# Without efax, efix or tiffcp the test fails: it never skips.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/peers.sh"
t_setup

for p in efax efix tiffcp; do
	if ! command -v "$p" >/dev/null; then
		ok "$p is installed (efax, libtiff-tools: contrib/deps.sh)" false
		exit 1
	fi
done

# ---- pages: PBM (the reference) and TIFF/G3 made by efix (what efax reads)

# page NAME NUMBER ROWS YRES - $T/NAME.pbm, 1728 wide, different for every
# NUMBER (frame, NUMBER bars, random boxes, a checkerboard, a diagonal)
# below a blank top margin of 32 rows, where efax puts its page header
# (at 98 lpi it writes over the top rows of the image), and $T/NAME.tif
# from it at 204 x YRES dpi.
page() {
	"$PY" - "$T/$1.pbm" "$2" "$3" <<'PYEOF' || return 1
import random, sys
out, number, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
W = 1728
rnd = random.Random(number)
img = [bytearray(W // 8) for _ in range(rows)]
def box(x0, y0, x1, y1):
    for y in range(max(0, y0), min(rows, y1)):
        for x in range(max(0, x0), min(W, x1)):
            img[y][x >> 3] |= 0x80 >> (x & 7)
T = 32                                  # the blank top margin
box(0, T, W, T + 4); box(0, rows - 4, W, rows); box(0, T, 4, rows); box(W - 4, T, W, rows)
for i in range(number):
    box(40 + 60 * i, T + 20, 80 + 60 * i, T + 100)
for _ in range(40):
    x, y = rnd.randrange(0, W - 200), rnd.randrange(110, rows - 40)
    box(x, y, x + rnd.randrange(8, 200), y + rnd.randrange(2, 30))
for y in range(rows // 2, rows // 2 + 48):
    for x in range(600, 1100):
        if (x // 8 + y // 8) % 2:
            img[y][x >> 3] |= 0x80 >> (x & 7)
for y in range(110, rows - 8):
    box((3 * y) % W, y, (3 * y) % W + 3, y + 1)
with open(out, "wb") as f:
    f.write(b"P4\n%d %d\n" % (W, rows))
    for r in img:
        f.write(bytes(r))
PYEOF
	efix -i pbm -o tiffg3 -R "204x$4" -r "204x$4" "$T/$1.pbm" \
	    >"$T/$1.tif" 2>"$T/$1.efix"
}

ok "test pages made (PBM, then TIFF/G3 by efix)" \
    eval 'page p1 1 300 98 && page p2 2 480 196 && page p3 3 400 196'

# tiffcheck TIFF PBM... - the received TIFF against the pages sent:
# "pages=N widths=W,... yres=Y,... match=yes,..." where a page matches when
# it is the PBM page bit for bit below the top margin (32 rows, blank in
# the PBM), with at most 64 rows more above (the header lines efax adds).
tiffcheck() {
	local tif=$1
	shift
	tiffcp -c none -f msb2lsb "$tif" "$T/check.tif" 2>"$T/check.err" ||
	    { echo "tiffcp failed: $(head -1 "$T/check.err")"; return; }
	"$PY" - "$T/check.tif" "$@" <<'PYEOF'
import struct, sys
def tiff_pages(path):
    d = open(path, "rb").read()
    e = {b"II": "<", b"MM": ">"}[d[:2]]
    size = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8}
    off, out = struct.unpack(e + "I", d[4:8])[0], []
    while off:
        n = struct.unpack(e + "H", d[off:off + 2])[0]
        tags = {}
        for i in range(n):
            tag, typ, cnt, val = struct.unpack(e + "HHI4s", d[off + 2 + 12 * i:off + 14 + 12 * i])
            ln = size.get(typ, 1) * cnt
            raw = val if ln <= 4 else d[struct.unpack(e + "I", val)[0]:][:ln]
            if typ == 3:
                tags[tag] = struct.unpack(e + "%dH" % cnt, raw[:ln])
            elif typ == 4:
                tags[tag] = struct.unpack(e + "%dI" % cnt, raw[:ln])
            elif typ == 5:
                v = struct.unpack(e + "%dI" % (2 * cnt), raw[:ln])
                tags[tag] = [a / b for a, b in zip(v[0::2], v[1::2])]
        off = struct.unpack(e + "I", d[off + 2 + 12 * n:off + 6 + 12 * n])[0]
        w, h = tags[256][0], tags[257][0]
        data = b"".join(d[o:o + c] for o, c in zip(tags[273], tags[279]))
        bpr = (w + 7) // 8
        rows = [data[r * bpr:(r + 1) * bpr] for r in range(h)]
        if tags.get(262, (0,))[0] == 1:         # min-is-black
            rows = [bytes(255 - b for b in r) for r in rows]
        out.append((w, round(tags.get(283, [0])[0]), rows))
    return out
def pbm(path):
    d = open(path, "rb").read()
    head = d.split(b"\n", 2)
    w, h = map(int, head[1].split())
    bpr = (w + 7) // 8
    return [head[2][r * bpr:(r + 1) * bpr] for r in range(h)]
got = tiff_pages(sys.argv[1])
sent = [pbm(p) for p in sys.argv[2:]]
match = []
M = 32
for (w, yres, rows), ref in zip(got, sent):
    extra = len(rows) - len(ref)
    assert not any(any(r) for r in ref[:M]), "the PBM's top margin is not blank"
    match.append("yes" if 0 <= extra <= 64 and rows[extra + M:] == ref[M:] else
                 "no(%d rows for %d)" % (len(rows), len(ref)))
print("pages=%d widths=%s yres=%s match=%s" % (len(got),
      ",".join(str(p[0]) for p in got), ",".join(str(p[1]) for p in got),
      ",".join(match)))
PYEOF
}

# ---- the calls -------------------------------------------------------------

A=$(peer_fax_vmodem A)
B=$(peer_fax_vmodem B)
C=$(peer_fax_vmodem C)
D=$(peer_fax_vmodem D)
E=$(peer_fax_vmodem E)
ok "five virtual modems up, each a link to a pty" \
    eval '[ -c "$(peer_fax_vmodem_pty A)" ] && [ -c "$(peer_fax_vmodem_pty D)" ] && [ "$(peer_fax_vmodem_pty A)" != "$(peer_fax_vmodem_pty B)" ]'

TSI="+81 3 5555 0100"

# send NAME DEVICE [EFAX OPTIONS...] -t NUMBER FILE... - efax (Class 1,
# modem responses logged) into $T/efax-NAME.log; "EXIT MILLISECONDS" into
# $T/efax-NAME.rc.
send() {
	local name=$1 dev=$2 t0 rc
	shift 2
	t0=$(date +%s%N)
	timeout 150 efax -d "$dev" -o1 -v ewinc -l "$TSI" "$@" \
	    >"$T/efax-$name.log" 2>&1
	rc=$?
	echo "$rc $((($(date +%s%N) - t0) / 1000000))" >"$T/efax-$name.rc"
}

# The raw dialogue and the flow-control check on a modem (modem C).
dialogue() {
	timeout 90 "$PY" - "$1" >"$T/dialogue" 2>&1 <<'PYEOF'
import os, select, sys, termios, time, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)                          # no IXON: no XON/XOFF
got = bytearray()
def expect(pat, t):
    end = time.monotonic() + t
    while pat not in got:
        left = end - time.monotonic()
        if left <= 0:
            return False
        if select.select([fd], [], [], left)[0]:
            got.extend(os.read(fd, 4096))
    return True
def cmd(c, pat=b"OK", t=5.0):
    del got[:]
    os.write(fd, c + b"\r")
    ok = expect(pat, t)
    return " ".join(l for l in got.decode("latin-1").split("\r\n") if l) + ("" if ok else " (timeout)")
print("ATE0:", cmd(b"ATE0"))
for c in (b"AT+FCLASS=1", b"AT+FCLASS=?", b"AT+FTM=?", b"AT+FRM=?", b"AT+FTH=?", b"AT+FRH=?", b"ATH1"):
    print(c.decode() + ":", cmd(c))
for ixon in (0, 1):
    a = termios.tcgetattr(fd)
    a[0] = (a[0] | termios.IXON) if ixon else (a[0] & ~termios.IXON)
    termios.tcsetattr(fd, termios.TCSANOW, a)
    r = cmd(b"AT+FTM=146", b"CONNECT")
    del got[:]
    data = bytes([0x55, 0xAA, 0x00, 0xFF]) * 3000      # no DLE in it
    # How long our writes are held: blocked in write() (the pty takes
    # 64 KiB unless the port is stopped by an XOFF), or, if the XOFF came
    # just after, the pty refusing more until the XON.
    t0 = time.monotonic()
    n = 0
    while n < len(data):
        n += os.write(fd, data[n:])
    held, stop = time.monotonic() - t0, None
    while stop is None and time.monotonic() < t0 + held + 1:
        if not select.select([], [fd], [], 0)[1]:
            stop = time.monotonic()
        time.sleep(0.01)
    if stop is not None:
        select.select([], [fd], [], 30)
        held += time.monotonic() - stop
    os.write(fd, b"\x10\x03")           # DLE ETX
    ok = expect(b"OK", 30)
    print("ixon=%d: %s, OK=%s after %.1f s, writes held %.1f s, XOFF byte seen=%s"
          % (ixon, r, ok, time.monotonic() - t0, held, b"\x13" in got))
print("ATH0:", cmd(b"ATH0"))
PYEOF
}

# DTR on modem E: B0 in a call, then a client closing the port in a call.
dtr() {
	timeout 60 "$PY" - "$1" >"$T/dtr" 2>&1 <<'PYEOF'
import os, select, sys, termios, time, tty
def port():
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd
def chat(fd, c, pat=b"OK", t=5.0):
    got = bytearray()
    if c:
        os.write(fd, c + b"\r")
    end = time.monotonic() + t
    # a result code is whole with its CRLF (it may come in two reads)
    while pat + b"\r\n" not in got and time.monotonic() < end:
        if select.select([fd], [], [], 0.1)[0]:
            got.extend(os.read(fd, 4096))
    return bytes(got)
def speed(fd, s):
    a = termios.tcgetattr(fd)
    a[4] = a[5] = s
    termios.tcsetattr(fd, termios.TCSANOW, a)
fd = port()
chat(fd, b"ATE0"); chat(fd, b"AT+FCLASS=1")
chat(fd, b"ATD09971111", b"never", 3.0)           # answered, silent
speed(fd, termios.B0)
print("B0 in a call:", chat(fd, None, b"NO CARRIER", 3.0))
speed(fd, termios.B115200)
print("then AT:", chat(fd, b"AT"))
chat(fd, b"ATD09971112", b"never", 3.0)
os.close(fd)                                    # killed in a call
time.sleep(0.5)
fd = port()
print("next client, AT:", chat(fd, b"AT"))
print("and ATD:", chat(fd, b"ATD0999", b"BUSY", 5.0))
PYEOF
}

START=$(date +%s)
{ send A1 "$A" -t 09961234 "$T/p1.tif"
  send A2 "$A" -t 09961234 "$T/p1.tif"; } &
{ send B "$B" -t 0312345678 "$T/p2.tif" "$T/p3.tif"; } &
{ send C1 "$C" -t 09990000 "$T/p1.tif"
  send C2 "$C" -t 09980000 "$T/p1.tif"
  dialogue "$C"; } &
{ send D "$D" -iS7=30 -t 09970000 "$T/p1.tif"; } &
{ dtr "$E"; } &
wait
echo "# all calls done in $(($(date +%s) - START)) s"

# rc NAME - efax's exit status; ms NAME - how long it ran.
rc() { cut -d' ' -f1 "$T/efax-$1.rc"; }
ms() { cut -d' ' -f2 "$T/efax-$1.rc"; }
# efax_says NAME REGEX - efax's session log has a line matching REGEX.
efax_says() { grep -qE "$2" "$T/efax-$1.log"; }
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
# exit_is NAME STATUS DESC - efax's exit status; its log's end if not.
exit_is() {
	is "$(rc "$1")" "$2" "$3"
	[ "$(rc "$1")" = "$2" ] || tail -12 "$T/efax-$1.log" | sed 's/^/#   efax: /'
}

# ---- A: busy first, then a 1-page fax ----------------------------------------

exit_is A1 1 "A: a 0996 number is busy on the first call (efax exit 1)"
ok "A: efax reports it busy" efax_says A1 'number is busy'
exit_is A2 0 "A: the second call to it sends the page (efax exit 0)"
ok "A: efax got MCF for the page" efax_says A2 'received MCF'
ok "A: efax saw the called machine's CSI (the number dialled)" \
    efax_says A2 'remote ID -> +09961234'
is "$(peer_fax_vmodem_count A call result=busy number=09961234),$(peer_fax_vmodem_count A call result=answered number=09961234)" \
    "1,1" "A: the modem logged one busy call, then one answered"
is "$(last A end '(e["call"], e["status"], e["text"], e["pages"], e["remote"])')" \
    "(2, 0, 'OK', 1, '$TSI')" \
    "A: the call ended in T.30 OK with 1 page from the TSI efax sent"
is "$(last A page '(e["width"], e["yres"], e["bad_rows"])')" "(1728, 98, 0)" \
    "A: the page logged 1728 wide, 98 lpi, no bad rows"
ok "A: the fax is stored as 0002-09961234.tif (call 1 was the busy one)" \
    test -f "$T/peers/A.rx/0002-09961234.tif"
is "$(tiffcheck "$T/peers/A.rx/0002-09961234.tif" "$T/p1.pbm")" \
    "pages=1 widths=1728 yres=98 match=yes" \
    "A: the received TIFF is the page sent, pixel for pixel"
echo "# A: 1-page call $(ms A2) ms from efax start to its exit"

# ---- B: a 2-page fax --------------------------------------------------------------

exit_is B 0 "B: efax sends 2 pages (exit 0)"
is "$(grep -c 'received MCF' "$T/efax-B.log")" 2 "B: efax got MCF for each page"
is "$(last B end '(e["status"], e["text"], e["pages"], e["file"].rsplit("/", 1)[1])')" \
    "(0, 'OK', 2, '0001-0312345678.tif')" \
    "B: the call ended in T.30 OK with 2 pages in 0001-0312345678.tif"
is "$(peer_fax_vmodem_count B page width=1728 yres=196 ecm=false bad_rows=0)" 2 \
    "B: two pages logged, 1728 wide, 196 lpi, no bad rows (efax has no ECM)"
is "$(tiffcheck "$T/peers/B.rx/0001-0312345678.tif" "$T/p2.pbm" "$T/p3.pbm")" \
    "pages=2 widths=1728,1728 yres=196,196 match=yes,yes" \
    "B: the received TIFF is the 2 pages sent, in order, pixel for pixel"
ok "B: the modem logged the client hanging up" peer_fax_vmodem_has B hangup call=1
echo "# B: 2-page call $(ms B) ms from efax start to its exit"

# ---- C: busy, no answer, the raw dialogue ------------------------------------------

exit_is C1 1 "C: 0999... is busy (efax exit 1)"
ok "C: efax read BUSY" efax_says C1 'response "BUSY"'
exit_is C2 2 "C: 0998... is not answered (efax exit 2)"
ok "C: efax read NO ANSWER" efax_says C2 'response "NO ANSWER"'
like "$(ms C2)" '^([6-9][0-9]{3}|1[0-4][0-9]{3})$' \
    "C: NO ANSWER came after the ringing (6-15 s)"
is "$(peer_fax_vmodem_count C end result=busy),$(peer_fax_vmodem_count C end result=noanswer)" \
    "1,1" "C: the modem logged them as busy and noanswer"
ok "C: no fax file for them" test -z "$(ls -A "$T/peers/C.rx")"
while IFS= read -r line; do echo "#   $line"; done <"$T/dialogue"
is "$(grep '^AT+FCLASS=?:' "$T/dialogue")" "AT+FCLASS=?: 0,1,1.0 OK" \
    "C: +FCLASS=? lists class 1"
is "$(grep '^AT+FTM=?:' "$T/dialogue")" \
    "AT+FTM=?: 24,48,72,73,74,96,97,98,121,122,145,146 OK" \
    "C: +FTM=? lists V.27ter, V.29 and V.17 (long and short training)"
is "$(grep '^AT+FRM=?:' "$T/dialogue")" \
    "AT+FRM=?: 24,48,72,73,74,96,97,98,121,122,145,146 OK" "C: +FRM=? alike"
is "$(grep -E '^AT\+F[TR]H=\?:' "$T/dialogue" | tr '\n' '|')" \
    "AT+FTH=?: 3 OK|AT+FRH=?: 3 OK|" "C: +FTH=? and +FRH=? give V.21 (3)"
like "$(grep '^ixon=0' "$T/dialogue")" \
    'CONNECT, OK=True after (6\.[6-9]|[7-9]\.[0-9]|1[0-9]\.[0-9]) s, writes held 0\.0 s, XOFF byte seen=False' \
    "C: without XON/XOFF all 12 000 bytes went out (OK after their 6.7 s on the line), no XOFF sent"
like "$(grep '^ixon=1' "$T/dialogue")" \
    'CONNECT, OK=True after (6\.[6-9]|[7-9]\.[0-9]|1[0-9]\.[0-9]) s, writes held ([3-9]|1[0-9])\.[0-9] s, XOFF byte seen=False' \
    "C: with IXON the modem's XOFF held the client's writes for seconds, then XON"

# ---- D: a silent line -----------------------------------------------------------------

exit_is D 2 "D: a silent line fails (efax exit 2)"
ok "D: efax read NO CARRIER (no CED, no DIS came)" efax_says D 'response "NO CARRIER"'
like "$(ms D)" '^(2[89]|3[0-9])[0-9]{3}$' \
    "D: within S7 (30 s) of dialling, plus set-up: 28-40 s"
ok "D: efax never saw a frame" eval '! efax_says D "received (CSI|DIS)"'
is "$(last D end 'e["result"]')" silent "D: the modem logged a silent call"

# ---- E: DTR ------------------------------------------------------------------------

while IFS= read -r line; do echo "#   $line"; done <"$T/dtr"
is "$(grep '^B0 in a call:' "$T/dtr")" "B0 in a call: b'\\r\\nNO CARRIER\\r\\n'" \
    "E: B0 (DTR off) in a call: NO CARRIER"
is "$(grep '^then AT:' "$T/dtr")" "then AT: b'\\r\\nOK\\r\\n'" \
    "E: the modem is back in command mode"
is "$(peer_fax_vmodem_count E dtr off=B0),$(peer_fax_vmodem_count E hangup call=1)" \
    "1,1" "E: the modem logged DTR off and the call hung up"
# (the reader stops at "OK": its CRLF may come with the next reply)
like "$(grep '^next client, AT:' "$T/dtr")" "^next client, AT: b'\\\\r\\\\nOK(\\\\r\\\\n)?'\$" \
    "E: after a client closed the port in a call, the next one reads just OK"
# (a blank line may come first: the end of the previous client's call)
like "$(grep '^and ATD:' "$T/dtr")" "^and ATD: b'(\\\\r\\\\n)+BUSY\\\\r\\\\n'\$" \
    "E: and can dial: the modem was on hook"
is "$(peer_fax_vmodem_count E hangup call=2),$(peer_fax_vmodem_count E end call=2 result=silent)" \
    "1,1" "E: the call the closing client left was hung up"

# ---- stopping --------------------------------------------------------------------------

kill "$(cat "$T/peers/C.pid")"
ok "SIGTERM: the modem logs its exit" \
    wait_until 5 peer_fax_vmodem_has C exit reason=SIGTERM
ok "SIGTERM: its link is removed" eval '[ ! -e "$T/peers/C.tty" ]'
