#!/usr/bin/python3
"""pdu_gammu.py - check dengon's SMS PDUs against python3-gammu, for the tests.

usage:
  pdu_gammu.py check NUMBER TEXTFILE [--srr] [--vp MINUTES] [--ref REF] < PARTS
  pdu_gammu.py pdus
  pdu_gammu.py compare HEX JSON

check: PARTS is what `sms_pdu encode` printed for the text in TEXTFILE
(UTF-8), one "SEQ TOTAL TPDU_LEN HEX" line per part.  Every part is decoded
with gammu.DecodePDU (SMSC octet included) and compared with what this
script expects, worked out here on its own: the coding (GSM 7-bit when
every character, control characters but LF taken as spaces, is in the
default alphabet or its extension table, else UCS2), the split (160
septets / 70 UTF-16 units in one message, else 153 / 67 per part, an
escape sequence or a surrogate pair never cut), the number, each part's
text and their concatenation, the UDH (ID8bit, PartNumber, AllParts), the
validity period, TP-SRR and TP-UDHI in the first octet (gammu does not
report TP-SRR), TPDU_LEN; and each part byte for byte against the same
part encoded by gammu.EncodePDU (which always writes a TP-VP: without
--vp its VPF bits and VP octet are taken out before comparing).
Prints "parts=N coding=gsm7|ucs2" then one line per disagreement.

pdus: PDUs from gammu for sms_pdu decode, one "NAME<TAB>HEX" per line:
SMS-DELIVERs that gammu.EncodePDU builds, and SMS-STATUS-REPORTs written
here (gammu cannot encode those) that gammu decodes.

compare: decode HEX with gammu and compare with the JSON that
`sms_pdu decode HEX` printed: type, number, SMSC, text, coding, UDH
fields, time stamps (gammu gives the local time written in the PDU; the
zone is applied here from the PDU's own octet), TP-MR and TP-ST.  Prints
one line per disagreement, nothing when they agree.

Exit status 0 when everything agrees, 1 otherwise, 2 if gammu cannot be
imported or on bad usage.
"""
import datetime
import json
import sys

try:
    import gammu
except ImportError as e:
    print("cannot import gammu (python3-gammu): %s" % e)
    sys.exit(2)

# 23.038 6.2.1: the default alphabet by septet (0x1B, the escape, is None)
GSM7 = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
assert len(GSM7) == 128
# 6.2.1.1: the extension table (what we send of it: no page break)
GSM7_EXT = "^{}\\[~]|€"
GSM7_BASE = set(GSM7) - {"\x1b", "\r"}

CODING = {"gsm7": "Default_No_Compression", "ucs2": "Unicode_No_Compression"}


def clean(text):
    """Control characters but LF as spaces, as dengon sends them."""
    return "".join(" " if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0
                   else c for c in text)


def cost(c, coding):
    if coding == "ucs2":
        return 2 if ord(c) > 0xffff else 1
    return 2 if c in GSM7_EXT else 1


def expected_parts(text):
    """(coding, [text of each part]) for a cleaned text."""
    coding = "gsm7" if all(c in GSM7_BASE or c in GSM7_EXT for c in text) else "ucs2"
    single, per = (160, 153) if coding == "gsm7" else (70, 67)
    if sum(cost(c, coding) for c in text) <= single:
        return coding, [text]
    parts, cur, used = [], "", 0
    for c in text:
        if used + cost(c, coding) > per:
            parts.append(cur)
            cur, used = "", 0
        cur += c
        used += cost(c, coding)
    parts.append(cur)
    return coding, parts


def vp_octet(minutes):
    """TP-VP, relative (23.040 9.2.3.12.1), rounded up, capped at 63 weeks."""
    def up(a, b):
        return -(-a // b)
    if minutes <= 720:
        return up(minutes, 5) - 1
    if minutes <= 1440:
        return 143 + up(minutes - 720, 30)
    if minutes <= 30 * 1440:
        return 166 + up(minutes, 1440)
    return min(255, 192 + up(minutes, 7 * 1440))


def vp_string(octet):
    """How python-gammu writes a relative validity period."""
    if octet == 255:
        return "Max"
    if octet <= 143:
        return "%dM" % (5 * (octet + 1))
    if octet <= 167:
        return "%dM" % (720 + 30 * (octet - 143))
    if octet <= 196:
        return "%dD" % (octet - 166)
    return "%dW" % (octet - 192)


def gammu_text(d):
    # python-gammu hands out Length characters of the decoded buffer; for
    # 7-bit text that is the septet count, so escape sequences leave a NUL
    # and stale bytes at the end.  No septet decodes to U+0000.
    return d["Text"].split("\x00")[0]


def gammu_submit(number, text, coding, udh, srr, vp):
    """The TPDU gammu.EncodePDU builds for one part (SMSC octets cut)."""
    octet = vp_octet(vp) if vp else 255
    # python-gammu reads "5W" as 166 + 5 (5 days): weeks go in as "Max"
    # and the octet is put in below.  (Its output, "Validity" of
    # DecodePDU, is right: check() compares that too.)
    sms = {"Number": number, "Text": text, "Class": -1, "Folder": 1,
           "Type": "Status_Report" if srr else "Submit", "State": "UnSent",
           "Coding": CODING[coding],
           "SMSC": {"Location": 0, "Number": "",
                    "Validity": vp_string(octet) if octet < 197 else "Max"}}
    if udh is not None:
        sms["UDH"] = {"Type": "ConcatenatedMessages", "Text": bytes(udh)}
    pdu = bytearray(gammu.EncodePDU(sms, "Submit"))
    tpdu = pdu[1 + pdu[0]:]
    # FO, MR, DA (length in digits, type, value), PID, DCS, then TP-VP
    at = 4 + (tpdu[2] + 1) // 2 + 2
    tpdu[at] = octet
    if not vp:
        # gammu always writes TP-VP: without one, VPF 00 and no octet
        tpdu[0] &= ~0x18 & 0xff
        del tpdu[at]
    return tpdu.hex().upper()


def check(argv):
    number, textfile = argv[0], argv[1]
    srr, vp, ref = False, 0, 0
    rest = argv[2:]
    while rest:
        if rest[0] == "--srr":
            srr, rest = True, rest[1:]
        elif rest[0] == "--vp":
            vp, rest = int(rest[1]), rest[2:]
        elif rest[0] == "--ref":
            ref, rest = int(rest[1]), rest[2:]
        else:
            print("bad option %r" % rest[0])
            return 2
    with open(textfile, "rb") as f:
        text = clean(f.read().decode("utf-8"))
    coding, want = expected_parts(text)
    lines = [l.split() for l in sys.stdin.read().splitlines() if l.strip()]
    print("parts=%d coding=%s" % (len(lines), coding))
    bad = []
    if len(lines) != len(want):
        bad.append("%d parts, expected %d" % (len(lines), len(want)))
    got = []
    for i, fields in enumerate(lines):
        where = "part %d" % (i + 1)
        if len(fields) != 4:
            bad.append("%s: bad line %r" % (where, " ".join(fields)))
            continue
        seq, total, tlen, hexs = int(fields[0]), int(fields[1]), int(fields[2]), fields[3]
        if (seq, total) != (i + 1, len(lines)):
            bad.append("%s: says %d of %d" % (where, seq, total))
        if hexs != hexs.upper() or not hexs.startswith("00"):
            bad.append("%s: not upper-case hex after a 00 SMSC octet" % where)
        raw = bytes.fromhex(hexs)
        if tlen != len(raw) - 1:
            bad.append("%s: TPDU_LEN %d, the TPDU has %d octets" % (where, tlen, len(raw) - 1))
        fo = raw[1]
        if fo & 0x03 != 0x01 or fo & 0x04:
            bad.append("%s: first octet %02X is not an SMS-SUBMIT with TP-RD 0" % (where, fo))
        if bool(fo & 0x20) != srr:
            bad.append("%s: TP-SRR is %d" % (where, bool(fo & 0x20)))
        if bool(fo & 0x40) != (total > 1):
            bad.append("%s: TP-UDHI is %d" % (where, bool(fo & 0x40)))
        if (fo >> 3 & 3) != (2 if vp else 0):
            bad.append("%s: TP-VPF is %d" % (where, fo >> 3 & 3))
        try:
            d = gammu.DecodePDU(raw, SMSC=True)
        except gammu.GSMError as e:
            bad.append("%s: gammu cannot decode it: %s" % (where, e))
            continue
        t = gammu_text(d)
        got.append(t)
        if d["Type"] != "Submit":
            bad.append("%s: gammu says type %s" % (where, d["Type"]))
        if d["Number"] != number:
            bad.append("%s: gammu says number %r" % (where, d["Number"]))
        if d["Coding"] != CODING[coding]:
            bad.append("%s: gammu says coding %s" % (where, d["Coding"]))
        if i < len(want) and t != want[i]:
            bad.append("%s: gammu reads %r, expected %r" % (where, t, want[i]))
        u = d["UDH"]
        if total > 1:
            if (u["Type"], u["ID8bit"], u["PartNumber"], u["AllParts"]) != \
                    ("ConcatenatedMessages", ref, seq, total):
                bad.append("%s: gammu's UDH %s" % (where, u))
        elif u["Type"] != "NoUDH":
            bad.append("%s: gammu finds a UDH %s" % (where, u))
        validity = vp_string(vp_octet(vp)) if vp else "NA"
        if d["SMSC"]["Validity"] != validity:
            bad.append("%s: gammu says validity %s, expected %s" %
                       (where, d["SMSC"]["Validity"], validity))
        if i < len(want):
            udh = [5, 0, 3, ref, total, seq] if total > 1 else None
            mine = gammu_submit(number, want[i], coding, udh, srr, vp)
            if hexs[2:] != mine:
                bad.append("%s: TPDU %s, gammu encodes %s" % (where, hexs[2:], mine))
    if "".join(got) != text:
        bad.append("the parts read %r, the text is %r" % ("".join(got), text))
    for b in bad:
        print(b)
    return 1 if bad else 0


def deliver(number, text, coding, udh=None, when=datetime.datetime(2026, 11, 21, 20, 10, 30)):
    sms = {"Number": number, "Text": text, "Class": -1, "Folder": 1,
           "Type": "Deliver", "State": "UnRead", "Coding": coding,
           "DateTime": when, "SMSC": {"Location": 0, "Number": "+819099990000"}}
    if udh is not None:
        sms["UDH"] = udh
    return gammu.EncodePDU(sms, "Deliver").hex().upper()


def pdus():
    u8 = "Default_No_Compression"
    u16 = "Unicode_No_Compression"
    long_ja = "【訓練】本日10時より総合防災訓練を実施します。各課は所定の手順で安否を報告してください。"
    out = [
        ("deliver 7-bit", deliver("+819012345678", "Hello, confirmed: ABCD-EFGH", u8)),
        ("deliver 7-bit extension", deliver("+819012345678", "{ok} [1] ~ 5€ | ^\\", u8)),
        ("deliver 7-bit national number", deliver("09012345678", "hai", u8)),
        ("deliver UCS2 Japanese", deliver("+819012345678", "了解しました。【訓練】ＡＢＣ－１２３", u16)),
        ("deliver UCS2 emoji", deliver("+819012345678", "OK 👍🏻 😀", u16)),
        ("deliver alphanumeric sender", deliver("Bosai24", "test", u8)),
        ("deliver alphanumeric sender 11", deliver("KeihoCenter", "test", u8)),
        ("deliver concatenated UCS2 1/2", deliver("+819012345678", long_ja[:30], u16,
         {"Type": "ConcatenatedMessages", "Text": bytes([5, 0, 3, 0x9c, 2, 1])})),
        ("deliver concatenated UCS2 2/2", deliver("+819012345678", long_ja[30:], u16,
         {"Type": "ConcatenatedMessages", "Text": bytes([5, 0, 3, 0x9c, 2, 2])})),
        ("deliver concatenated 7-bit 16-bit ref", deliver("+819012345678", "second part", u8,
         {"Type": "ConcatenatedMessages16bit", "Text": bytes([6, 8, 4, 0x12, 0x34, 3, 2])})),
    ]
    # SMS-SUBMITs as gammu sends them (Type Status_Report: TP-SRR set)
    for name, typ, text, coding, udh in (
            ("submit with TP-SRR", "Status_Report", "Report please", u8, None),
            ("submit UCS2 concatenated 3/3", "Submit", "最後の部分です", u16,
             {"Type": "ConcatenatedMessages", "Text": bytes([5, 0, 3, 7, 3, 3])})):
        sms = {"Number": "+819012345678", "Text": text, "Class": -1,
               "Folder": 1, "Type": typ, "State": "UnSent", "Coding": coding,
               "SMSC": {"Location": 0, "Number": "+819099990000",
                        "Validity": "1D"}}
        if udh is not None:
            sms["UDH"] = udh
        out.append((name, gammu.EncodePDU(sms, "Submit").hex().upper()))
    # SMS-STATUS-REPORTs (23.040 9.2.2.3), written here: SMSC, first octet
    # 06, TP-MR, TP-RA, TP-SCTS (+09:00), TP-DT (-06:30 and +09:00), TP-ST
    smsc = "0791180999990000"  # +819099990000
    ra = "0C91180921436587"  # +819012345678
    for name, st, dt in (("delivered", "00", "62111202013063"),
                         ("failed", "41", "6211120201306A"),
                         ("trying", "30", "62111202013063"),
                         ("congestion", "20", "62111202013063")):
        out.append(("status report " + name,
                    smsc + "06" + "2A" + ra + "62111202010063" + dt + st))
    for name, hexs in out:
        print("%s\t%s" % (name, hexs))
    return 0


def tz_of(octet):
    """The zone of a time stamp's last octet (23.040 9.2.3.11), in minutes."""
    q = (octet & 0x07) * 10 + (octet >> 4)
    return -15 * q if octet & 0x08 else 15 * q


def ms_of(naive, tz_octet):
    if naive is None:
        return 0
    utc = naive.replace(tzinfo=datetime.timezone.utc) - \
        datetime.timedelta(minutes=tz_of(tz_octet))
    return int(utc.timestamp() * 1000)


def compare(hexs, ours):
    raw = bytes.fromhex(hexs)
    d = gammu.DecodePDU(raw, SMSC=True)
    o = json.loads(ours)
    bad = []

    def want(field, value):
        if o.get(field) != value:
            bad.append("%s: ours %r, gammu %r" % (field, o.get(field), value))

    types = {"Deliver": "deliver", "Submit": "submit", "Status_Report": "status-report"}
    want("type", types[d["Type"]])
    want("smsc", d["SMSC"]["Number"])
    want("number", d["Number"])
    tpdu = raw[1 + raw[0]:]
    if d["Type"] == "Deliver":
        # FO, OA (length in digits, type, value), PID, DCS, SCTS
        at = 3 + (tpdu[1] + 1) // 2 + 2
        scts = tpdu[at:at + 7]
        want("scts", ms_of(d["DateTime"], scts[6]))
    if d["Type"] == "Submit":
        # gammu does not say TP-SRR: the first octet does
        want("srr", bool(tpdu[0] & 0x20))
    if d["Type"] in ("Deliver", "Submit"):
        want("text", gammu_text(d))
        want("coding", {v: k for k, v in CODING.items()}.get(d["Coding"], d["Coding"]))
        u = d["UDH"]
        if u["Type"] == "ConcatenatedMessages":
            want("concat_ref", u["ID8bit"])
        elif u["Type"] == "ConcatenatedMessages16bit":
            want("concat_ref", u["ID16bit"])
        if u["Type"] == "NoUDH":
            want("concat_total", 0)
        else:
            want("concat_seq", u["PartNumber"])
            want("concat_total", u["AllParts"])
    elif d["Type"] == "Status_Report":
        # FO, MR, RA, SCTS, DT, ST; python-gammu: DateTime is TP-SCTS,
        # SMSCDateTime TP-DT here
        at = 4 + (tpdu[2] + 1) // 2
        scts = tpdu[at:at + 7]
        dt = tpdu[at + 7:at + 14]
        want("scts", ms_of(d["DateTime"], scts[6]))
        want("discharge", ms_of(d["SMSCDateTime"], dt[6]))
        want("mr", d["MessageReference"])
        want("status", d["DeliveryStatus"])
        # gammu's own reading: Delivered (< 3), Failed (bit 6), Pending (bit 5)
        cls = {"Delivered": ("delivered",), "Failed": ("failed", "gave-up"),
               "Pending": ("trying",)}.get(d["Text"], ())
        if o.get("status_class") not in cls:
            bad.append("status_class: ours %r, gammu says %r" % (o.get("status_class"), d["Text"]))
    for b in bad:
        print(b)
    return 1 if bad else 0


def main():
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "check":
        return check(args[1:])
    if args == ["pdus"]:
        return pdus()
    if len(args) == 3 and args[0] == "compare":
        return compare(args[1], args[2])
    print(__doc__.split("\n\n")[1])
    return 2


if __name__ == "__main__":
    sys.exit(main())
