/*
 * sms_pdu.h - SMS PDUs (3GPP TS 23.040 / 23.038): pure encoding and
 * decoding, no I/O.
 *
 * What goes out is an SMS-SUBMIT per part, in the form AT+CMGS takes in
 * PDU mode: a zero SMSC length octet ("00": the SIM's service centre)
 * followed by the TPDU, as upper-case hex.  Text is GSM 7-bit (the
 * default alphabet and its extension table) when every character allows
 * it, UCS2 (UTF-16 big-endian, surrogate pairs kept together) otherwise.
 * A text longer than one message is split into parts carrying a
 * concatenation UDH (IEI 00, 8-bit reference): 153 septets or 67 UTF-16
 * units per part, never splitting an escape sequence or a surrogate pair.
 *
 * What comes back is an SMS-DELIVER (an inbound message) or an
 * SMS-STATUS-REPORT (a delivery report), read from +CMGL/+CMGR/+CDS, with
 * the SMSC address in front.
 *
 * Every decoder takes untrusted bytes: lengths are checked against what is
 * there, text is returned as valid UTF-8 with no control characters but
 * LF (CR and others become a space), and an error names what is wrong.
 */
#ifndef DENGON_SMS_PDU_H
#define DENGON_SMS_PDU_H

#include <stddef.h>
#include <stdint.h>

#define SMS_MAX_PARTS		10	/* a hard cap above max_parts */
#define SMS_NUMBER_MAX		20	/* "+" and up to 15 digits, NUL */
#define SMS_PDU_HEX_MAX		(2 * 180 + 1)	/* SMSC octet + TPDU, hex, NUL */
#define SMS_TEXT_MAX		1024	/* one part decoded, UTF-8, NUL */

enum sms_coding {
	SMS_GSM7,
	SMS_UCS2,
	SMS_8BIT		/* only ever decoded */
};

/* 1 if number is E.164 as dengon stores it: "+" then 1-15 digits, the first
 * not 0, and nothing else (checked again before anything reaches a modem). */
int sms_number_ok(const char *number);

/* The coding text (UTF-8) needs: SMS_GSM7 if every character is in the
 * GSM default alphabet or its extension table, else SMS_UCS2. */
enum sms_coding sms_coding_for(const char *text);

/* How long text is in coding: septets (an extension character counts 2)
 * or UTF-16 units.  Invalid UTF-8 counts as U+FFFD. */
size_t sms_length(const char *text, enum sms_coding coding);

/* How many parts text needs (1 when it fits one message: 160 septets or
 * 70 units; else 153/67 per part, honouring the no-split rules). */
int sms_parts_needed(const char *text);

/* One encoded part of an SMS-SUBMIT. */
struct sms_part {
	char	hex[SMS_PDU_HEX_MAX];	/* "00" + TPDU, upper-case hex */
	int	tpdu_len;		/* octets after the SMSC octet: the
					   length AT+CMGS=<n> wants */
	int	seq, total;		/* 1..total; total 1: no UDH */
	char	text[SMS_TEXT_MAX];	/* this part's text (UTF-8) */
};

/*
 * Encode text for number as SMS-SUBMIT PDUs, into parts[0..n-1]; returns n
 * (1..max_parts), or -1 with err when the number is not sms_number_ok(),
 * text is empty or invalid UTF-8, or it needs more than max_parts parts
 * (the caller shortens it: sms_parts_needed() tells beforehand).
 *   ref:	 the concatenation reference (0-255), used when n > 1;
 *   srr:	 1 to request a status report (TP-SRR);
 *   vp_minutes: relative validity period (TP-VP), 0 for none; rounded up
 *		 to what TP-VP can say (5 min steps to 12 h, 30 min to 24 h,
 *		 days to 30 d, weeks to 63 weeks), capped at 63 weeks.
 * TP-MR is 0 (the modem assigns it), TP-PID 0, the number in
 * international format (type 0x91).
 */
int sms_encode_submit(const char *number, const char *text, int ref,
    int max_parts, int srr, int vp_minutes, struct sms_part *parts,
    char *err, size_t errlen);

enum sms_pdu_type {
	SMS_PDU_DELIVER,		/* an inbound message */
	SMS_PDU_SUBMIT,			/* one of ours (decoded for tests) */
	SMS_PDU_STATUS_REPORT
};

/* The class of a TP-Status value (23.040 9.2.3.15). */
enum sms_status_class {
	SMS_ST_DELIVERED,	/* 0x00-0x1F: received, forwarded, replaced */
	SMS_ST_TRYING,		/* 0x20-0x3F: temporary, the SC still tries */
	SMS_ST_FAILED,		/* 0x40-0x5F: permanent error */
	SMS_ST_GAVE_UP		/* 0x60-0x7F (and reserved values): temporary
				   error, the SC no longer tries */
};

enum sms_status_class sms_status_classify(int st);
const char *sms_status_text(int st);	/* "received by the SME", ... */

/* A decoded PDU; fields that do not apply to its type are zero/empty. */
struct sms_decoded {
	enum sms_pdu_type	type;
	char	smsc[SMS_NUMBER_MAX];	/* "+81..." or "" when absent */
	/* DELIVER: the sender; SUBMIT: the destination; STATUS-REPORT: the
	 * recipient.  "+" and digits for an international number, digits
	 * for another numeric type, the decoded name for an alphanumeric
	 * one (UTF-8, at most 11 characters). */
	char	number[32];
	int	number_international;	/* type of number was 1 */
	/* DELIVER and STATUS-REPORT: the SC time stamp, ms since the epoch
	 * (UTC, from the time zone in the PDU); 0 if absent. */
	int64_t	scts;
	/* DELIVER / SUBMIT */
	enum sms_coding	coding;
	int	concat_ref;		/* 8- or 16-bit UDH reference */
	int	concat_total;		/* 0: not concatenated */
	int	concat_seq;
	char	text[SMS_TEXT_MAX];	/* this part's text (UTF-8) */
	int	srr;			/* SUBMIT: status report requested */
	/* STATUS-REPORT */
	int	mr;			/* TP-MR of the message it reports */
	int64_t	discharge;		/* TP-DT, ms since the epoch */
	int	status;			/* TP-ST */
};

/*
 * Decode hex (an SMSC length octet, the SMSC address, then the TPDU, as
 * +CMGL, +CMGR and +CDS give it; upper or lower case).  0, or -1 with err
 * ("truncated at octet N", "bad hex at N", "unsupported TP-MTI 3" ...).
 */
int sms_decode(const char *hex, struct sms_decoded *out, char *err,
    size_t errlen);

#endif /* DENGON_SMS_PDU_H */
