/*
 * test_fax.c - the pure parts of the fax driver (channels/fax.h): dial
 * strings from E.164 numbers, the HylaFAX reply reader, the job parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "channels/fax.h"

static void
test_dial_string(void **state)
{
	char d[64];

	assert_int_equal(fax_dial_string("+81312345678", "81", "010", d,
	    sizeof(d)), 0);
	assert_string_equal(d, "0312345678");
	assert_int_equal(fax_dial_string("+14155550100", "81", "010", d,
	    sizeof(d)), 0);
	assert_string_equal(d, "01014155550100");
	/* nothing but digits ever reaches a dial string */
	assert_int_equal(fax_dial_string("+81312;ATH", "81", "010", d,
	    sizeof(d)), -1);
	assert_int_equal(fax_dial_string("0312345678", "81", "010", d,
	    sizeof(d)), -1);
	assert_int_equal(fax_dial_string("+8131234567\r", "81", "010", d,
	    sizeof(d)), -1);
	assert_int_equal(fax_dial_string("+", "81", "010", d, sizeof(d)), -1);
	assert_int_equal(fax_dial_string("+1234567890123456", "81", "010", d,
	    sizeof(d)), -1);
	assert_int_equal(fax_dial_string(NULL, "81", "010", d, sizeof(d)), -1);
	assert_int_equal(fax_dial_string("+81312345678", "81", "010", d, 5),
	    -1);
}

/* Feed s into a reader buffer; take one reply. */
static int
take(const char *s, char *buf, size_t *len, char *reply, int *code)
{
	char err[128];

	memcpy(buf + *len, s, strlen(s));
	*len += strlen(s);
	return fax_reply_take(buf, len, reply, 1024, code, err, sizeof(err));
}

static void
test_reply_take(void **state)
{
	char buf[2048], reply[1024];
	size_t len = 0;
	int code = 0;

	/* incomplete: nothing consumed */
	assert_int_equal(take("220 vm server ready", buf, &len, reply, &code),
	    0);
	assert_int_equal(len, 19);
	assert_int_equal(take(".\r\n331 Pass", buf, &len, reply, &code), 1);
	assert_int_equal(code, 220);
	assert_string_equal(reply, "220 vm server ready.");
	assert_int_equal(len, 8);		/* the next one waits */
	len = 0;
	/* multi-line, with a bare LF inside a line (a status text) */
	assert_int_equal(take("217-Job state: jobid 7\r\n    STATE: FAILED\r\n"
	    "    STATUS: Document is not valid TIFF\\\n(format)\r\n"
	    "217 End of job 7 state.\r\n", buf, &len, reply, &code), 1);
	assert_int_equal(code, 217);
	assert_int_equal(len, 0);
	assert_non_null(strstr(reply, "STATUS: Document is not valid TIFF\\ "
	    "(format)\n217 End"));
	/* another code inside a multi-line reply does not end it */
	assert_int_equal(take("150-a\r\n226 b\r\n150 c\r\n", buf, &len, reply,
	    &code), 1);
	assert_int_equal(code, 150);
	assert_string_equal(reply, "150-a\n226 b\n150 c");
	/* not a reply */
	len = 0;
	assert_int_equal(take("hello\r\n", buf, &len, reply, &code), -1);
	len = 0;
	assert_int_equal(take("999 no\r\n", buf, &len, reply, &code), -1);
}

static void
test_job_parse(void **state)
{
	struct fax_job j;

	assert_int_equal(fax_job_parse("217-Job state: jobid 3\n"
	    "    STATE: DONE\n    NPAGES: 2\n    TOTPAGES: 2\n"
	    "    TOTDIALS: 1\n    TOTTRIES: 1\n    STATUSCODE: 0\n"
	    "    STATUS: \n217 End of job 3 state.", &j), 1);
	assert_string_equal(j.state, "DONE");
	assert_int_equal(j.pages, 2);
	assert_int_equal(j.total, 2);
	assert_int_equal(j.dials, 1);
	assert_int_equal(j.tries, 1);
	assert_string_equal(j.status, "");
	assert_int_equal(fax_job_parse("217-x\n    STATE: FAILED\n"
	    "    NPAGES: -4\n    STATUS: Busy signal detected\n217 End", &j), 1);
	assert_string_equal(j.state, "FAILED");
	assert_int_equal(j.pages, 0);		/* never negative */
	assert_string_equal(j.status, "Busy signal detected");
	/* NPAGESX is not NPAGES */
	assert_int_equal(fax_job_parse("    NPAGESX: 9\n    STATE: ACTIVE",
	    &j), 1);
	assert_int_equal(j.pages, 0);
	assert_int_equal(fax_job_parse("213 SUSPENDED", &j), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dial_string),
		cmocka_unit_test(test_reply_take),
		cmocka_unit_test(test_job_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
