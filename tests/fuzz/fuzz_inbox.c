/*
 * fuzz_inbox.c - libFuzzer target: one inbound mail (inbox_parse), as an
 * IMAP or POP3 server hands it over: replies, DSNs, MDNs and noise.
 *
 * Checks what channels/inbox.h and channel.h promise besides "no crash,
 * no leak, no undefined behaviour": inbox_parse() fails only on empty
 * input (there is no other error for malformed mail); every string handed
 * out is valid UTF-8 without NUL; raw points into the input and is at most
 * INBOX_RAW_MAX bytes; a DSN keeps at most INBOX_MAX_RCPTS recipient
 * blocks; key is left for the driver; and the struct can be reused after
 * inbox_parsed_free().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/inbox.h"
#include "relay/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless s is NULL or valid UTF-8 (NUL-terminated, so no NUL). */
static void
check_str(const char *s)
{
	size_t len;

	if (s == NULL)
		return;
	len = strlen(s);
	if (!ingest_utf8_valid(s, len))
		abort();
}

static void
check_msg(const struct inbox_msg *m, const char *raw, size_t len)
{
	if (m->key != NULL)
		abort();
	check_str(m->message_id);
	check_str(m->in_reply_to);
	check_str(m->references);
	check_str(m->from);
	check_str(m->subject);
	check_str(m->auto_submitted);
	check_str(m->text);
	check_str(m->envelope_id);
	check_str(m->disposition);
	check_str(m->original_message_id);
	if (m->kind != INBOX_MESSAGE && m->kind != INBOX_DSN &&
	    m->kind != INBOX_MDN)
		abort();
	if (m->nrcpts > INBOX_MAX_RCPTS || (m->nrcpts > 0 && m->rcpts == NULL))
		abort();
	for (size_t i = 0; i < m->nrcpts; i++) {
		check_str(m->rcpts[i].final_recipient);
		check_str(m->rcpts[i].action);
		check_str(m->rcpts[i].status);
		check_str(m->rcpts[i].diagnostic);
	}
	if (m->raw != NULL && (m->raw < raw || m->raw_len > len ||
	    m->raw_len > INBOX_RAW_MAX || m->raw + m->raw_len > raw + len))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct inbox_parsed p;	/* reused across runs, as drivers do */
	const char *raw;
	char err[256];
	char *copy;
	int rc;

	/* A copy of exactly size bytes: ASan sees any read past the end. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	memcpy(copy, data, size);
	raw = copy;
	err[0] = '\0';
	rc = inbox_parse(raw, size, &p, err, sizeof(err));
	if (rc == 0)
		check_msg(&p.msg, raw, size);
	else if (rc != -1 || size > 0 || err[0] == '\0')
		abort();
	inbox_parsed_free(&p);
	free(copy);
	return 0;
}
