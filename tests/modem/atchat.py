#!/usr/bin/python3
"""atchat.py - a small AT client that talks to a modem the raw way, for tests.

usage: atchat.py DEVICE [-t SECONDS] [-c CONTROL] STEP...

DEVICE is a tty/pty path or tcp:PORT (on 127.0.0.1).  Each STEP prints one
line of four tab-separated fields: the step, its result, the seconds it
took, and "noise=N", the lines of line noise (not printable ASCII) seen
meanwhile.  The result is the lines that answered the step joined by "|"
(echo and empty lines left out, unsolicited lines set aside for wait:),
TIMEOUT when no final result code came within SECONDS (default 5), or
GONE once the device is gone (read/write failed: EIO, a closed socket).
Steps:

  AT...                    send a command line (CR), wait for OK, ERROR,
                           NO CARRIER, +CME ERROR or +CMS ERROR
  batch:AT...|AT...        several command lines in one write, then the
                           answers of each
  send:AT...               send a command line, wait for nothing
  raw:TEXT                 write TEXT (with \\r \\x1a ... escapes), show
                           every byte that comes within 0.5 s: CR as <CR>,
                           LF as <LF>, others not printable as <xNN>
  sms:NUMBER:TEXT[:srr]    AT+CMGS with an SMS-SUBMIT for TEXT (GSM 7-bit,
                           built here, TP-SRR set with :srr), wait for the
                           answer to the PDU
  pdu:LEN:HEX              AT+CMGS=LEN, then HEX as given (for bad PDUs)
  prompt:NUMBER:TEXT[:srr] only the AT+CMGS of sms:..., up to the prompt
  body                     then the PDU of the last prompt:, up to the
                           answer
  ctl:JSON                 send JSON to the emulator's control socket
                           CONTROL (gsmemu.py --control), print the reply
  wait:REGEX[:SECONDS]     wait for a line matching REGEX (an unsolicited
                           +CDS/+CMTI...); a +CDS/+CMT line comes with the
                           PDU line after it, as "+CDS: 25|0791..."
  quiet:SECONDS            expect nothing at all for SECONDS: SILENT, or
                           what came
  sleep:SECONDS            just wait (what arrives is kept for wait:)

atchat.py --relay tcp:PORT copies stdin to the port and the port to stdout
until either side closes: the device command of gammu's proxyat
connection (gammu cannot open a TCP port itself).

Lines that are not printable ASCII are line noise: their count is given
as "noise=N" at the end of a step's line when there were any.  The exit
status is 0 when every step ran (whatever the answers), 2 when DEVICE
cannot be opened.
"""
import argparse
import os
import re
import select
import socket
import sys
import termios
import time
import tty

sys.dont_write_bytecode = True         # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gsmemu import address, gsm7_septets, pack7  # noqa: E402

FINAL = re.compile(r"^(OK|ERROR|NO CARRIER|\+CME ERROR:.*|\+CMS ERROR:.*)$")
URC = re.compile(r"^(\+CMTI:|\+CDSI:|\+CDS:|\+CMT:|RING$|\+CRING:|RDY$)")
URC_WITH_PDU = re.compile(r"^\+(CDS|CMT):")


def submit_pdu(number, text, srr):
    """("00" + TPDU hex, TPDU length) of an SMS-SUBMIT in GSM 7-bit."""
    septets = [s for c in gsm7_septets(text) for s in c]
    first = 0x01 | 0x10 | (0x20 if srr else 0)   # SUBMIT, relative VP
    tpdu = bytes([first, 0]) + address(number) + bytes([0, 0, 0xAA]) \
        + bytes([len(septets)]) + pack7(septets, 0)
    return "00" + tpdu.hex().upper(), len(tpdu)


class Gone(Exception):
    pass


class Chat:
    def __init__(self, device):
        self.sock = None
        if device.startswith("tcp:"):
            self.sock = socket.create_connection(("127.0.0.1",
                                                  int(device[4:])), 5)
            self.fd = self.sock.fileno()
        else:
            self.fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(self.fd)
            termios.tcflush(self.fd, termios.TCIFLUSH)
        self.buf = b""
        self.lines = []         # received, not yet consumed
        self.urcs = []          # unsolicited lines set aside for wait:
        self.noise = 0
        self.gone = False
        self.last_pdu = ""
        self.raw = bytearray()  # every byte read, for raw:

    def write(self, data):
        if self.gone:
            raise Gone()
        try:
            if self.sock:
                self.sock.sendall(data)
            else:
                os.write(self.fd, data)
        except OSError:
            self.gone = True
            raise Gone()

    def read_some(self, deadline):
        """Read what comes before deadline into self.lines; False at the
        deadline."""
        if self.gone:
            raise Gone()
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            return False
        try:
            if self.sock:
                data = self.sock.recv(4096)
            else:
                data = os.read(self.fd, 4096)
        except OSError:
            data = b""
        if not data:
            self.gone = True
            raise Gone()
        self.raw += data
        self.buf += data
        # a prompt has no line end: make it a line of its own
        self.buf = self.buf.replace(b"\r\n> ", b"\r\n>\r\n")
        *done, self.buf = re.split(rb"\r\n|\r|\n", self.buf)
        for raw in done:
            if not raw:
                continue
            if any(b > 0x7E or (b < 0x20) for b in raw):
                self.noise += 1
                continue
            self.lines.append(raw.decode("ascii"))
        if self.buf == b">":
            self.lines.append(">")
            self.buf = b""
        return True

    def until(self, pred, timeout, echo=None, urcs_aside=True):
        """Lines up to and including the first for which pred is true.
        Unsolicited lines (with the PDU line after +CDS/+CMT) are set
        aside for wait: unless urcs_aside is false."""
        deadline = time.monotonic() + timeout
        got = []
        pdu_next = False
        while True:
            while self.lines:
                line = self.lines.pop(0)
                if echo is not None and line == echo:
                    echo = None
                    continue
                if urcs_aside and (pdu_next or URC.match(line)):
                    self.urcs.append(line)
                    pdu_next = not pdu_next and bool(URC_WITH_PDU.match(line))
                    continue
                got.append(line)
                if pred(line):
                    return got, True
            if not self.read_some(deadline):
                return got, False

    def command(self, cmd, timeout):
        self.write(cmd.encode("latin-1") + b"\r")
        return self.until(lambda l: FINAL.match(l) or l == ">", timeout,
                          echo=cmd)

    def send_pdu(self, n, hexpdu, timeout):
        got, ok = self.command("AT+CMGS=%d" % n, timeout)
        if not ok or got[-1] != ">":
            return got, ok
        self.write(hexpdu.encode() + b"\x1a")
        more, ok = self.until(lambda l: bool(FINAL.match(l)), timeout,
                              echo=hexpdu)
        return got + more, ok

    def wait(self, regex, timeout):
        """The first unsolicited line matching regex, set aside earlier or
        still to come; the others stay aside."""
        pat = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.urcs):
                if pat.search(line):
                    n = 2 if URC_WITH_PDU.match(line) and \
                        i + 1 < len(self.urcs) else 1
                    got = self.urcs[i:i + n]
                    del self.urcs[i:i + n]
                    return got, True
            if self.lines:
                got, _ = self.until(lambda l: False, 0)
                self.urcs += got        # not unsolicited, but kept
                continue
            if not self.read_some(deadline):
                return [], False

    def quiet(self, seconds):
        deadline = time.monotonic() + seconds
        got = list(self.lines)
        self.lines.clear()
        before = self.noise
        try:
            while self.read_some(deadline):
                pass
        except Gone:
            pass
        got += self.lines
        self.lines.clear()
        return got, not got and self.noise == before and not self.buf


def show(data):
    """Bytes as text: <CR>, <LF>, <xNN> for what is not printable."""
    out = []
    for b in data:
        if b == 0x0D:
            out.append("<CR>")
        elif b == 0x0A:
            out.append("<LF>")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("<x%02X>" % b)
    return "".join(out)


def control(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(request.encode() + b"\n")
        return s.makefile(encoding="utf-8").readline().strip()


def run_step(chat, step, timeout, ctl=None):
    if step.startswith(("sms:", "prompt:")):
        parts = step.split(":")
        hexpdu, n = submit_pdu(parts[1], parts[2],
                               len(parts) > 3 and parts[3] == "srr")
        if parts[0] == "sms":
            return chat.send_pdu(n, hexpdu, timeout)
        chat.last_pdu = hexpdu
        return chat.command("AT+CMGS=%d" % n, timeout)
    if step == "body":
        chat.write(chat.last_pdu.encode() + b"\x1a")
        return chat.until(lambda l: bool(FINAL.match(l)), timeout,
                          echo=chat.last_pdu)
    if step.startswith("batch:"):
        cmds = step[6:].split("|")
        chat.write("".join(c + "\r" for c in cmds).encode("latin-1"))
        got = []
        for c in cmds:
            more, ok = chat.until(lambda l: bool(FINAL.match(l)), timeout,
                                  echo=c)
            got += more
            if not ok:
                return got, False
        return got, True
    if step.startswith("send:"):
        chat.write(step[5:].encode("latin-1") + b"\r")
        return [], True
    if step.startswith("raw:"):
        start = len(chat.raw)
        chat.write(step[4:].encode("latin-1").decode("unicode_escape")
                   .encode("latin-1"))
        deadline = time.monotonic() + 0.5
        try:
            while chat.read_some(deadline):
                pass
        except Gone:
            pass
        chat.lines.clear()
        chat.buf = b""
        return [show(bytes(chat.raw[start:]))], True
    if step.startswith("ctl:"):
        return [control(ctl, step[4:])], True
    if step.startswith("pdu:"):
        _, n, hexpdu = step.split(":", 2)
        return chat.send_pdu(int(n), hexpdu, timeout)
    if step.startswith("wait:"):
        m = re.fullmatch(r"wait:(.*?)(?::([0-9.]+))?", step)
        return chat.wait(m.group(1), float(m.group(2) or timeout))
    if step.startswith("quiet:"):
        got, silent = chat.quiet(float(step[6:]))
        return (["SILENT"] if silent else got), True
    if step.startswith("sleep:"):
        deadline = time.monotonic() + float(step[6:])
        try:
            while chat.read_some(deadline):
                pass
        except Gone:
            pass
        return [], True
    return chat.command(step, timeout)


def relay(device):
    """stdin -> tcp:PORT -> stdout, until either end closes."""
    sock = socket.create_connection(("127.0.0.1", int(device[4:])), 5)
    sock.settimeout(None)
    ends = {0: sock, sock.fileno(): 1}
    while True:
        for fd in select.select([0, sock.fileno()], [], [])[0]:
            data = os.read(fd, 4096)
            if not data:
                return 0
            dst = ends[fd]
            if dst == 1:
                os.write(1, data)
            else:
                dst.sendall(data)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--relay":
        return relay(sys.argv[2])
    p = argparse.ArgumentParser()
    p.add_argument("device")
    p.add_argument("-t", type=float, default=5.0, dest="timeout")
    p.add_argument("-c", dest="control")
    p.add_argument("steps", nargs="+")
    o = p.parse_args()
    try:
        chat = Chat(o.device)
    except OSError as e:
        print("cannot open %s: %s" % (o.device, e), file=sys.stderr)
        return 2
    for step in o.steps:
        start = time.monotonic()
        noise = chat.noise
        try:
            got, ok = run_step(chat, step, o.timeout, o.control)
            result = "|".join(got) + ("" if ok else ("|" if got else "")
                                      + "TIMEOUT")
        except Gone:
            result = "GONE"
        print("%s\t%s\t%.2f\tnoise=%d" % (step, result,
                                          time.monotonic() - start,
                                          chat.noise - noise), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
