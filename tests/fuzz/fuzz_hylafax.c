/*
 * fuzz_hylafax.c - libFuzzer target: what a HylaFAX server (hfaxd) says,
 * through the reply reader and the job-state parser of channels/fax.c.
 *
 * The bytes arrive in two cuts (a reply split across reads, as a socket
 * delivers it) into a buffer of the reader's size; every reply taken out
 * is checked against fax_reply_take()'s promises (a code of 100-599, the
 * text NUL-terminated, without control characters but LF, nothing consumed
 * when incomplete) and its text parsed by fax_job_parse() as the client
 * does after JPARM.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/fax.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BUF	8192

static void
check_reply(const char *reply, size_t replylen, int code)
{
	struct fax_job j;
	size_t n = strnlen(reply, replylen);

	if (n == replylen || code < 100 || code > 599)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)reply[i] < 0x20 && reply[i] != '\n')
			abort();
	if (fax_job_parse(reply, &j) == 1) {
		if (strnlen(j.state, sizeof(j.state)) == sizeof(j.state) ||
		    strnlen(j.status, sizeof(j.status)) == sizeof(j.status))
			abort();
		if (j.pages < 0 || j.total < 0 || j.dials < 0 || j.tries < 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[BUF], reply[BUF], err[256];
	size_t len = 0, cut, off = 0;
	int code, rc;

	if (size == 0)
		return 0;
	cut = data[0] % (size + 1);
	data++;
	size--;
	for (int round = 0; round < 2; round++) {
		size_t want = round == 0 ? (cut < size ? cut : size) : size - off;
		size_t take = want < BUF - len ? want : BUF - len;

		memcpy(buf + len, data + off, take);
		len += take;
		off += take;
		for (;;) {
			size_t before = len;

			rc = fax_reply_take(buf, &len, reply, sizeof(reply), &code,
			    err, sizeof(err));
			if (rc == 0 && len != before)
				abort();	/* incomplete: nothing consumed */
			if (rc != 1)
				break;
			if (len >= before)
				abort();	/* a reply consumes bytes */
			check_reply(reply, sizeof(reply), code);
		}
		if (rc == -1)
			break;
	}
	return 0;
}
