#!/usr/bin/python3
"""gsmemu.py - a scripted GSM modem for the tests: AT commands in PDU mode.

usage: gsmemu.py (--pty LINK | --tcp PORT) --control SOCK --log FILE
                 [--pin 1234] [--report-delay MS] [--lifetime S]
                 [--mode normal|silence|error|cms500|garbage] [--slow-cmgs S]
                 [--fail NUMBER]... [--cms NUMBER=CODE]...
                 [--vanish-after-cmgs N] [--mr-start N] [--imei IMEI]
                 [--first-index 0|1] [--capacity N] [--boot-ms MS]
                 [--smsc NUMBER] [--tz QUARTERS] [--seed N]

The modem side of dengon's SMS channel (channels/sms.c) and of independent
clients (gammu), speaking 3GPP TS 27.007/27.005 the way a USB GSM modem
does: echo on at power-up, "\\r\\n<info>\\r\\n" then "\\r\\nOK\\r\\n", the
"\\r\\n> " prompt of AT+CMGS, unsolicited +CMTI/+CDS/+CDSI lines, a SIM
with a PIN, and the failures real modems have (silence, ERROR to
everything, +CMS ERROR, a slow network, line noise, a device that vanishes
from the bus).  It is scripted from the outside through a control socket
(inbound messages, failure modes, late status reports) and records what it
saw in a JSON-lines log.

Every SMS-SUBMIT a client sends is decoded by python3-gammu, never by code
of ours: the log proves our PDUs to a decoder we did not write.  The PDUs
the emulator itself makes (SMS-DELIVER, SMS-STATUS-REPORT) are built here
and each one is decoded back by python3-gammu before use (gammu's own 7-bit
encoder mis-counts septets, so it is not used to build them).

State owned: one Modem (settings, SIM, message store, message-reference
counter, queued unsolicited lines), one port (a pty whose slave end we
keep open, or a TCP listener with at most one client), the control socket
and the log.  Everything runs in one thread around one selector.

How it behaves where modems differ (what a client must cope with):
 - Echo is on at power-up and after a reset; with echo on, the PDU typed
   after the prompt is echoed too (not the Ctrl-Z).  V.250 framing:
   "\\r\\n<info>\\r\\n" blocks, then "\\r\\nOK\\r\\n"; several commands on
   one line (AT+CSQ;+CREG?) each give their block, then one final code.
 - AT+CMEE (1 at power-up, as Quectel) governs +CME ERROR and +CMS ERROR
   alike: 0 plain ERROR, 1 numeric, 2 verbose where a text is known.
 - SIM PIN: SMS commands answer +CMS ERROR: 311 (316 once blocked),
   AT+CIMI +CME ERROR: 11/12, AT+CREG? stat 0; AT+CPIN=<pin> when no PIN
   is wanted gives +CME ERROR: 3; a wrong PIN +CME ERROR: 16, the third
   one blocks the SIM (SIM PUK): then any PIN gets +CME ERROR: 12 and no
   PUK is ever right (16).  A right PIN refills the three tries; a reset
   asks for the PIN again but does not refill them.
 - Text mode: AT+CMGF=1 is accepted, but AT+CMGS/CMGL/CMGR then answer
   +CMS ERROR: 302.  Only "SM" memory exists (other names: +CMS ERROR:
   302); indexes start at --first-index (1; gammu refuses to delete 0).
   AT+CMGL without a <stat> lists REC UNREAD; listing or reading marks a
   message REC READ.  An empty index in range: AT+CMGR gives just OK; out
   of range: +CMS ERROR: 321.  Status reports stored (ds=2) sit in "SM"
   among the messages.  A full SIM loses what comes (no indication).
 - AT+CNMI <mode> 0 (the power-up value) holds unsolicited lines until a
   <mode> of 1 or 2 (then <bfr> 1 drops them, 0 sends them); <mt> 1 and 3
   give +CMTI, 2 gives +CMT (not stored); <ds> 1 +CDS, 2 +CDSI, 0 drops
   reports.  A +CMGS with TP-SRR gets a report --report-delay later.
 - AT+CFUN=1,1, or AT+CFUN=1 after 0 or 4, reboots after its OK: settings
   back to power-up (CNMI 0,0,0,0,0), the PIN asked again, queued
   unsolicited lines lost, and for --boot-ms (300) input is lost.  It
   ends the silence and garbage modes (a silent modem obeys it without a
   word), not error or cms500.  AT+CFUN=0/4: +CSQ: 99,99, not registered,
   AT+CMGS after the PDU +CMS ERROR: 331.  ATZ/AT&F: the factory profile
   (echo on, CMEE 1, CMGF 0, CSCS IRA, CNMI 0,0,0,0,0), no reboot.
 - A refused PDU (+CMS ERROR) takes no message reference.  TP-MR counts
   from --mr-start, mod 256.  Unknown commands answer ERROR, never hang.

Control socket: one JSON object per line, one JSON line back, {"ok":
true, ...} or {"ok": false, "error": "..."}:
  {"cmd":"deliver","from":"+81...","text":"...","notify":true}
        -> "indexes" (stored parts), "parts", "lost" (no room)
  {"cmd":"mode","mode":"normal|silence|error|cms500|garbage",
   "slow_cmgs":S}
  {"cmd":"report","mr":N,"st":65}   a report for that past mr, now,
        routed as <ds> says -> "routed": "cds|stored|dropped|lost"
  {"cmd":"cms","number":"+81...","code":38}   (code null: clear)
  {"cmd":"fail","number":"+81...","on":true}  (reports with TP-ST 0x41)
  {"cmd":"urc","line":"RING"}       any unsolicited line
  {"cmd":"vanish"}                  replies, then vanishes
  {"cmd":"state"} -> "submitted", "pdus", "stored", "unread", "mode",
        "slow_cmgs", "pin_state", "echo", "cmee", "cmgf", "cnmi", "cfun",
        "mr_next", "urcs_queued", and the port ("link"/"path" or "tcp")

Log (--log): JSON lines, each with "t" (time.time()) and "ev":
  start, exit (why), connect/disconnect (TCP), cmd (line; a PIN shows as
  <hidden>), noise (a line without AT), submit (mr or null, answer,
  pdu, tpdu_len, number, text, coding, udh {ref, seq, total, bits} or
  null, srr, gammu: python3-gammu's dictionary), bad_pdu (why, ...),
  cancel (ESC), report (mr, number, st, routed, idx, pdu, len,
  gammu_status), deliver (from, text, parts, indexes, lost, notify, mt,
  pdus), read (idx, by), delete (idx, flag), pin (ok, state,
  tries_left), mode, cfun, reset, booted, lost (input while rebooting),
  vanish (why), internal (a bug of ours, answered ERROR).

Invariants:
 1. An unsolicited line is never written inside a response, while a
    response is still due (slow +CMGS), while the client is typing a PDU
    after the prompt, or while it is typing a command line: it waits in
    Modem.urcs until the modem is idle.
 2. Input is not interpreted while a response is due or the modem reboots:
    it waits in Modem.inbuf (a busy modem buffers it), except during the
    reboot itself, when it is lost as on real hardware.
 3. In silence mode nothing at all is written, echo included.
"""
import argparse
import datetime
import heapq
import json
import os
import random
import re
import selectors
import signal
import socket
import sys
import time
import tty

import gammu

# ---- result codes ---------------------------------------------------------

# +CME ERROR texts (27.007 9.2) for AT+CMEE=2.
CME_TEXT = {
    3: "operation not allowed", 4: "operation not supported",
    10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required",
    13: "SIM failure", 16: "incorrect password", 21: "invalid index",
    22: "not found", 30: "no network service", 100: "unknown",
}
# +CMS ERROR texts: 27.005 3.2.5 (300-500) and the 24.011 RP causes a
# network gives back through the modem (0-127).
CMS_TEXT = {
    1: "Unassigned (unallocated) number", 8: "Operator determined barring",
    10: "Call barred", 21: "Short message transfer rejected",
    27: "Destination out of service", 28: "Unidentified subscriber",
    29: "Facility rejected", 30: "Unknown subscriber",
    38: "Network out of order", 41: "Temporary failure", 42: "Congestion",
    47: "Resources unavailable, unspecified",
    50: "Requested facility not subscribed",
    69: "Requested facility not implemented",
    96: "Invalid mandatory information", 111: "Protocol error, unspecified",
    300: "ME failure", 302: "operation not allowed",
    303: "operation not supported", 304: "invalid PDU mode parameter",
    310: "SIM not inserted", 311: "SIM PIN required", 313: "SIM failure",
    316: "SIM PUK required", 321: "invalid memory index",
    322: "memory full", 330: "SMSC address unknown",
    331: "no network service", 332: "network timeout", 500: "unknown error",
}

MODES = ("normal", "silence", "error", "cms500", "garbage")
PDU_MAX_HEX = 2 * 200        # more than any SMS-SUBMIT (12 + 164 octets)


class ATError(Exception):
    """A final result code other than OK, already formatted."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


class Vanish(Exception):
    """The device is gone: unwind to main() and exit."""


# ---- JSON ---------------------------------------------------------------

def jsonsafe(v):
    """v with datetimes as ISO strings and bytes as hex (gammu's dicts)."""
    if isinstance(v, dict):
        return {str(k): jsonsafe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonsafe(x) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return v


class EventLog:
    """JSON lines, flushed at once: tests read the log while we run."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8", errors="backslashreplace")

    def __call__(self, ev, **fields):
        rec = {"t": time.time(), "ev": ev}
        rec.update(fields)
        self.f.write(json.dumps(jsonsafe(rec), ensure_ascii=False) + "\n")
        self.f.flush()


# ---- PDUs (3GPP TS 23.040 / 23.038) ----------------------------------------

GSM7_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789"
              ":;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyz"
              "äöñüà")
GSM7_EXT = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
            "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
GSM7_INDEX = {c: i for i, c in enumerate(GSM7_BASIC) if c != "\x1b"}


def gsm7_septets(text):
    """text as lists of septets, one list per character (an extension
    character is two), or None when text is not all GSM 7-bit."""
    out = []
    for c in text:
        if c in GSM7_INDEX:
            out.append([GSM7_INDEX[c]])
        elif c in GSM7_EXT:
            out.append([0x1B, GSM7_EXT[c]])
        else:
            return None
    return out


def pack7(septets, fill):
    """Pack septets after `fill` zero bits (the padding that aligns 7-bit
    text on a septet boundary after a UDH)."""
    out, acc, nbits = bytearray(), 0, fill
    for s in septets:
        acc |= s << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def bcd(digits):
    """Semi-octets, low nibble first, padded with F."""
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16)
                 for i in range(0, len(digits), 2))


def address(number, smsc=False):
    """An address field: for TP addresses the length counts digits, for
    the SMSC it counts octets.  '+' and digits give type 0x91
    (international), digits alone 0x81, anything else is alphanumeric
    (0xD0, 7-bit packed)."""
    if re.fullmatch(r"\+?[0-9]+", number):
        digits = number.lstrip("+")
        toa = 0x91 if number.startswith("+") else 0x81
        body = bcd(digits)
        n = len(body) + 1 if smsc else len(digits)
        return bytes([n, toa]) + body
    sept = [s for c in (gsm7_septets(number[:11]) or [[0x3F]]) for s in c]
    body = pack7(sept, 0)
    return bytes([(len(sept) * 7 + 3) // 4, 0xD0]) + body


def timestamp(when, tzq):
    """A TP-SCTS/TP-DT: local time as semi-octets and the zone in quarter
    hours (bit 3 of the last octet is the sign)."""
    lt = datetime.datetime.fromtimestamp(when, datetime.timezone.utc) \
        + datetime.timedelta(minutes=15 * tzq)
    tz = bcd("%02d" % abs(tzq))[0] | (0x08 if tzq < 0 else 0)
    return bcd("%02d%02d%02d%02d%02d%02d" % (
        lt.year % 100, lt.month, lt.day, lt.hour, lt.minute, lt.second)) \
        + bytes([tz])


def split_text(text):
    """(dcs, [user data per part]) for an SMS-DELIVER carrying text: GSM
    7-bit when every character allows it, else UCS2; longer than one
    message: parts of 153 septets / 67 UTF-16 units, with a UDH added by
    the caller.  Escape sequences and surrogate pairs are never split."""
    chars = gsm7_septets(text)
    if chars is not None:
        dcs, units, single, per = 0x00, chars, 160, 153
    else:
        dcs, per, single = 0x08, 67, 70
        units = []
        for c in text:
            b = c.encode("utf-16-be")
            units.append([b[i:i + 2] for i in range(0, len(b), 2)])
    total = sum(len(u) for u in units)
    if total <= single:
        return dcs, [units]
    parts, cur, n = [], [], 0
    for u in units:
        if n + len(u) > per:
            parts.append(cur)
            cur, n = [], 0
        cur.append(u)
        n += len(u)
    parts.append(cur)
    return dcs, parts


def deliver_pdus(sender, text, smsc, when, tzq, ref):
    """SMS-DELIVER PDUs (hex with the SMSC in front, TPDU length) for text
    from sender, split and concatenated (8-bit reference ref) if long."""
    dcs, parts = split_text(text)
    out = []
    for seq, part in enumerate(parts, 1):
        flat = [x for u in part for x in u]
        udh = b""
        if len(parts) > 1:
            udh = bytes([5, 0x00, 3, ref & 0xFF, len(parts), seq])
        if dcs == 0x00:
            fill = (7 - len(udh) * 8 % 7) % 7
            ud = udh + pack7(flat, fill)
            udl = (len(udh) * 8 + fill) // 7 + len(flat)
        else:
            ud = udh + b"".join(flat)
            udl = len(ud)
        first = 0x04 | (0x40 if udh else 0)        # TP-MMS: no more
        tpdu = bytes([first]) + address(sender) + bytes([0x00, dcs]) \
            + timestamp(when, tzq) + bytes([udl]) + ud
        out.append((address(smsc, smsc=True).hex().upper()
                    + tpdu.hex().upper(), len(tpdu)))
    return out


def status_report_pdu(smsc, mr, recipient, scts, dt, st, tzq):
    """An SMS-STATUS-REPORT (hex with SMSC, TPDU length) for TP-MR mr."""
    first = 0x06                # TP-MTI 10, TP-MMS; TP-SRQ 0: of a SUBMIT
    tpdu = bytes([first, mr & 0xFF]) + address(recipient) \
        + timestamp(scts, tzq) + timestamp(dt, tzq) + bytes([st & 0xFF])
    return address(smsc, smsc=True).hex().upper() + tpdu.hex().upper(), \
        len(tpdu)


def gammu_decode(hexpdu):
    """python3-gammu's reading of a PDU with its SMSC in front.

    python-gammu (1.42) builds Text from the septet count, so each escape
    character of GSM 7-bit (an extension character: € [ ] { } ...) adds a
    junk character after a NUL: "abc€" comes back as "abc€\\x00".  A
    decoded text never holds a real NUL (septet 0 is "@"), so the text is
    cut there; "TextJunk" says how much was cut."""
    d = gammu.DecodePDU(bytes.fromhex(hexpdu), True)
    text = d.get("Text")
    if isinstance(text, str) and "\x00" in text:
        d["Text"], junk = text.split("\x00", 1)
        d["TextJunk"] = len(junk) + 1
    return d


def udh_summary(d):
    """The concatenation header gammu found, or None."""
    u = d.get("UDH") or {}
    if u.get("Type") == "ConcatenatedMessages":
        return {"ref": u["ID8bit"], "seq": u["PartNumber"],
                "total": u["AllParts"], "bits": 8}
    if u.get("Type") == "ConcatenatedMessages16bit":
        return {"ref": u["ID16bit"], "seq": u["PartNumber"],
                "total": u["AllParts"], "bits": 16}
    if u.get("Type") in (None, "NoUDH"):
        return None
    return {"type": u.get("Type"), "hex": bytes(u.get("Text") or b"").hex()}


def digits_of(number):
    return re.sub(r"[^0-9]", "", number or "")


# ---- the event loop -------------------------------------------------------

class Loop:
    """A selector and a timer heap: every callback runs in this thread."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.timers = []
        self.seq = 0
        self.tickers = []

    def call_later(self, delay, fn):
        self.seq += 1
        entry = [time.monotonic() + max(0.0, delay), self.seq, fn, False]
        heapq.heappush(self.timers, entry)
        return entry

    @staticmethod
    def cancel(entry):
        if entry:
            entry[3] = True

    def run(self):
        while True:
            timeout = 0.2
            if self.timers:
                due = self.timers[0][0] - time.monotonic()
                timeout = min(timeout, max(0.0, due))
            for key, mask in self.sel.select(timeout):
                key.data(mask)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                entry = heapq.heappop(self.timers)
                if not entry[3]:
                    entry[2]()
            for fn in self.tickers:
                fn()


# ---- ports ----------------------------------------------------------------

class Port:
    """The byte stream to the client; output is buffered so that a client
    that does not read never blocks the emulator."""
    OUT_MAX = 1 << 20

    def __init__(self, loop, log):
        self.loop, self.log = loop, log
        self.on_data = None
        self.out = bytearray()

    def send(self, data):
        if len(self.out) + len(data) <= self.OUT_MAX:
            self.out += data
        self.flush()


class PtyPort(Port):
    """A pty: the client opens LINK (-> /dev/pts/N).  We keep the slave
    open ourselves, so that the master never sees a hangup (EIO) when a
    client closes it between sessions, as a serial port never does."""

    def __init__(self, loop, log, link, pty_min):
        super().__init__(loop, log)
        self.link = link
        self.master, self.slave = self.openpty(pty_min)
        tty.setraw(self.slave)
        os.fchmod(self.slave, 0o666)    # the daemon may run as another user
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        tmp = link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(self.path, tmp)
        os.replace(tmp, link)
        self.events = selectors.EVENT_READ
        loop.sel.register(self.master, self.events, self._ready)

    @staticmethod
    def openpty(pty_min):
        """A pty numbered pty_min or more.  The kernel hands out the lowest
        free number, and a program left running with a literal /dev/pts/N
        from an earlier run (it happens on shared machines) reopens that
        path whenever it exists and talks over our client; such numbers
        are low ones, so the low ones are held until we have another."""
        held = []
        try:
            while True:
                master, slave = os.openpty()
                n = int(os.ttyname(slave).rsplit("/", 1)[1])
                if n >= pty_min or len(held) >= 64:
                    return master, slave
                held.append((master, slave))
        finally:
            for fds in held:
                for fd in fds:
                    os.close(fd)

    def _ready(self, mask):
        if mask & selectors.EVENT_READ:
            try:
                data = os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:         # cannot happen while we hold the slave
                data = b""
            if data:
                self.on_data(data)
        if mask & selectors.EVENT_WRITE:
            self.flush()

    def flush(self):
        if self.master < 0:
            return
        if self.out:
            try:
                n = os.write(self.master, self.out)
                del self.out[:n]
            except (BlockingIOError, InterruptedError):
                pass
        want = selectors.EVENT_READ
        if self.out:
            want |= selectors.EVENT_WRITE
        if want != self.events:
            self.events = want
            self.loop.sel.modify(self.master, want, self._ready)

    def vanish(self):
        """Unplugged: the client's reads fail (EIO), the node is gone."""
        self.loop.sel.unregister(self.master)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1
        self.close()

    def close(self):
        try:
            if os.path.islink(self.link):
                os.unlink(self.link)
        except OSError:
            pass

    def describe(self):
        return {"port": "pty", "link": self.link, "path": self.path}


class TcpPort(Port):
    """A serial server (ser2net, Moxa): 127.0.0.1:PORT, one client at a
    time; a new connection replaces the old one.  The modem behind it
    keeps its state across connections, and what it says while nobody is
    connected is lost."""

    def __init__(self, loop, log, port):
        super().__init__(loop, log)
        self.port = port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(4)
        self.lsock.setblocking(False)
        loop.sel.register(self.lsock, selectors.EVENT_READ, self._accept)
        self.conn = None
        self.events = 0

    def _accept(self, _mask):
        try:
            conn, peer = self.lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        if self.conn:
            self.log("disconnect", reason="replaced")
            self._drop()
        conn.setblocking(False)
        self.conn = conn
        self.out.clear()
        self.events = selectors.EVENT_READ
        self.loop.sel.register(conn, self.events, self._ready)
        self.log("connect", peer="%s:%d" % peer)

    def _drop(self):
        self.loop.sel.unregister(self.conn)
        self.conn.close()
        self.conn = None
        self.out.clear()

    def _ready(self, mask):
        if mask & selectors.EVENT_READ:
            try:
                data = self.conn.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.log("disconnect", reason="closed by client")
                self._drop()
                return
            self.on_data(data)
        if self.conn and mask & selectors.EVENT_WRITE:
            self.flush()

    def send(self, data):
        if self.conn:
            super().send(data)

    def flush(self):
        if not self.conn:
            return
        if self.out:
            try:
                n = self.conn.send(self.out)
                del self.out[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.log("disconnect", reason="send failed")
                self._drop()
                return
        want = selectors.EVENT_READ
        if self.out:
            want |= selectors.EVENT_WRITE
        if want != self.events:
            self.events = want
            self.loop.sel.modify(self.conn, want, self._ready)

    def vanish(self):
        if self.conn:
            self._drop()
        self.loop.sel.unregister(self.lsock)
        self.lsock.close()

    def close(self):
        pass

    def describe(self):
        return {"port": "tcp", "tcp": self.port}


# ---- the modem ------------------------------------------------------------

class Modem:
    """The AT engine: bytes in (feed), bytes out (port.send)."""

    def __init__(self, loop, port, log, opts):
        self.loop, self.port, self.log, self.o = loop, port, log, opts
        self.rng = random.Random(opts.seed)
        self.mode = opts.mode
        self.slow_cmgs = opts.slow_cmgs
        self.fail = {digits_of(n) for n in opts.fail}
        self.cms_codes = {}         # digits -> +CMS ERROR code for CMGS
        for spec in opts.cms:
            number, _, code = spec.rpartition("=")
            self.cms_codes[digits_of(number)] = int(code)
        self.mr_next = opts.mr_start & 0xFF
        self.submitted = 0          # accepted (answered +CMGS)
        self.pdus_received = 0      # complete PDUs, for --vanish-after-cmgs
        self.by_mr = {}             # mr -> the submit it was given to
        self.store = {}             # index -> {"stat", "pdu", "len", "kind"}
        self.concat_ref = self.rng.randrange(256)
        self.csca = opts.smsc
        self.pin_state = "SIM PIN" if opts.pin else "READY"
        self.pin_tries = 3
        self.urcs = []              # unsolicited lines waiting (invariant 1)
        self.inbuf = bytearray()
        self.line = bytearray()
        self.line_at = 0.0          # when the last byte of self.line came
        self.pdu = None             # bytearray while typing a PDU
        self.cmgs_len = 0
        self.pending = False        # a response is still due
        self.rebooting = False
        self.after = None           # to run once the response is written
        self.power_on()
        loop.tickers.append(self.flush_urcs)

    def power_on(self):
        """The settings a power cycle (or AT+CFUN=1,1) starts from."""
        self.factory()
        self.cfun = 1
        self.csms = 0
        self.reg_n = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}

    def factory(self):
        """ATZ / AT&F: the factory profile."""
        self.echo = True
        self.cmee = 1
        self.cmgf = 0
        self.cscs = "IRA"
        self.cnmi = [0, 0, 0, 0, 0]

    # -- output ---------------------------------------------------------

    def noise(self):
        """Line noise: a few non-ASCII bytes, sometimes with stray line
        ends around them."""
        junk = bytes(self.rng.randint(0x80, 0xFF)
                     for _ in range(self.rng.randint(1, 6)))
        before = b"\r\n" if self.rng.random() < 0.4 else b""
        after = b"\r\n" if self.rng.random() < 0.4 else b""
        return before + junk + after

    def emit(self, text):
        """Write one whole unit (a line, a response part, a prompt); line
        noise only ever goes between units, so that every unit still
        arrives whole."""
        if self.mode == "silence":
            return
        data = text.encode("latin-1") if isinstance(text, str) else text
        if self.mode == "garbage":
            data = self.noise() + data
        self.port.send(data)

    def echo_bytes(self, data):
        if self.echo and self.mode != "silence":
            self.port.send(bytes(data))

    def respond(self, blocks, final):
        for lines in blocks:
            self.emit("\r\n" + "\r\n".join(lines) + "\r\n")
        self.emit("\r\n" + final + "\r\n")
        if self.mode == "garbage":
            self.port.send(self.noise())

    def err(self, kind, code):
        """A +CME/+CMS ERROR as AT+CMEE asks: 0 plain ERROR, 1 numeric,
        2 verbose (numeric for codes without a text).  Like Quectel's
        modems, AT+CMEE governs +CMS ERROR too."""
        if self.cmee == 0:
            return ATError("ERROR")
        table = CME_TEXT if kind == "CME" else CMS_TEXT
        if self.cmee == 2 and code in table:
            return ATError("+%s ERROR: %s" % (kind, table[code]))
        return ATError("+%s ERROR: %d" % (kind, code))

    def cme(self, code):
        return self.err("CME", code)

    def cms(self, code):
        return self.err("CMS", code)

    # -- unsolicited lines ------------------------------------------------

    def idle(self):
        if self.pending or self.rebooting or self.pdu is not None:
            return False
        if self.mode == "silence" or self.cnmi[0] == 0:
            return False
        # a client typing a command line: hold on (at most a second)
        return not (self.line and time.monotonic() - self.line_at < 1.0)

    def urc(self, text):
        self.urcs.append(text)
        self.flush_urcs()

    def flush_urcs(self):
        while self.urcs and self.idle():
            self.emit("\r\n" + self.urcs.pop(0) + "\r\n")

    # -- input ----------------------------------------------------------

    def feed(self, data):
        if self.rebooting:
            self.log("lost", bytes=len(data), why="rebooting")
            return
        self.inbuf += data
        self.process()

    def process(self):
        """Interpret buffered input byte by byte until it is used up or a
        response becomes due (invariant 2)."""
        while self.inbuf and not self.pending and not self.rebooting:
            b = self.inbuf.pop(0)
            if self.pdu is not None:
                self.pdu_byte(b)
            else:
                self.cmd_byte(b)
        self.flush_urcs()

    def cmd_byte(self, b):
        self.echo_bytes([b])
        if b == 0x0D:                       # S3: the end of the line
            line = bytes(self.line).decode("latin-1")
            self.line.clear()
            self.command_line(line)
        elif b == 0x0A:                     # S4 after S3: nothing
            pass
        elif b == 0x08:                     # S5: backspace
            if self.line:
                self.line.pop()
        elif len(self.line) < 1024:
            self.line.append(b)
            self.line_at = time.monotonic()

    def pdu_byte(self, b):
        if b == 0x1A:                       # Ctrl-Z: send
            hexpdu = bytes(self.pdu).decode("latin-1")
            self.pdu = None
            self.submit(hexpdu)
        elif b == 0x1B:                     # ESC: never mind
            self.pdu = None
            self.log("cancel")
            self.respond([], "OK")
        else:
            self.echo_bytes([b])
            if b not in b"\r\n \t" and len(self.pdu) < PDU_MAX_HEX:
                self.pdu.append(b)

    # -- command lines --------------------------------------------------

    def command_line(self, line):
        """One line up to CR: V.250 ignores what comes before "AT"."""
        at = line.upper().find("AT")
        if at < 0:
            if line.strip():
                self.log("noise", line=line)
            return
        line = line[at:]
        # the PIN is a secret: the log says whether it was right ("pin")
        self.log("cmd", line=re.sub(r"(\+CPIN\s*=).*", r"\1<hidden>", line,
                                    flags=re.I))
        body = line[2:]
        if self.mode == "error":
            self.respond([], "ERROR")
            return
        if self.mode == "silence":
            self.silent_line(body)
            return
        blocks, final = [], "OK"
        try:
            for name, op, args in split_commands(body):
                res = self.run(name, op, args)
                if res == "PROMPT":
                    for lines in blocks:
                        self.emit("\r\n" + "\r\n".join(lines) + "\r\n")
                    self.pdu = bytearray()
                    self.emit("\r\n> ")
                    return
                if res:
                    blocks.append(res)
        except ATError as e:
            final = e.text
        except Vanish:
            raise
        except Exception as e:
            # a bug of ours must look like a modem's ERROR, not a hang
            self.log("internal", line=line, error="%s: %s"
                     % (type(e).__name__, e))
            final = "ERROR"
        self.respond(blocks, final)
        if self.after:
            after, self.after = self.after, None
            after()

    def silent_line(self, body):
        """A hung modem that still obeys a reset (why dengon resets it)."""
        try:
            cmds = split_commands(body)
        except ATError:
            return
        for name, op, args in cmds:
            if name == "+CFUN" and op == "set":
                try:
                    c_cfun(self, op, args)
                except ATError:
                    pass
                if self.after:
                    after, self.after = self.after, None
                    after()

    def run(self, name, op, args):
        """One command of a line: its info lines, "PROMPT", or ATError."""
        if name in BASIC:
            return BASIC[name](self, args)
        handler = EXTENDED.get(name)
        if handler is None:
            raise ATError("ERROR")
        return handler(self, op, args)

    # -- SIM ------------------------------------------------------------

    def need_sim(self, kind="CMS"):
        """SMS and SIM commands wait for the PIN (27.005 311/316)."""
        if self.pin_state == "SIM PIN":
            raise self.cms(311) if kind == "CMS" else self.cme(11)
        if self.pin_state == "SIM PUK":
            raise self.cms(316) if kind == "CMS" else self.cme(12)

    def registered(self):
        return self.cfun == 1 and self.pin_state == "READY"

    # -- reset ----------------------------------------------------------

    def reset(self, why):
        """A reboot: settings back to power-on, a hung or noisy line
        recovered, the PIN to be entered again, queued indications lost;
        for --boot-ms the modem hears nothing."""
        old = self.mode
        if self.mode in ("silence", "garbage"):
            self.mode = "normal"
        self.power_on()
        if self.pin_state == "READY" and self.o.pin:
            self.pin_state = "SIM PIN"
        lost = len(self.urcs)
        self.urcs.clear()
        self.inbuf.clear()
        self.line.clear()
        self.pdu = None
        self.log("reset", why=why, mode_before=old, mode=self.mode,
                 urcs_lost=lost, pin_state=self.pin_state)
        if self.o.boot_ms > 0:
            self.rebooting = True

            def booted():
                self.rebooting = False
                self.log("booted")
                self.process()
            self.loop.call_later(self.o.boot_ms / 1000.0, booted)

    # -- SMS-SUBMIT -----------------------------------------------------

    def read_submit(self, hexpdu):
        """(event fields, None) for a PDU python3-gammu reads as the
        SMS-SUBMIT AT+CMGS announced, or (fields so far, why not)."""
        ev = {"pdu": hexpdu, "tpdu_len": self.cmgs_len}
        try:
            raw = bytes.fromhex(hexpdu)
        except ValueError:
            return ev, "not hex"
        if not raw:
            return ev, "empty"
        expect = 1 + raw[0] + self.cmgs_len
        if len(raw) != expect:
            return ev, "%d octets, AT+CMGS=%d wants %d" % (
                len(raw), self.cmgs_len, expect)
        if raw[0] + 1 >= len(raw) or raw[raw[0] + 1] & 0x03 != 0x01:
            return ev, "not an SMS-SUBMIT"
        try:
            d = gammu_decode(hexpdu)
        except gammu.GSMError as e:
            return ev, "gammu: %s" % (e.args[0].get("Text") if e.args else e)
        # TP-SRR is bit 5 of the first TPDU octet; gammu's dictionary does
        # not report it, so it is read here.
        ev.update(number=d.get("Number") or "", text=d.get("Text"),
                  coding=d.get("Coding"), udh=udh_summary(d),
                  srr=bool(raw[raw[0] + 1] & 0x20), gammu=d)
        return ev, None

    def submit(self, hexpdu):
        """A complete PDU after the prompt: check, decode with gammu, and
        answer +CMGS (now, or --slow-cmgs later) or +CMS ERROR; or vanish
        with it unanswered (--vanish-after-cmgs)."""
        self.pdus_received += 1
        ev, why = self.read_submit(hexpdu)
        if self.o.vanish_after_cmgs and \
                self.pdus_received >= self.o.vanish_after_cmgs:
            self.log("submit", mr=None, answer=None, **ev)
            self.vanish("after %d PDUs" % self.pdus_received)
        if why:
            self.log("bad_pdu", why=why, **ev)
            self.respond([], self.cms(304).text)
            return
        number, srr = ev["number"], ev["srr"]
        code = self.cms_codes.get(digits_of(number))
        if self.mode == "cms500":
            code = 500
        elif self.cfun != 1:
            code = 331
        if code is not None:
            self.answer_submit(ev, None, self.cms(code).text)
            return
        mr = self.mr_next
        self.mr_next = (mr + 1) & 0xFF
        self.submitted += 1
        sub = {"mr": mr, "number": number, "srr": srr, "when": time.time()}
        self.by_mr[mr] = sub
        answer = ("+CMGS: %d" % mr, "OK")
        if self.slow_cmgs > 0:
            self.pending = True

            def late():
                self.pending = False
                self.answer_submit(ev, sub, answer)
                self.process()
            self.loop.call_later(self.slow_cmgs, late)
        else:
            self.answer_submit(ev, sub, answer)

    def answer_submit(self, ev, sub, answer):
        if sub is None:
            self.log("submit", mr=None, answer=answer, **ev)
            self.respond([], answer)
            return
        self.log("submit", mr=sub["mr"], answer=answer[0], **ev)
        self.respond([[answer[0]]], answer[1])
        if sub["srr"]:
            st = 0x41 if digits_of(sub["number"]) in self.fail else 0x00
            self.loop.call_later(self.o.report_delay / 1000.0,
                                 lambda: self.status_report(sub, st))

    def status_report(self, sub, st):
        """Route an SMS-STATUS-REPORT as AT+CNMI's <ds> says now."""
        now = time.time()
        hexpdu, n = status_report_pdu(self.csca, sub["mr"], sub["number"],
                                      sub["when"], now, st, self.o.tz)
        d = gammu_decode(hexpdu)        # must be readable by gammu too
        ds = self.cnmi[3]
        ev = {"mr": sub["mr"], "number": sub["number"], "st": st,
              "pdu": hexpdu, "len": n, "gammu_status": d.get("DeliveryStatus")}
        if ds == 1:
            self.log("report", routed="cds", **ev)
            self.urc("+CDS: %d\r\n%s" % (n, hexpdu))
            return "cds"
        if ds == 2:
            idx = self.store_pdu(hexpdu, n, "report")
            if idx is None:
                self.log("report", routed="lost", why="memory full", **ev)
                return "lost"
            self.log("report", routed="stored", idx=idx, **ev)
            self.urc('+CDSI: "SM",%d' % idx)
            return "stored"
        self.log("report", routed="dropped", why="AT+CNMI ds=%d" % ds, **ev)
        return "dropped"

    # -- the message store ("SM") ------------------------------------------

    def indexes(self):
        first = self.o.first_index
        return range(first, first + self.o.capacity)

    def store_pdu(self, hexpdu, n, kind):
        for i in self.indexes():
            if i not in self.store:
                self.store[i] = {"stat": 0, "pdu": hexpdu, "len": n,
                                 "kind": kind}
                return i
        return None

    def deliver(self, sender, text, notify):
        """Inbound text: stored part by part as SMS-DELIVERs, each
        indicated as AT+CNMI <mt> says (unless notify is false: lost
        indications happen)."""
        self.concat_ref = (self.concat_ref + 1) & 0xFF
        pdus = deliver_pdus(sender, text, self.csca, time.time(), self.o.tz,
                            self.concat_ref)
        back = "".join(gammu_decode(p)["Text"] for p, _ in pdus)
        if back != text:        # gammu must read what we built
            raise ValueError("gammu reads %r back" % back)
        indexes, lost, routed = [], 0, []
        mt = self.cnmi[1]
        for hexpdu, n in pdus:
            if mt == 2:         # routed to the client, not stored
                routed.append("cmt")
                if notify:
                    self.urc("+CMT: ,%d\r\n%s" % (n, hexpdu))
                continue
            idx = self.store_pdu(hexpdu, n, "deliver")
            if idx is None:
                lost += 1
                continue
            indexes.append(idx)
            if notify and mt in (1, 3):
                self.urc('+CMTI: "SM",%d' % idx)
        self.log("deliver", **{"from": sender}, text=text, parts=len(pdus),
                 indexes=indexes, lost=lost, notify=notify, mt=mt,
                 pdus=[p for p, _ in pdus])
        return {"indexes": indexes, "parts": len(pdus), "lost": lost}

    # -- vanishing ------------------------------------------------------

    def vanish(self, why):
        self.log("vanish", why=why)
        self.port.vanish()
        raise Vanish()


# ---- command parsing ------------------------------------------------------

def split_args(s):
    """Comma-separated parameters; quoted ones keep commas, lose quotes."""
    out, cur, quoted, q = [], "", False, False
    for c in s:
        if c == '"':
            q = not q
            quoted = True
        elif c == "," and not q:
            out.append((cur.strip(), quoted))
            cur, quoted = "", False
        else:
            cur += c
    out.append((cur.strip(), quoted))
    return [v for v, _ in out] if s.strip() else []


def split_commands(body):
    """The commands of one line after "AT": (name, op, args) with op
    "exec", "query", "test" or "set"; basic commands (E1, &F, S0=0, I)
    and extended ones (+CMGF=0) separated by ';'."""
    cmds, i, n = [], 0, len(body)
    while i < n:
        c = body[i].upper()
        if c in " ;":
            i += 1
            continue
        if c in "+^$#%*":
            j, q = i, False
            while j < n and (body[j] != ";" or q):
                if body[j] == '"':
                    q = not q
                j += 1
            tok = body[i:j]
            i = j + 1
            m = re.fullmatch(r"([+^$#%*][A-Za-z0-9]+)\s*(=\s*\?|\?|=(.*))?",
                             tok, re.S)
            if not m:
                raise ATError("ERROR")
            name = m.group(1).upper()
            if m.group(2) is None:
                cmds.append((name, "exec", ""))
            elif m.group(2) == "?":
                cmds.append((name, "query", ""))
            elif m.group(3) is None:
                cmds.append((name, "test", ""))
            else:
                cmds.append((name, "set", m.group(3)))
            continue
        if c == "&":
            m = re.match(r"&([A-Za-z])(\d*)", body[i:])
            if not m:
                raise ATError("ERROR")
            cmds.append(("&" + m.group(1).upper(), "exec", m.group(2)))
            i += m.end()
            continue
        if c == "S":
            m = re.match(r"S(\d+)(?:=(\d*)|(\?))", body[i:], re.I)
            if not m:
                raise ATError("ERROR")
            cmds.append(("S", "exec", (m.group(1), m.group(2), m.group(3))))
            i += m.end()
            continue
        if c == "D":               # a dial string runs to the end
            cmds.append(("D", "exec", body[i + 1:]))
            break
        if c.isalpha():
            m = re.match(r"([A-Za-z])(\d*)", body[i:])
            cmds.append((m.group(1).upper(), "exec", m.group(2)))
            i += m.end()
            continue
        raise ATError("ERROR")
    return cmds


def need(args, n):
    if len(args) < n:
        raise ATError("ERROR")


def num(s, lo, hi, err=None):
    try:
        v = int(s)
    except (TypeError, ValueError):
        raise err or ATError("ERROR")
    if not lo <= v <= hi:
        raise err or ATError("ERROR")
    return v


# ---- basic commands -------------------------------------------------------

def b_echo(m, arg):
    m.echo = arg == "1"
    if arg not in ("", "0", "1"):
        raise ATError("ERROR")


def b_verbose(m, arg):
    if arg != "1":          # numeric result codes: not emulated
        raise ATError("ERROR")


def b_quiet(m, arg):
    if arg not in ("", "0"):
        raise ATError("ERROR")


def b_reset_profile(m, arg):
    m.factory()


def b_info(m, arg):
    if arg in ("", "0"):
        return ["DENGON", "GSMEMU-1", "Revision: GSMEMU-1.0"]
    return ["GSMEMU-1"]


def b_ok(m, arg):
    return None


def b_sreg(m, arg):
    reg, value, query = arg
    if query:
        return ["%03d" % {3: 13, 4: 10, 5: 8}.get(int(reg), 0)]
    return None


def b_dial(m, arg):
    raise ATError("NO CARRIER")


BASIC = {
    "E": b_echo, "V": b_verbose, "Q": b_quiet, "Z": b_reset_profile,
    "&F": b_reset_profile, "I": b_info, "S": b_sreg, "D": b_dial,
    "&W": b_ok, "&C": b_ok, "&D": b_ok, "&K": b_ok, "X": b_ok, "L": b_ok,
    "M": b_ok, "H": b_ok,
}


# ---- extended commands ----------------------------------------------------

def ident(value):
    def handler(m, op, args):
        if op == "test":
            return None
        if op != "exec":
            raise ATError("ERROR")
        return [value(m) if callable(value) else value]
    return handler


def c_cimi(m, op, args):
    if op == "test":
        return None
    m.need_sim("CME")
    return [m.o.imsi]


def c_cmee(m, op, args):
    if op == "query":
        return ["+CMEE: %d" % m.cmee]
    if op == "test":
        return ["+CMEE: (0-2)"]
    m.cmee = num(args or "0", 0, 2)
    return None


def c_cpin(m, op, args):
    if op == "query":
        return ["+CPIN: %s" % m.pin_state]
    if op == "test":
        return None
    if op != "set":
        raise ATError("ERROR")
    a = split_args(args)
    if m.pin_state == "READY":
        raise m.cme(3)                      # nothing to enter
    if m.pin_state == "SIM PUK":
        m.log("pin", ok=False, state=m.pin_state, tries_left=0)
        raise m.cme(12 if len(a) < 2 else 16)   # no PUK is ever right
    if a and a[0] == m.o.pin:
        m.pin_state = "READY"
        m.pin_tries = 3
        m.log("pin", ok=True, state=m.pin_state, tries_left=m.pin_tries)
        return None
    m.pin_tries -= 1
    if m.pin_tries <= 0:
        m.pin_state = "SIM PUK"
    m.log("pin", ok=False, state=m.pin_state, tries_left=m.pin_tries)
    raise m.cme(16)


def c_csq(m, op, args):
    if op == "test":
        return ["+CSQ: (0-31,99),(0-7,99)"]
    return ["+CSQ: %s" % ("20,99" if m.cfun == 1 else "99,99")]


def c_reg(m, op, args, name):
    if op == "test":
        return ["%s: (0-2)" % name]
    if op == "set":
        m.reg_n[name] = num(args or "0", 0, 2)
        return None
    stat = 1 if m.registered() else 0
    line = "%s: %d,%d" % (name, m.reg_n[name], stat)
    if m.reg_n[name] == 2 and stat:
        line += ',"1A2B","01C3D4E5"'
    return [line]


def c_cmgf(m, op, args):
    if op == "query":
        return ["+CMGF: %d" % m.cmgf]
    if op == "test":
        return ["+CMGF: (0,1)"]
    m.cmgf = num(args or "0", 0, 1)
    return None


def c_cscs(m, op, args):
    if op == "query":
        return ['+CSCS: "%s"' % m.cscs]
    if op == "test":
        return ['+CSCS: ("GSM","IRA","UCS2")']
    a = split_args(args)
    need(a, 1)
    if a[0].upper() not in ("GSM", "IRA", "UCS2", "8859-1"):
        raise m.cme(4)
    m.cscs = a[0].upper()
    return None


def te_string(m, s):
    """A string as AT+CSCS says strings are written (UCS2: hex)."""
    return s.encode("utf-16-be").hex().upper() if m.cscs == "UCS2" else s


def from_te_string(m, s):
    if m.cscs == "UCS2" and re.fullmatch(r"(?:[0-9A-Fa-f]{4})+", s):
        return bytes.fromhex(s).decode("utf-16-be")
    return s


def c_csca(m, op, args):
    if op == "test":
        return None
    m.need_sim()
    if op == "query":
        toa = 145 if m.csca.startswith("+") else 129
        return ['+CSCA: "%s",%d' % (te_string(m, m.csca), toa)]
    a = split_args(args)
    need(a, 1)
    m.csca = from_te_string(m, a[0])
    return None


def c_cpms(m, op, args):
    if op == "test":
        return ['+CPMS: ("SM"),("SM"),("SM")']
    m.need_sim()
    used, cap = len(m.store), m.o.capacity
    if op == "query":
        return ['+CPMS: "SM",%d,%d,"SM",%d,%d,"SM",%d,%d'
                % (used, cap, used, cap, used, cap)]
    a = split_args(args)
    need(a, 1)
    if any(x.upper() != "SM" for x in a) or len(a) > 3:
        raise m.cms(302)
    return ["+CPMS: %d,%d,%d,%d,%d,%d" % (used, cap, used, cap, used, cap)]


def c_cnmi(m, op, args):
    if op == "query":
        return ["+CNMI: %d,%d,%d,%d,%d" % tuple(m.cnmi)]
    if op == "test":
        return ["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"]
    a = split_args(args)
    limits = (2, 3, 3, 2, 1)
    new = list(m.cnmi)
    for i, v in enumerate(a[:5]):
        if v != "":
            new[i] = num(v, 0, limits[i], m.cms(303))
    if len(a) > 5:
        raise ATError("ERROR")
    # <bfr> 1 clears what waited for <mode> 1/2; 0 flushes it (idle())
    if m.cnmi[0] == 0 and new[0] != 0 and new[4] == 1:
        m.urcs.clear()
    m.cnmi = new
    return None


def c_csms(m, op, args):
    if op == "query":
        return ["+CSMS: %d,1,1,1" % m.csms]
    if op == "test":
        return ["+CSMS: (0,1)"]
    m.csms = num(args or "0", 0, 1, m.cms(303))
    return ["+CSMS: 1,1,1"]


def c_cmgs(m, op, args):
    if op == "test":
        return None
    if op != "set":
        raise ATError("ERROR")
    m.need_sim()
    if m.cmgf != 0:
        raise m.cms(302)                # text mode is not emulated
    n = num(args.strip(), 1, 164, m.cms(304))
    m.cmgs_len = n
    return "PROMPT"


def c_cmgl(m, op, args):
    if op == "test":
        return ["+CMGL: (0-4)"]
    m.need_sim()
    if m.cmgf != 0:
        raise m.cms(302)
    stat = 0 if op == "exec" else num(args.strip(), 0, 4, m.cms(304))
    lines = []
    for idx in sorted(m.store):
        e = m.store[idx]
        if stat == 4 or e["stat"] == stat:
            lines.append("+CMGL: %d,%d,,%d" % (idx, e["stat"], e["len"]))
            lines.append(e["pdu"])
            if e["stat"] == 0:
                e["stat"] = 1
                m.log("read", idx=idx, by="CMGL")
    return lines or None


def c_cmgr(m, op, args):
    if op == "test":
        return None
    if op != "set":
        raise ATError("ERROR")
    m.need_sim()
    if m.cmgf != 0:
        raise m.cms(302)
    idx = num(args.strip(), -1, 1 << 16, m.cms(321))
    if idx not in m.indexes():
        raise m.cms(321)
    e = m.store.get(idx)
    if e is None:
        return None                     # an empty slot: just OK
    line = "+CMGR: %d,,%d" % (e["stat"], e["len"])
    if e["stat"] == 0:
        e["stat"] = 1
    m.log("read", idx=idx, by="CMGR")
    return [line, e["pdu"]]


def c_cmgd(m, op, args):
    if op == "test":
        used = ",".join(str(i) for i in sorted(m.store))
        return ["+CMGD: (%s),(0-4)" % used]
    if op != "set":
        raise ATError("ERROR")
    m.need_sim()
    a = split_args(args)
    need(a, 1)
    idx = num(a[0], -1, 1 << 16, m.cms(321))
    flag = num(a[1], 0, 4, m.cms(304)) if len(a) > 1 and a[1] else 0
    if flag == 0:
        if idx not in m.indexes():
            raise m.cms(321)
        gone = [idx] if idx in m.store else []
    else:   # 1 read, 2 read+sent, 3 read+sent+unsent, 4 all
        keep = {1: (0, 2, 3), 2: (0, 2), 3: (0,), 4: ()}[flag]
        gone = [i for i, e in m.store.items() if e["stat"] not in keep]
    for i in gone:
        del m.store[i]
        m.log("delete", idx=i, flag=flag)
    if not gone:
        m.log("delete", idx=idx, flag=flag, empty=True)
    return None


def c_cfun(m, op, args):
    """0/4 radio off; 1 on; "=1,1", or 1 after 0/4, reboots."""
    if op == "query":
        return ["+CFUN: %d" % m.cfun]
    if op == "test":
        return ["+CFUN: (0,1,4),(0,1)"]
    a = split_args(args)
    need(a, 1)
    fun = num(a[0], 0, 4, m.cme(4))
    rst = num(a[1], 0, 1, m.cme(4)) if len(a) > 1 and a[1] else 0
    if fun not in (0, 1, 4):
        raise m.cme(4)
    if fun == 1 and (rst == 1 or m.cfun != 1):
        m.after = lambda: m.reset("AT+CFUN=%s" % args)
    elif fun != 1:
        m.cfun = fun
        m.log("cfun", cfun=fun)
    return None


def c_cnma(m, op, args):
    return None


def c_cops(m, op, args):
    if op == "test":
        return ['+COPS: (2,"NTT DOCOMO","DOCOMO","44010",7),,(0-4),(0-2)']
    if op == "query":
        if not m.registered():
            return ["+COPS: 0"]
        return ['+COPS: 0,0,"NTT DOCOMO",7']
    return None


def c_cnum(m, op, args):
    if op == "test":
        return None
    m.need_sim("CME")
    return ['+CNUM: ,"%s",145' % m.o.own_number]


EXTENDED = {
    "+CGMI": ident("DENGON"), "+GMI": ident("DENGON"),
    "+CGMM": ident("GSMEMU-1"), "+GMM": ident("GSMEMU-1"),
    "+CGMR": ident("GSMEMU-1.0"), "+GMR": ident("GSMEMU-1.0"),
    "+CGSN": ident(lambda m: m.o.imei), "+GSN": ident(lambda m: m.o.imei),
    "+CIMI": c_cimi, "+CMEE": c_cmee, "+CPIN": c_cpin, "+CSQ": c_csq,
    "+CREG": lambda m, op, a: c_reg(m, op, a, "+CREG"),
    "+CGREG": lambda m, op, a: c_reg(m, op, a, "+CGREG"),
    "+CEREG": lambda m, op, a: c_reg(m, op, a, "+CEREG"),
    "+CMGF": c_cmgf, "+CSCS": c_cscs, "+CSCA": c_csca, "+CPMS": c_cpms,
    "+CNMI": c_cnmi, "+CSMS": c_csms, "+CMGS": c_cmgs, "+CMGL": c_cmgl,
    "+CMGR": c_cmgr, "+CMGD": c_cmgd, "+CFUN": c_cfun, "+CNMA": c_cnma,
    "+COPS": c_cops, "+CNUM": c_cnum,
}


# ---- the control socket ---------------------------------------------------

class Control:
    """One JSON object per line in, one JSON line back."""

    def __init__(self, loop, path, handler):
        self.loop, self.path, self.handler = loop, path, handler
        if os.path.lexists(path):
            os.unlink(path)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(8)
        self.lsock.setblocking(False)
        loop.sel.register(self.lsock, selectors.EVENT_READ, self._accept)

    def _accept(self, _mask):
        try:
            conn, _ = self.lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(True)
        conn.settimeout(5)
        buf = bytearray()
        self.loop.sel.register(conn, selectors.EVENT_READ,
                               lambda mask: self._read(conn, buf))

    def _read(self, conn, buf):
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.loop.sel.unregister(conn)
            conn.close()
            return
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            if not line.strip():
                continue
            gone = None
            try:
                reply = self.handler(json.loads(line))
            except Vanish as e:         # answer, then go
                reply, gone = {"ok": True, "vanished": True}, e
            except Exception as e:      # a bad request never kills us
                reply = {"ok": False, "error": "%s: %s"
                         % (type(e).__name__, e)}
            try:
                conn.sendall((json.dumps(reply, ensure_ascii=False)
                              + "\n").encode())
            except OSError:
                pass
            if gone:
                raise gone

    def close(self):
        try:
            os.unlink(self.path)
        except OSError:
            pass


def control_handler(modem):
    """The commands a test sends to script the modem."""
    def handle(req):
        cmd = req.get("cmd")
        if cmd == "deliver":
            sender = req.get("from", "+819012345678")
            text = req.get("text")
            if not isinstance(text, str) or not text:
                return {"ok": False, "error": "deliver needs a text"}
            r = modem.deliver(sender, text, bool(req.get("notify", True)))
            return dict(ok=True, **r)
        if cmd == "mode":
            mode = req.get("mode", modem.mode)
            if mode not in MODES:
                return {"ok": False, "error": "unknown mode %r" % mode}
            modem.mode = mode
            if "slow_cmgs" in req:
                modem.slow_cmgs = float(req["slow_cmgs"] or 0)
            modem.log("mode", mode=mode, slow_cmgs=modem.slow_cmgs,
                      by="control")
            modem.flush_urcs()
            return {"ok": True, "mode": mode, "slow_cmgs": modem.slow_cmgs}
        if cmd == "vanish":
            modem.vanish("control")
        if cmd == "report":
            mr = int(req["mr"])
            sub = modem.by_mr.get(mr)
            if sub is None:
                return {"ok": False, "error": "no submit has mr %d" % mr}
            routed = modem.status_report(sub, int(req.get("st", 0)))
            return {"ok": True, "routed": routed}
        if cmd == "cms":
            key = digits_of(req["number"])
            if req.get("code") is None:
                modem.cms_codes.pop(key, None)
            else:
                modem.cms_codes[key] = int(req["code"])
            return {"ok": True}
        if cmd == "fail":
            key = digits_of(req["number"])
            if req.get("on", True):
                modem.fail.add(key)
            else:
                modem.fail.discard(key)
            return {"ok": True}
        if cmd == "urc":
            modem.urc(str(req["line"]))
            return {"ok": True}
        if cmd == "state":
            return {"ok": True, "submitted": modem.submitted,
                    "pdus": modem.pdus_received,
                    "stored": sorted(modem.store),
                    "unread": sorted(i for i, e in modem.store.items()
                                     if e["stat"] == 0),
                    "mode": modem.mode, "slow_cmgs": modem.slow_cmgs,
                    "pin_state": modem.pin_state, "echo": modem.echo,
                    "cmee": modem.cmee, "cmgf": modem.cmgf,
                    "cnmi": modem.cnmi, "cfun": modem.cfun,
                    "mr_next": modem.mr_next, "urcs_queued": len(modem.urcs),
                    **modem.port.describe()}
        return {"ok": False, "error": "unknown cmd %r" % cmd}
    return handle


# ---- main -----------------------------------------------------------------

def options(argv):
    p = argparse.ArgumentParser(
        description="a scripted GSM modem (AT commands, PDU mode)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", metavar="LINK")
    where.add_argument("--tcp", metavar="PORT", type=int)
    p.add_argument("--pty-min", type=int, default=16, metavar="N",
                   help="use /dev/pts/N or above (see PtyPort.openpty)")
    p.add_argument("--control", required=True, metavar="SOCK")
    p.add_argument("--log", required=True, metavar="FILE")
    p.add_argument("--pin")
    p.add_argument("--report-delay", type=int, default=300, metavar="MS")
    p.add_argument("--lifetime", type=float, default=600, metavar="S")
    p.add_argument("--mode", choices=MODES, default="normal")
    p.add_argument("--slow-cmgs", type=float, default=0, metavar="S")
    p.add_argument("--fail", action="append", default=[], metavar="NUMBER")
    p.add_argument("--cms", action="append", default=[], metavar="NUMBER=CODE")
    p.add_argument("--vanish-after-cmgs", type=int, default=0, metavar="N")
    p.add_argument("--mr-start", type=int, default=0, metavar="N")
    p.add_argument("--imei", default="356938035643809")
    p.add_argument("--imsi", default="440101234567890")
    p.add_argument("--own-number", default="+819099990000")
    p.add_argument("--smsc", default="+819012000000")
    p.add_argument("--first-index", type=int, choices=(0, 1), default=1)
    p.add_argument("--capacity", type=int, default=30)
    p.add_argument("--boot-ms", type=int, default=300, metavar="MS")
    p.add_argument("--tz", type=int, default=36, metavar="QUARTERS",
                   help="time zone of time stamps (36: +09:00)")
    p.add_argument("--seed", type=int, default=None,
                   help="for the noise of --mode garbage")
    o = p.parse_args(argv)
    for spec in o.cms:
        if not re.fullmatch(r"\+?[0-9]+=[0-9]+", spec):
            p.error("--cms wants NUMBER=CODE, not %r" % spec)
    return o


def main(argv):
    o = options(argv)
    log = EventLog(o.log)
    loop = Loop()
    port = PtyPort(loop, log, o.pty, o.pty_min) if o.pty \
        else TcpPort(loop, log, o.tcp)
    modem = Modem(loop, port, log, o)
    port.on_data = modem.feed
    control = Control(loop, o.control, control_handler(modem))

    def stop(signum, _frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.call_later(o.lifetime, lambda: stop(0, None))
    log("start", pid=os.getpid(), mode=o.mode, pin=bool(o.pin),
        **port.describe())
    why = "stopped"
    try:
        loop.run()
    except Vanish:
        why = "vanished"
    finally:
        port.close()
        control.close()
        log("exit", why=why)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
