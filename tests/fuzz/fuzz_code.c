/*
 * fuzz_code.c - libFuzzer target: confirmation codes as people type them
 * (code_normalise), and code_compute on arbitrary alert and recipient ids.
 *
 * Checks what queue.h promises: a normalised code is CODE_LEN characters
 * of the Crockford alphabet, normalising is idempotent, and the formatted
 * form XXXX-XXXX (and its lower case) reads back as the same code.  A code
 * computed for any alert and recipient normalises to itself.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Abort unless code is a canonical code that reads back as itself. */
static void
check_code(const char *code)
{
	char again[CODE_LEN + 1], fmt[CODE_LEN + 2];

	if (strlen(code) != CODE_LEN ||
	    strspn(code, crockford) != CODE_LEN)
		abort();
	if (code_normalise(code, again) != 0 || strcmp(again, code) != 0)
		abort();
	code_format(code, fmt);
	if (code_normalise(fmt, again) != 0 || strcmp(again, code) != 0)
		abort();
	for (char *p = fmt; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (code_normalise(fmt, again) != 0 || strcmp(again, code) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct code_key key;
	char *s, out[CODE_LEN + 1];
	size_t cut;

	if ((s = malloc(size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	/* What a person typed, up to the first NUL. */
	memset(out, 0, sizeof(out));
	if (code_normalise(s, out) == 0)
		check_code(out);

	/* The same bytes as "alert NUL recipient", under a fixed key. */
	for (int i = 0; i < CODE_KEY_LEN; i++)
		key.bytes[i] = (unsigned char)(i * 7 + 1);
	memcpy(key.id, "fuzz", 5);
	cut = strlen(s);
	code_compute(&key, s, cut < size ? s + cut + 1 : "", out);
	check_code(out);

	free(s);
	return 0;
}
