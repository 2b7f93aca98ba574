/*
 * fuzz_at.c - libFuzzer target: what a modem (or line noise) says, through
 * the AT parser of channels/sms_at.c.
 *
 * The bytes are fed in two cuts (a reply split across reads, as a serial
 * port delivers it); every URC the parser hands over is checked (a PDU is
 * a NUL-terminated string, a stored message's memory name is short) and
 * decoded with sms_decode(); the collected reply lines are walked by
 * at_parse_list() and at_parse_int() as the modem code does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/sms_at.h"
#include "channels/sms_pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
on_urc(enum at_urc kind, const char *mem, int index, const char *pdu,
    void *arg)
{
	struct sms_decoded d;
	char err[128];

	(void)arg;
	if (mem != NULL && strlen(mem) > 15)
		abort();
	if ((kind == AT_URC_CDS || kind == AT_URC_CMT) && pdu == NULL)
		abort();
	if ((kind == AT_URC_CMTI || kind == AT_URC_CDSI) && index < 0)
		abort();
	if (pdu != NULL)
		(void)sms_decode(pdu, &d, err, sizeof(err));
}

static void
on_entry(int index, int stat, const char *pdu, void *arg)
{
	struct sms_decoded d;
	char err[128];

	(void)index;
	(void)stat;
	(*(int *)arg)++;
	(void)sms_decode(pdu, &d, err, sizeof(err));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct at_modem *m = at_new(NULL, "fuzz", on_urc, NULL);
	const struct at_reply *r;
	size_t cut = size > 0 ? data[0] % (size + 1) : 0;
	int n = 0;

	if (m == NULL)
		abort();
	at_feed(m, (const char *)data, cut);
	at_feed(m, (const char *)data + cut, size - cut);
	r = at_last_reply(m);
	if (memchr(r->lines, '\0', sizeof(r->lines)) == NULL)
		abort();
	if (at_parse_list(r->lines, on_entry, &n) != n)
		abort();
	(void)at_parse_int(r->lines, "+CMGS:", 0);
	(void)at_parse_int(r->lines, "+CREG:", 1);
	at_free(m);
	return 0;
}
