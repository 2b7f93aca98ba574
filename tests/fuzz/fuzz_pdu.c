/*
 * fuzz_pdu.c - libFuzzer target: the SMS PDU codec (channels/sms_pdu.c).
 *
 * Each input is used three ways:
 *   1. as the hex a modem would give (up to its first NUL): sms_decode();
 *   2. as raw octets, turned into hex first: sms_decode() on any PDU;
 *   3. as UTF-8 text (when it is valid): sms_encode_submit(), then every
 *      part through sms_decode().
 * Checks what sms_pdu.h promises: a decoded text, number and SMSC are
 * NUL-terminated in their buffers, valid UTF-8, with no control character
 * but LF; a refusal says why.  An encoded part is upper-case hex of
 * tpdu_len octets after "00", fits SMS_PDU_HEX_MAX, decodes back as an
 * SMS-SUBMIT to the number with its seq/total and exactly its part.text,
 * and the parts together read as the input with control characters but
 * LF made spaces; their number is sms_parts_needed().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/sms_pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NUM	"+819012345678"

/* Abort unless s[0..cap) holds a NUL and, before it, valid UTF-8 without
 * control characters but LF (no C0 but LF, no DEL, no C1). */
static void
check_text(const char *str, size_t cap)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n, i = 0, k;
	uint32_t cp;

	if (memchr(str, '\0', cap) == NULL)
		abort();
	n = strlen(str);
	while (i < n) {
		if (s[i] < 0x80) {
			if ((s[i] < 0x20 && s[i] != '\n') || s[i] == 0x7f)
				abort();
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			k = 2;
			cp = s[i] & 0x1f;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			k = 3;
			cp = s[i] & 0x0f;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			k = 4;
			cp = s[i] & 0x07;
		} else
			abort();
		if (i + k > n)
			abort();
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				abort();
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp < 0xa0))
			abort();
		i += k;
	}
}

/* Decode hex; on success check the fields, on failure the message. */
static void
decode(const char *hex, struct sms_decoded *d)
{
	char err[256];

	err[0] = '\0';
	if (sms_decode(hex, d, err, sizeof(err)) == 0) {
		check_text(d->text, sizeof(d->text));
		check_text(d->number, sizeof(d->number));
		check_text(d->smsc, sizeof(d->smsc));
		if (d->type != SMS_PDU_DELIVER && d->type != SMS_PDU_SUBMIT &&
		    d->type != SMS_PDU_STATUS_REPORT)
			abort();
		if ((unsigned)d->coding > SMS_8BIT)
			abort();
		if (d->concat_total != 0 && (d->concat_seq < 1 ||
		    d->concat_seq > d->concat_total))
			abort();
		if (d->type == SMS_PDU_STATUS_REPORT &&
		    sms_status_text(d->status) == NULL)
			abort();
	} else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
		abort();
}

/* 1 if s[0..n) is valid UTF-8 (the codec's encoder refuses the rest). */
static int
valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, k;
	uint32_t cp;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			k = 2, cp = s[i] & 0x1f;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			k = 3, cp = s[i] & 0x0f;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			k = 4, cp = s[i] & 0x07;
		else
			return 0;
		if (i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k;
	}
	return 1;
}

/* Valid UTF-8 text as the encoder sends it: controls but LF as spaces. */
static char *
cleaned(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text), o = 0;
	char *out = malloc(n + 1);

	if (out == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		if ((s[i] < 0x20 && s[i] != '\n') || s[i] == 0x7f)
			out[o++] = ' ';
		else if (s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] < 0xa0) {
			out[o++] = ' ';
			i++;
		} else
			out[o++] = (char)s[i];
	}
	out[o] = '\0';
	return out;
}

static void
encode(const char *text, size_t size)
{
	struct sms_part *parts = calloc(SMS_MAX_PARTS, sizeof(*parts));
	struct sms_decoded d;
	char err[256], *want, *got;
	int n, max = 1 + (int)(size % SMS_MAX_PARTS), ref = (int)(size % 256);
	size_t glen = 0, hl;

	if (parts == NULL)
		abort();
	n = sms_encode_submit(NUM, text, ref, max, (int)(size & 1),
	    (int)(size % 7) * 1000, parts, err, sizeof(err));
	if (n < 0) {
		/* only an empty text, or one too long, is refused */
		if (text[0] != '\0' && sms_parts_needed(text) <= max)
			abort();
		free(parts);
		return;
	}
	if (n < 1 || n > max || n != sms_parts_needed(text))
		abort();
	want = cleaned(text);
	if ((got = malloc((size_t)n * SMS_TEXT_MAX + 1)) == NULL)
		abort();
	got[0] = '\0';
	for (int i = 0; i < n; i++) {
		struct sms_part *p = &parts[i];

		hl = strnlen(p->hex, sizeof(p->hex));
		if (hl == sizeof(p->hex) || hl != 2 + 2 * (size_t)p->tpdu_len ||
		    strspn(p->hex, "0123456789ABCDEF") != hl ||
		    strncmp(p->hex, "00", 2) != 0)
			abort();
		if (p->seq != i + 1 || p->total != n)
			abort();
		check_text(p->text, sizeof(p->text));
		if (sms_decode(p->hex, &d, err, sizeof(err)) != 0)
			abort();
		if (d.type != SMS_PDU_SUBMIT || strcmp(d.number, NUM) != 0 ||
		    d.srr != (int)(size & 1) || strcmp(d.text, p->text) != 0)
			abort();
		if (n > 1 ? (d.concat_ref != ref || d.concat_total != n ||
		    d.concat_seq != i + 1) : d.concat_total != 0)
			abort();
		memcpy(got + glen, d.text, strlen(d.text) + 1);
		glen += strlen(d.text);
	}
	if (strcmp(got, want) != 0)
		abort();
	free(got);
	free(want);
	free(parts);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hexd[] = "0123456789ABCDEF";
	struct sms_decoded d;
	char *s, *hex;

	if ((s = malloc(size + 1)) == NULL ||
	    (hex = malloc(2 * size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	/* 1. the bytes as a modem's hex line */
	decode(s, &d);

	/* 2. the bytes as the PDU itself */
	for (size_t i = 0; i < size; i++) {
		hex[2 * i] = hexd[data[i] >> 4];
		hex[2 * i + 1] = hexd[data[i] & 0x0f];
	}
	hex[2 * size] = '\0';
	decode(hex, &d);

	/* 3. the bytes (to the first NUL) as a text to send */
	if (valid_utf8((const unsigned char *)s, strlen(s)))
		encode(s, size);

	free(hex);
	free(s);
	return 0;
}
