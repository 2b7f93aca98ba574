/*
 * code.c - confirmation codes and the relay secret (DESIGN.md,
 * "Confirmation").
 *
 * A delivery's code is the first 40 bits of HMAC-SHA256 under the relay
 * secret of the length-prefixed alert id and recipient id, written as 8
 * Crockford base32 characters.  The length prefixes make the encoding
 * injective: ("ab", "c") and ("a", "bc") give different codes.
 *
 * Owned state: none between calls, but a struct code_mac (one key set up
 * for the codes of many recipients) that its caller frees.  The secret file (one key per line, 64
 * hex digits, current key first) is created here once and never
 * overwritten; key bytes are wiped from memory when a keyring is freed and
 * never appear in an error message.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "queue/queue.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char hexdigits[] = "0123456789abcdef";

/* Value of one hex digit, or -1. */
static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The key's fingerprint: the first 16 hex digits of SHA-256(key). */
static void
key_fingerprint(struct code_key *k)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(k->bytes, sizeof(k->bytes), md);
	for (size_t i = 0; i < 8; i++) {
		k->id[2 * i] = hexdigits[md[i] >> 4];
		k->id[2 * i + 1] = hexdigits[md[i] & 0xf];
	}
	k->id[16] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
}

int
code_keyring_create(const char *path, char *err, size_t errlen)
{
	unsigned char key[CODE_KEY_LEN];
	char line[2 * CODE_KEY_LEN + 1];
	ssize_t w;
	int fd, saved;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (RAND_bytes(key, sizeof(key)) != 1) {
		snprintf(err, errlen, "%s: no random bytes from OpenSSL", path);
		goto fail;
	}
	for (size_t i = 0; i < CODE_KEY_LEN; i++) {
		line[2 * i] = hexdigits[key[i] >> 4];
		line[2 * i + 1] = hexdigits[key[i] & 0xf];
	}
	line[2 * CODE_KEY_LEN] = '\n';
	OPENSSL_cleanse(key, sizeof(key));
	/* umask may have taken bits away; it never adds any, but be exact. */
	errno = 0;
	if (fchmod(fd, 0600) == -1 ||
	    (w = write(fd, line, sizeof(line))) != (ssize_t)sizeof(line) ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path,
		    errno != 0 ? strerror(errno) : "short write");
		goto fail;
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (close(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
fail:
	saved = errno;
	OPENSSL_cleanse(line, sizeof(line));
	OPENSSL_cleanse(key, sizeof(key));
	close(fd);
	unlink(path);
	errno = saved;
	return -1;
}

/* Parse one line of the secret file into *k; -1 if it is not 64 hex. */
static int
parse_key_line(const char *s, size_t len, struct code_key *k)
{
	if (len != 2 * CODE_KEY_LEN)
		return -1;
	for (size_t i = 0; i < CODE_KEY_LEN; i++) {
		int hi = hexval((unsigned char)s[2 * i]);
		int lo = hexval((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		k->bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	key_fingerprint(k);
	return 0;
}

int
code_keyring_load(const char *path, struct code_keyring *kr, char *err,
    size_t errlen)
{
	struct code_key *keys = NULL, *nk;
	size_t n = 0, cap = 0, len = 0;
	char buf[4096], *data = NULL, *p, *end;
	FILE *fp;
	int lineno = 0, rc = -1;

	memset(kr, 0, sizeof(*kr));
	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* A secret file is a few lines; refuse anything absurdly large. */
	len = fread(buf, 1, sizeof(buf), fp);
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(fp);
		goto out;
	}
	if (len == sizeof(buf)) {
		snprintf(err, errlen, "%s: too large for a secret file", path);
		fclose(fp);
		goto out;
	}
	fclose(fp);
	data = buf;
	end = buf + len;
	for (p = data; p < end; ) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end, *b = p, *e = le;

		lineno++;
		p = nl ? nl + 1 : end;
		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (b == e || *b == '#')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 4;
			if ((nk = calloc(cap, sizeof(*nk))) == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			if (n > 0)
				memcpy(nk, keys, n * sizeof(*nk));
			if (keys != NULL) {
				OPENSSL_cleanse(keys, n * sizeof(*keys));
				free(keys);
			}
			keys = nk;
		}
		if (parse_key_line(b, (size_t)(e - b), &keys[n]) == -1) {
			snprintf(err, errlen,
			    "%s:%d: not a key (expected 64 hex digits)", path,
			    lineno);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no key in the file", path);
		goto out;
	}
	kr->keys = keys;
	kr->n = n;
	keys = NULL;
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (keys != NULL) {
		OPENSSL_cleanse(keys, cap * sizeof(*keys));
		free(keys);
	}
	return rc;
}

const struct code_key *
code_keyring_find(const struct code_keyring *kr, const char *id)
{
	if (kr == NULL || id == NULL)
		return NULL;
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->keys[i].id, id) == 0)
			return &kr->keys[i];
	return NULL;
}

void
code_keyring_free(struct code_keyring *kr)
{
	if (kr == NULL)
		return;
	if (kr->keys != NULL) {
		OPENSSL_cleanse(kr->keys, kr->n * sizeof(*kr->keys));
		free(kr->keys);
	}
	kr->keys = NULL;
	kr->n = 0;
}

/* Append a 32-bit big-endian length and the bytes of s to the MAC. */
static int
mac_field(EVP_MAC_CTX *ctx, const char *s)
{
	size_t len = strlen(s);
	unsigned char pfx[4];

	pfx[0] = (unsigned char)(len >> 24);
	pfx[1] = (unsigned char)(len >> 16);
	pfx[2] = (unsigned char)(len >> 8);
	pfx[3] = (unsigned char)len;
	if (EVP_MAC_update(ctx, pfx, sizeof(pfx)) != 1)
		return -1;
	return EVP_MAC_update(ctx, (const unsigned char *)s, len) == 1 ? 0 : -1;
}

/*
 * The HMAC algorithm and SHA-256 are fetched once per process: fetching by
 * name costs more than the MAC itself, and an alert to 2,000 recipients
 * computes 2,000 codes inside one transaction.
 */
static EVP_MAC *
hmac_alg(void)
{
	static EVP_MAC *mac;

	if (mac == NULL)
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	return mac;
}

/* An HMAC context with one key set up, for many codes. */
struct code_mac {
	EVP_MAC_CTX	*ctx;
	int		 fresh;		/* initialised, not used yet */
};

/* Only out of memory or a broken OpenSSL gets here.  A wrong code would be
 * sent to a person and could never be matched: stop rather than send it. */
static void
code_mac_broken(void)
{
	fprintf(stderr, "code: HMAC-SHA256 unavailable in OpenSSL\n");
	abort();
}

struct code_mac *
code_mac_new(const struct code_key *key)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[2];
	struct code_mac *m;
	EVP_MAC *mac;

	params[0] = OSSL_PARAM_construct_utf8_string("digest", digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (mac = hmac_alg()) == NULL ||
	    (m->ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    EVP_MAC_init(m->ctx, key->bytes, sizeof(key->bytes), params) != 1)
		code_mac_broken();
	m->fresh = 1;
	return m;
}

void
code_mac_compute(struct code_mac *m, const char *alert,
    const char *recipient, char out[CODE_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	uint64_t v;
	size_t mdlen = 0;

	/* after the first code: the same key again (OpenSSL keeps it) */
	if ((!m->fresh && EVP_MAC_init(m->ctx, NULL, 0, NULL) != 1) ||
	    mac_field(m->ctx, alert) == -1 ||
	    mac_field(m->ctx, recipient) == -1 ||
	    EVP_MAC_final(m->ctx, md, &mdlen, sizeof(md)) != 1 || mdlen < 5)
		code_mac_broken();
	m->fresh = 0;
	v = (uint64_t)md[0] << 32 | (uint64_t)md[1] << 24 |
	    (uint64_t)md[2] << 16 | (uint64_t)md[3] << 8 | (uint64_t)md[4];
	for (int i = 0; i < CODE_LEN; i++)
		out[i] = crockford[(v >> (35 - 5 * i)) & 0x1f];
	out[CODE_LEN] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
}

void
code_mac_free(struct code_mac *m)
{
	if (m == NULL)
		return;
	EVP_MAC_CTX_free(m->ctx);	/* wipes the key */
	free(m);
}

void
code_compute(const struct code_key *key, const char *alert,
    const char *recipient, char out[CODE_LEN + 1])
{
	struct code_mac *m = code_mac_new(key);

	code_mac_compute(m, alert, recipient, out);
	code_mac_free(m);
}

void
code_format(const char code[CODE_LEN + 1], char out[CODE_LEN + 2])
{
	memcpy(out, code, 4);
	out[4] = '-';
	memcpy(out + 5, code + 4, 4);
	out[CODE_LEN + 1] = '\0';
}

int
code_normalise(const char *in, char out[CODE_LEN + 1])
{
	size_t n = 0;

	if (in == NULL)
		return -1;
	for (const char *p = in; *p != '\0'; p++) {
		int ch = toupper((unsigned char)*p);

		if (ch == ' ' || ch == '-' || ch == '\t')
			continue;
		if (ch == 'O')
			ch = '0';
		else if (ch == 'I' || ch == 'L')
			ch = '1';
		if (strchr(crockford, ch) == NULL || ch == '\0')
			return -1;
		if (n == CODE_LEN)
			return -1;
		out[n++] = (char)ch;
	}
	if (n != CODE_LEN)
		return -1;
	out[n] = '\0';
	return 0;
}
