/*
 * test_code.c - confirmation codes and the secret file (queue/code.c).
 *
 * The known answer is computed twice: once here with OpenSSL's one-shot
 * HMAC() over a message built by hand and a base32 mapping written here
 * (itself checked on a hand-worked example), and once as a literal worked
 * out with Python's hmac module, so a change in either the MAC input or
 * the alphabet fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "queue/queue.h"

static char tmpdir[] = "/tmp/dengon-test-code-XXXXXX";

/* The fixed key 00 01 02 ... 1f. */
static void
fixed_key(struct code_key *k)
{
	for (int i = 0; i < CODE_KEY_LEN; i++)
		k->bytes[i] = (unsigned char)i;
	snprintf(k->id, sizeof(k->id), "test");
}

/* Crockford base32 of the first 40 bits, written independently. */
static void
b32_40(const unsigned char b[5], char out[9])
{
	static const char *alpha = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	int bit = 0;

	for (int i = 0; i < 8; i++) {
		int v = 0;

		for (int j = 0; j < 5; j++, bit++)
			v = v << 1 | ((b[bit / 8] >> (7 - bit % 8)) & 1);
		out[i] = alpha[v];
	}
	out[8] = '\0';
}

/* The code by the formula of queue.h, with HMAC() directly. */
static void
reference_code(const struct code_key *k, const char *a, const char *r,
    char out[9])
{
	unsigned char msg[512], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t la = strlen(a), lr = strlen(r), n = 0;

	assert_true(8 + la + lr <= sizeof(msg));
	msg[n++] = (unsigned char)(la >> 24);
	msg[n++] = (unsigned char)(la >> 16);
	msg[n++] = (unsigned char)(la >> 8);
	msg[n++] = (unsigned char)la;
	memcpy(msg + n, a, la);
	n += la;
	msg[n++] = (unsigned char)(lr >> 24);
	msg[n++] = (unsigned char)(lr >> 16);
	msg[n++] = (unsigned char)(lr >> 8);
	msg[n++] = (unsigned char)lr;
	memcpy(msg + n, r, lr);
	n += lr;
	assert_non_null(HMAC(EVP_sha256(), k->bytes, CODE_KEY_LEN, msg, n, md,
	    &mdlen));
	assert_int_equal(mdlen, 32);
	b32_40(md, out);
}

static void
test_base32_hand_example(void **state)
{
	/* 00000 00001 00010 00011 00100 00101 00110 00111 */
	static const unsigned char b[5] = { 0x00, 0x44, 0x32, 0x14, 0xc7 };
	/* 11111 x8: the last letter of the alphabet (no U) */
	static const unsigned char f[5] = { 0xff, 0xff, 0xff, 0xff, 0xff };
	/* 10000 10001 10010 10011 10100 10101 10110 10111 */
	static const unsigned char h[5] = { 0x84, 0x65, 0x3a, 0x56, 0xd7 };
	char out[9];

	b32_40(b, out);
	assert_string_equal(out, "01234567");
	b32_40(f, out);
	assert_string_equal(out, "ZZZZZZZZ");
	b32_40(h, out);
	assert_string_equal(out, "GHJKMNPQ");
}

static void
test_known_answer(void **state)
{
	struct code_key k;
	char got[CODE_LEN + 1], want[9];

	fixed_key(&k);
	code_compute(&k, "20261121-0042", "r0001", got);
	reference_code(&k, "20261121-0042", "r0001", want);
	assert_string_equal(got, want);
	/* Worked out with Python's hmac and hashlib. */
	assert_string_equal(got, "GB450S6W");
	for (int i = 0; i < 50; i++) {
		char a[32], r[32];

		snprintf(a, sizeof(a), "A-%d", i * 7919);
		snprintf(r, sizeof(r), "recipient.%d", i);
		code_compute(&k, a, r, got);
		reference_code(&k, a, r, want);
		assert_string_equal(got, want);
	}
}

static void
test_stable_and_distinct(void **state)
{
	struct code_key k, k2;
	char c1[CODE_LEN + 1], c2[CODE_LEN + 1];

	fixed_key(&k);
	code_compute(&k, "alert-1", "r1", c1);
	code_compute(&k, "alert-1", "r1", c2);
	assert_string_equal(c1, c2);
	code_compute(&k, "alert-2", "r1", c2);
	assert_string_not_equal(c1, c2);
	code_compute(&k, "alert-1", "r2", c2);
	assert_string_not_equal(c1, c2);
	/* The length prefix: "ab"+"c" is not "a"+"bc". */
	code_compute(&k, "ab", "c", c1);
	code_compute(&k, "a", "bc", c2);
	assert_string_not_equal(c1, c2);
	/* Another key, another code. */
	k2 = k;
	k2.bytes[0] ^= 1;
	code_compute(&k, "alert-1", "r1", c1);
	code_compute(&k2, "alert-1", "r1", c2);
	assert_string_not_equal(c1, c2);
	/* Every character is of the alphabet. */
	for (int i = 0; i < CODE_LEN; i++)
		assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ",
		    c1[i]));
	assert_int_equal(strlen(c1), CODE_LEN);
}

/* One key set up for many codes gives what code_compute() gives. */
static void
test_code_mac(void **state)
{
	struct code_key k, k2;
	struct code_mac *m, *m2;
	char got[CODE_LEN + 1], want[CODE_LEN + 1];

	fixed_key(&k);
	k2 = k;
	k2.bytes[0] ^= 1;
	m = code_mac_new(&k);
	m2 = code_mac_new(&k2);
	code_mac_compute(m, "20261121-0042", "r0001", got);
	assert_string_equal(got, "GB450S6W");
	for (int i = 0; i < 200; i++) {
		char a[32], r[32];

		snprintf(a, sizeof(a), "A-%d", i % 3);
		snprintf(r, sizeof(r), "r%d", i);
		code_mac_compute(m, a, r, got);
		code_compute(&k, a, r, want);
		assert_string_equal(got, want);
		/* two contexts side by side keep their own keys */
		code_mac_compute(m2, a, r, got);
		code_compute(&k2, a, r, want);
		assert_string_equal(got, want);
	}
	code_mac_free(m);
	code_mac_free(m2);
	code_mac_free(NULL);
}

static void
test_format(void **state)
{
	char out[CODE_LEN + 2];

	code_format("ABCDEFGH", out);
	assert_string_equal(out, "ABCD-EFGH");
	code_format("GB450S6W", out);
	assert_string_equal(out, "GB45-0S6W");
}

static void
test_normalise(void **state)
{
	char out[CODE_LEN + 1];

	assert_int_equal(code_normalise("ABCD-EFGH", out), 0);
	assert_string_equal(out, "ABCDEFGH");
	assert_int_equal(code_normalise("abcd-efgh", out), 0);
	assert_string_equal(out, "ABCDEFGH");
	assert_int_equal(code_normalise(" ab cd - ef gh ", out), 0);
	assert_string_equal(out, "ABCDEFGH");
	assert_int_equal(code_normalise("gb45-os6w", out), 0);	/* O -> 0 */
	assert_string_equal(out, "GB450S6W");
	assert_int_equal(code_normalise("IiLl-0oO1", out), 0);
	assert_string_equal(out, "11110001");
	/* Wrong length. */
	assert_int_equal(code_normalise("ABCD-EFG", out), -1);
	assert_int_equal(code_normalise("ABCD-EFGHJ", out), -1);
	assert_int_equal(code_normalise("", out), -1);
	assert_int_equal(code_normalise("--------", out), -1);
	/* U is not in the alphabet, nor punctuation or non-ASCII. */
	assert_int_equal(code_normalise("ABCD-EFGU", out), -1);
	assert_int_equal(code_normalise("abcd-efgu", out), -1);
	assert_int_equal(code_normalise("ABCD.EFGH", out), -1);
	assert_int_equal(code_normalise("ABCD_EFGH", out), -1);
	assert_int_equal(code_normalise("ABCD\xef\xbc\xa1" "EFG", out), -1);
	assert_int_equal(code_normalise(NULL, out), -1);
	/* A computed code survives format + lower case + normalise. */
	{
		struct code_key k;
		char c[CODE_LEN + 1], f[CODE_LEN + 2], n[CODE_LEN + 1];

		fixed_key(&k);
		code_compute(&k, "x", "y", c);
		code_format(c, f);
		for (char *p = f; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		assert_int_equal(code_normalise(f, n), 0);
		assert_string_equal(n, c);
	}
}

/* Write text to tmpdir/name; returns the path (static buffer). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void
test_keyring_create(void **state)
{
	struct code_keyring kr, kr2;
	char path[512], err[256], buf[256];
	struct stat sb;
	FILE *fp;
	size_t n;
	mode_t old;

	snprintf(path, sizeof(path), "%s/secret.key", tmpdir);
	old = umask(0);		/* the file must be 0600 whatever the umask */
	assert_int_equal(code_keyring_create(path, err, sizeof(err)), 0);
	umask(old);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_non_null(fp = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	assert_int_equal(n, 65);
	assert_int_equal(buf[64], '\n');
	assert_int_equal(strspn(buf, "0123456789abcdef"), 64);
	assert_int_equal(code_keyring_load(path, &kr, err, sizeof(err)), 0);
	assert_int_equal(kr.n, 1);
	/* Never overwritten: the second call says it exists. */
	assert_int_equal(code_keyring_create(path, err, sizeof(err)), 1);
	assert_int_equal(code_keyring_load(path, &kr2, err, sizeof(err)), 0);
	assert_memory_equal(kr.keys[0].bytes, kr2.keys[0].bytes,
	    CODE_KEY_LEN);
	assert_string_equal(kr.keys[0].id, kr2.keys[0].id);
	code_keyring_free(&kr);
	code_keyring_free(&kr2);
	/* A missing directory is an error, with the path. */
	snprintf(path, sizeof(path), "%s/missing/secret.key", tmpdir);
	assert_int_equal(code_keyring_create(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing/secret.key"));
}

static void
test_keyring_load_errors(void **state)
{
	static const char key[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	struct code_keyring kr;
	char err[256], text[512];
	const char *p;

	/* Bad hex on line 3: named, and the key never printed. */
	snprintf(text, sizeof(text), "# keys\n\n%.63sg\n", key);
	p = write_file("bad-hex.key", text);
	assert_int_equal(code_keyring_load(p, &kr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad-hex.key:3:"));
	assert_null(strstr(err, "0001020304"));
	assert_null(kr.keys);
	/* Wrong length. */
	snprintf(text, sizeof(text), "%s\n%.62s\n", key, key);
	p = write_file("short.key", text);
	assert_int_equal(code_keyring_load(p, &kr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "short.key:2:"));
	snprintf(text, sizeof(text), "%s00\n", key);
	p = write_file("long.key", text);
	assert_int_equal(code_keyring_load(p, &kr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "long.key:1:"));
	/* No key at all. */
	p = write_file("empty.key", "# nothing\n\n");
	assert_int_equal(code_keyring_load(p, &kr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no key"));
	/* Missing file. */
	assert_int_equal(code_keyring_load("/nonexistent/dengon.key", &kr,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dengon.key"));
	/* Comments, blank lines, CRLF and upper case are fine. */
	snprintf(text, sizeof(text), "# current\r\n  %s  \r\n", key);
	for (char *c = text; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	p = write_file("ok.key", text);
	assert_int_equal(code_keyring_load(p, &kr, err, sizeof(err)), 0);
	assert_int_equal(kr.n, 1);
	for (int i = 0; i < CODE_KEY_LEN; i++)
		assert_int_equal(kr.keys[0].bytes[i], i);
	/* The key id: first 16 hex digits of SHA-256(00 01 .. 1f). */
	assert_string_equal(kr.keys[0].id, "630dcd2966c43366");
	code_keyring_free(&kr);
}

static void
test_keyring_rotation(void **state)
{
	static const char k1[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	static const char k2[] =
	    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
	struct code_keyring kr, again;
	const struct code_key *old;
	char err[256], text[256], c_old[CODE_LEN + 1], c_cur[CODE_LEN + 1];
	struct code_key fk;
	const char *p;

	/* The new key first, the old one kept to check older alerts. */
	snprintf(text, sizeof(text), "%s\n# previous\n%s\n", k2, k1);
	p = write_file("rotated.key", text);
	assert_int_equal(code_keyring_load(p, &kr, err, sizeof(err)), 0);
	assert_int_equal(kr.n, 2);
	assert_string_not_equal(kr.keys[0].id, kr.keys[1].id);
	assert_int_equal(kr.keys[0].bytes[0], 0xff);
	/* Find the old key by the id an alert recorded. */
	assert_non_null(old = code_keyring_find(&kr, "630dcd2966c43366"));
	assert_ptr_equal(old, &kr.keys[1]);
	assert_ptr_equal(code_keyring_find(&kr, kr.keys[0].id), &kr.keys[0]);
	assert_null(code_keyring_find(&kr, "0000000000000000"));
	assert_null(code_keyring_find(&kr, NULL));
	/* An old alert's code is still the code it was sent with. */
	fixed_key(&fk);
	code_compute(&fk, "20261121-0042", "r0001", c_old);
	code_compute(old, "20261121-0042", "r0001", c_cur);
	assert_string_equal(c_old, c_cur);
	code_compute(&kr.keys[0], "20261121-0042", "r0001", c_cur);
	assert_string_not_equal(c_old, c_cur);
	/* Key ids are stable across loads. */
	assert_int_equal(code_keyring_load(p, &again, err, sizeof(err)), 0);
	assert_string_equal(again.keys[0].id, kr.keys[0].id);
	assert_string_equal(again.keys[1].id, kr.keys[1].id);
	code_keyring_free(&again);
	code_keyring_free(&kr);
	assert_null(kr.keys);
	assert_int_equal(kr.n, 0);
}

static int
setup(void **state)
{
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base32_hand_example),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_stable_and_distinct),
		cmocka_unit_test(test_code_mac),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_keyring_create),
		cmocka_unit_test(test_keyring_load_errors),
		cmocka_unit_test(test_keyring_rotation),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
