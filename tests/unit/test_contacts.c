/*
 * test_contacts.c - the contact directory reader (conf/contacts.c).
 *
 * Every test asserts the exact result and the exact "FILE:LINE: message"
 * lines, so a change of behaviour, of a line number or of a column name
 * fails here.  CP932 input is made with iconv(3) or written as bytes;
 * contacts_check() gets a struct conf built by hand, not by conf_load().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

static struct conf_msgs msgs;
static struct contact_list list;

static int
teardown(void **state)
{
	conf_msgs_free(&msgs);
	contacts_free(&list);
	return 0;
}

/* Parse len bytes of csv as "t.csv" with country code cc. */
static int
parse_len(const char *csv, size_t len, enum contacts_encoding enc,
    const char *cc)
{
	conf_msgs_free(&msgs);
	contacts_free(&list);
	return contacts_parse("t.csv", csv, len, enc, cc, &list, &msgs);
}

static int
parse(const char *csv)
{
	return parse_len(csv, strlen(csv), CONTACTS_ENC_AUTO, "81");
}

static int
parse_enc(const char *csv, enum contacts_encoding enc)
{
	return parse_len(csv, strlen(csv), enc, "81");
}

/* The messages must be exactly the NULL-terminated list given. */
static void
expect_msgs(const char *first, ...)
{
	const char *want[64];
	size_t n = 0;
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s != NULL && n < 64;
	    s = va_arg(ap, const char *))
		want[n++] = s;
	va_end(ap);
	if (msgs.n != n) {
		for (size_t i = 0; i < msgs.n; i++)
			print_message("got: %s\n", msgs.v[i]);
	}
	assert_int_equal(msgs.n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(msgs.v[i], want[i]);
}

/* A failed parse leaves the list empty. */
static void
expect_empty(void)
{
	assert_null(list.v);
	assert_int_equal(list.n, 0);
}

/* ---- encodings ---------------------------------------------------------- */

static void
test_utf8_japanese(void **state)
{
	assert_int_equal(parse(
	    "id,name,org,groups,mail,lgwan,fax,sms,policy\n"
	    "r001,山田 太郎,関東総合通信局,関東;放送,Taro.Yamada@Example.JP,"
	    "yamada@City.Example.LG.JP,03-1234-5678,090-1234-5678,standard\n"
	    "r002, 鈴木 花子 ,東京水道,,hanako@example.jp,,,+81 90 2222 3333,\n"),
	    0);
	expect_msgs(NULL);
	assert_int_equal(list.n, 2);
	assert_string_equal(list.v[0].id, "r001");
	assert_string_equal(list.v[0].name, "山田 太郎");
	assert_string_equal(list.v[0].org, "関東総合通信局");
	assert_string_equal(list.v[0].groups, "関東;放送");
	assert_string_equal(list.v[0].mail, "Taro.Yamada@example.jp");
	assert_string_equal(list.v[0].lgwan, "yamada@city.example.lg.jp");
	assert_string_equal(list.v[0].fax, "+81312345678");
	assert_string_equal(list.v[0].sms, "+819012345678");
	assert_string_equal(list.v[0].policy, "standard");
	assert_int_equal(list.v[0].line, 2);
	assert_string_equal(list.v[1].name, "鈴木 花子");
	assert_null(list.v[1].groups);
	assert_null(list.v[1].lgwan);
	assert_null(list.v[1].fax);
	assert_string_equal(list.v[1].sms, "+819022223333");
	assert_null(list.v[1].policy);
	assert_int_equal(list.v[1].line, 3);
}

static void
test_bom(void **state)
{
	const char *csv = "\xEF\xBB\xBFid,name,mail,fax\r\n"
	    "r1,佐藤,a@example.jp,0312345678\r\n";

	assert_int_equal(parse(csv), 0);
	expect_msgs(NULL);
	assert_int_equal(list.n, 1);
	assert_string_equal(list.v[0].id, "r1");
	assert_string_equal(list.v[0].name, "佐藤");
	assert_int_equal(parse_enc(csv, CONTACTS_ENC_UTF8), 0);
	assert_string_equal(list.v[0].id, "r1");

	/* A BOM says UTF-8: no second guess as CP932. */
	assert_int_equal(parse("\xEF\xBB\xBFid,name\nr1,\x8E\x52\x93\x63\n"),
	    -1);
	expect_msgs("t.csv:2: invalid UTF-8 (byte 0x8E) in a file that starts "
	    "with a UTF-8 byte order mark", NULL);
	expect_empty();
}

static void
test_cp932_bytes(void **state)
{
	/* "山田" in CP932 is 8E 52 93 63. */
	const char *csv = "id,name,mail,fax\n"
	    "r1,\x8E\x52\x93\x63,a@example.jp,03-1234-5678\n";

	assert_int_equal(parse_enc(csv, CONTACTS_ENC_CP932), 0);
	expect_msgs(NULL);
	assert_string_equal(list.v[0].name, "山田");
	assert_int_equal(parse_enc(csv, CONTACTS_ENC_AUTO), 0);
	assert_string_equal(list.v[0].name, "山田");

	assert_int_equal(parse_enc(csv, CONTACTS_ENC_UTF8), -1);
	expect_msgs("t.csv:2: invalid UTF-8 (byte 0x8E); is the file CP932 "
	    "(--encoding cp932)?", NULL);
	expect_empty();

	assert_int_equal(parse_enc("id,name\nr1,a\nr2,\x80\n",
	    CONTACTS_ENC_CP932), -1);
	expect_msgs("t.csv:3: invalid CP932 (byte 0x80)", NULL);
}

/* Convert UTF-8 to CP932 as Excel would have written it. */
static size_t
to_cp932(const char *in, char *out, size_t outlen)
{
	iconv_t cd = iconv_open("CP932", "UTF-8");
	char *ip = (char *)(uintptr_t)in, *op = out;
	size_t il = strlen(in), ol = outlen;

	assert_true(cd != (iconv_t)-1);
	assert_true(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
	iconv_close(cd);
	return outlen - ol;
}

static void
test_cp932_iconv(void **state)
{
	char buf[1024];
	size_t n = to_cp932(
	    "id,name,org,groups,fax,sms\r\n"
	    "k01,山田 太郎,関東総合通信局,関東;放送局,０３－１２３４－５６７８,"
	    "０９０ー１２３４ー５６７８\r\n"
	    "k02,\"髙橋, 一郎\",株式会社ｶﾝﾄｳ放送,,03-1111-2222,090-3333-4444\r\n",
	    buf, sizeof(buf));

	assert_int_equal(parse_len(buf, n, CONTACTS_ENC_AUTO, "81"), 0);
	expect_msgs(NULL);
	assert_int_equal(list.n, 2);
	assert_string_equal(list.v[0].name, "山田 太郎");
	assert_string_equal(list.v[0].org, "関東総合通信局");
	assert_string_equal(list.v[0].groups, "関東;放送局");
	assert_string_equal(list.v[0].fax, "+81312345678");
	assert_string_equal(list.v[0].sms, "+819012345678");
	assert_string_equal(list.v[1].name, "髙橋, 一郎");
	assert_string_equal(list.v[1].org, "株式会社ｶﾝﾄｳ放送");
	assert_int_equal(list.v[1].line, 3);
}

static void
test_auto_neither(void **state)
{
	assert_int_equal(parse("id,name\nr1,a\nr2,b\xFF\n"), -1);
	expect_msgs("t.csv:3: neither UTF-8 nor CP932 (byte 0xFF)", NULL);
	expect_empty();

	/* Line 2 is good CP932 but not UTF-8; line 3 is neither. */
	assert_int_equal(parse("id,name\nr1,\x8E\x52\nr2,\xFF\n"), -1);
	expect_msgs("t.csv:3: neither UTF-8 nor CP932 (byte 0xFF; the first "
	    "byte that is not UTF-8 is on line 2)", NULL);

	/* Overlong and surrogate forms are not UTF-8 either. */
	assert_int_equal(parse_enc("id,name\nr1,\xC0\xAF\n",
	    CONTACTS_ENC_UTF8), -1);
	expect_msgs("t.csv:2: invalid UTF-8 (byte 0xC0); is the file CP932 "
	    "(--encoding cp932)?", NULL);
	assert_int_equal(parse_enc("id,name\n\nr1,\xED\xA0\x80\n",
	    CONTACTS_ENC_UTF8), -1);
	expect_msgs("t.csv:3: invalid UTF-8 (byte 0xED); is the file CP932 "
	    "(--encoding cp932)?", NULL);
}

static void
test_encoding_parse(void **state)
{
	enum contacts_encoding e;

	assert_int_equal(contacts_encoding_parse("utf-8", &e), 0);
	assert_int_equal(e, CONTACTS_ENC_UTF8);
	assert_int_equal(contacts_encoding_parse("UTF8", &e), 0);
	assert_int_equal(e, CONTACTS_ENC_UTF8);
	assert_int_equal(contacts_encoding_parse("cp932", &e), 0);
	assert_int_equal(e, CONTACTS_ENC_CP932);
	assert_int_equal(contacts_encoding_parse("Shift_JIS", &e), 0);
	assert_int_equal(e, CONTACTS_ENC_CP932);
	assert_int_equal(contacts_encoding_parse("sjis", &e), 0);
	assert_int_equal(e, CONTACTS_ENC_CP932);
	assert_int_equal(contacts_encoding_parse("auto", &e), 0);
	assert_int_equal(e, CONTACTS_ENC_AUTO);
	assert_int_equal(contacts_encoding_parse("euc-jp", &e), -1);
	assert_int_equal(contacts_encoding_parse("", &e), -1);
}

/* ---- RFC 4180 ----------------------------------------------------------- */

static void
test_quoting(void **state)
{
	assert_int_equal(parse(
	    "id,name,org,mail,sms\r\n"
	    "r1,\"Yamada, Taro\",\"The \"\"Water\"\" Board\",a@example.jp,"
	    "09012345678\r\n"
	    "r2,  \"  Sato  \"  ,\"\",b@example.jp,\"090-1234-5678\"\r\n"), 0);
	expect_msgs(NULL);
	assert_int_equal(list.n, 2);
	assert_string_equal(list.v[0].name, "Yamada, Taro");
	assert_string_equal(list.v[0].org, "The \"Water\" Board");
	assert_string_equal(list.v[1].name, "Sato");
	assert_null(list.v[1].org);
	assert_string_equal(list.v[1].sms, "+819012345678");
}

static void
test_multiline_field(void **state)
{
	assert_int_equal(parse(
	    "id,name,mail,sms\n"
	    "r1,\"Yamada\nTaro\",a@example.jp,09012345678\n"
	    "r2,Sato,b@example.jp,09012345678\n"
	    "r 3,Ito,c@example.jp,09012345678\n"), -1);
	expect_msgs(
	    "t.csv:2: column 'name': contains a line break ('Yamada\\nTaro')",
	    "t.csv:5: column 'id': is not 1-64 of A-Z a-z 0-9 . _ - ('r 3')",
	    NULL);
	expect_empty();
}

static void
test_header_injection(void **state)
{
	assert_int_equal(parse(
	    "id,name,mail,sms\r\n"
	    "r1,Yamada,\"a@b.jp\r\nBcc: x@y\",09012345678\r\n"
	    "r2,Sato,b@example.jp,\"0901234\r\n5678\"\r\n"
	    "r3,Ito,c@example.jp,090;1234\r\n"), -1);
	expect_msgs(
	    "t.csv:2: column 'mail': contains a line break "
	    "('a@b.jp\\r\\nBcc: x@y')",
	    "t.csv:4: column 'sms': contains AT-command characters "
	    "('0901234\\r\\n5678')",
	    "t.csv:6: column 'sms': contains AT-command characters "
	    "('090;1234')",
	    NULL);
	expect_empty();
}

static void
test_unterminated_quote(void **state)
{
	assert_int_equal(parse(
	    "id,name,mail,sms\n"
	    "r1,A,a@example.jp,09012345678\n"
	    "r2,\"B,b@example.jp,09012345678\n"
	    "r3,C,c@example.jp,09012345678\n"), -1);
	expect_msgs("t.csv:3: unterminated quoted field (a '\"' is missing)",
	    NULL);
	expect_empty();
}

static void
test_stray_quotes(void **state)
{
	assert_int_equal(parse(
	    "id,name,mail,sms\n"
	    "r1,Ya\"mada,a@example.jp,09012345678\n"
	    "r2,\"Sato\"x,b@example.jp,09012345678\n"
	    "r3,C\rD,c@example.jp,09012345678\n"
	    "r/4,D,d@example.jp,09012345678\n"), -1);
	expect_msgs(
	    "t.csv:2: a '\"' inside an unquoted field (quote the whole field "
	    "and double the '\"')",
	    "t.csv:3: text after the closing '\"' of a quoted field",
	    "t.csv:4: a carriage return without a line feed (line ends must "
	    "be CRLF or LF)",
	    "t.csv:5: column 'id': is not 1-64 of A-Z a-z 0-9 . _ - ('r/4')",
	    NULL);
}

static void
test_blank_rows(void **state)
{
	/* Blank lines, lines of spaces and Excel's ",,," rows are skipped;
	 * the last row has no line end. */
	assert_int_equal(parse(
	    "\n"
	    "id,name,mail,sms\n"
	    "\n"
	    "r1,A,a@example.jp,09012345678\n"
	    ",,,\n"
	    "   \n"
	    "r2,B,b@example.jp,09012345678"), 0);
	expect_msgs(NULL);
	assert_int_equal(list.n, 2);
	assert_int_equal(list.v[0].line, 4);
	assert_int_equal(list.v[1].line, 7);
}

static void
test_field_count(void **state)
{
	assert_int_equal(parse(
	    "id,name,mail,sms\n"
	    "r1,A,a@example.jp\n"
	    "r2,B,b@example.jp,09012345678,extra\n"
	    "r3,C,c@example.jp,09012345678\n"), -1);
	expect_msgs("t.csv:2: the row has 3 fields, the header has 4",
	    "t.csv:3: the row has 5 fields, the header has 4", NULL);
	expect_empty();
}

/* ---- the header --------------------------------------------------------- */

static void
test_header(void **state)
{
	assert_int_equal(parse("id,name,email,Phone\nr1,A,a@example.jp,1\n"),
	    -1);
	expect_msgs("t.csv:1: unknown column 'email' (known: id, name, org, "
	    "groups, mail, lgwan, fax, sms, policy, relay)",
	    "t.csv:1: unknown column 'Phone' (known: id, name, org, groups, "
	    "mail, lgwan, fax, sms, policy, relay)", NULL);
	expect_empty();

	assert_int_equal(parse(" ID , Name ,MAIL,mail\n"), -1);
	expect_msgs("t.csv:1: duplicate column 'mail' (columns 3 and 4)", NULL);

	assert_int_equal(parse("name,mail\nA,a@example.jp\n"), -1);
	expect_msgs("t.csv:1: missing required column 'id'", NULL);

	assert_int_equal(parse("\n\nmail,id,\n"), -1);
	expect_msgs("t.csv:3: column 3 of the header has no name",
	    "t.csv:3: missing required column 'name'", NULL);

	/* relay (later) is accepted and ignored. */
	assert_int_equal(parse("Relay,NAME,Id,mail,sms\n"
	    "anything at all,A,r1,a@example.jp,09012345678\n"), 0);
	expect_msgs(NULL);
	assert_string_equal(list.v[0].id, "r1");
	assert_string_equal(list.v[0].name, "A");
}

static void
test_empty(void **state)
{
	assert_int_equal(parse("id,name\r\n"), 0);
	expect_msgs("t.csv:1: warning: no recipients: the directory is empty",
	    NULL);
	assert_int_equal(list.n, 0);

	assert_int_equal(parse(""), -1);
	expect_msgs("t.csv: no header row: the first line names the columns "
	    "(id,name,...)", NULL);
	assert_int_equal(parse("\xEF\xBB\xBF\n\n"), -1);
	expect_msgs("t.csv: no header row: the first line names the columns "
	    "(id,name,...)", NULL);
}

/* ---- rows --------------------------------------------------------------- */

static void
test_every_rejection(void **state)
{
	assert_int_equal(parse(
	    "id,name,mail,fax,sms,policy,groups\n"
	    "r1,A,a@example.jp,03-1234-5678,,,\n"
	    "r1,B,b@example.jp,03-1234-5678,,,\n"
	    "r/3,C,c@example.jp,03-1234-5678,,,\n"
	    "r4,,d@example.jp,03-1234-5678,,,\n"
	    "r5,E,e.example.jp,03-1234-5678,,,\n"
	    "r6,F,Yamada <f@example.jp>,03-1234-5678,,,\n"
	    "r7,G,g@example.jp,03-1234-5678;ATH,,,\n"
	    "r8,H,h@example.jp,,+++,,\n"
	    "r9,I,i@example.jp,03-CALL-NOW,,,\n"
	    "r10,J,j@example.jp,ATD0312345678,,,\n"
	    "r11,K,k@example.jp,03-1234,,,\n"
	    "r12,L,l@example.jp,+1234567890123456,,,\n"
	    "r13,M,m@example.jp,03-1234-5678,,gold!,\n"
	    "r14,N,n@example.jp,03-1234-5678,,,a:b\n"
	    "r15,O,o@example.jp\n"
	    "bad id,,not-an-address,+++,12345,,\n"
	    "r17,Q,q@example.jp,03-1234-5678,,,\n"), -1);
	expect_msgs(
	    "t.csv:3: column 'id': duplicate id 'r1' (first on line 2)",
	    "t.csv:4: column 'id': is not 1-64 of A-Z a-z 0-9 . _ - ('r/3')",
	    "t.csv:5: column 'name': is empty (every recipient needs a name)",
	    "t.csv:6: column 'mail': has no '@' ('e.example.jp')",
	    "t.csv:7: column 'mail': display names are not allowed: give the "
	    "bare address (user@example.jp) ('Yamada <f@example.jp>')",
	    "t.csv:8: column 'fax': contains AT-command characters "
	    "('03-1234-5678;ATH')",
	    "t.csv:9: column 'sms': contains AT-command characters ('+++')",
	    "t.csv:10: column 'fax': contains letters ('03-CALL-NOW')",
	    "t.csv:11: column 'fax': contains letters ('ATD0312345678')",
	    "t.csv:12: column 'fax': is too short (E.164 numbers have 8 to 15 "
	    "digits) ('03-1234')",
	    "t.csv:13: column 'fax': is too long (E.164 numbers have at most "
	    "15 digits) ('+1234567890123456')",
	    "t.csv:14: column 'policy': is not 1-32 of A-Z a-z 0-9 _ - "
	    "('gold!')",
	    "t.csv:15: column 'groups': group names may not contain ',' or ':' "
	    "('a:b')",
	    "t.csv:16: the row has 3 fields, the header has 7",
	    "t.csv:17: column 'id': is not 1-64 of A-Z a-z 0-9 . _ - "
	    "('bad id')",
	    "t.csv:17: column 'name': is empty (every recipient needs a name)",
	    "t.csv:17: column 'mail': has no '@' ('not-an-address')",
	    "t.csv:17: column 'fax': contains AT-command characters ('+++')",
	    "t.csv:17: column 'sms': is neither national (a leading 0) nor "
	    "international ('+' and the country code) ('12345')",
	    NULL);
	expect_empty();
}

static void
test_control_characters(void **state)
{
	static const char csv[] = "id,name,org,sms\n"
	    "r1,A\tB,x,09012345678\n"
	    "r2,B,a\0b,09012345678\n"
	    "r3,C\xC2\x85,x,09012345678\n"
	    "r4,D\x1B[2J,x,090\t1234\n"
	    "r5,\"E\x7F\",x,09012345678\n";

	assert_int_equal(parse_len(csv, sizeof(csv) - 1, CONTACTS_ENC_UTF8,
	    "81"), -1);
	expect_msgs(
	    "t.csv:2: column 'name': contains a tab ('A\\tB')",
	    "t.csv:3: column 'org': contains a NUL byte ('a\\x00b')",
	    "t.csv:4: column 'name': contains a control character "
	    "('C\\u0085')",
	    "t.csv:5: column 'name': contains a control character "
	    "('D\\x1B[2J')",
	    "t.csv:5: column 'sms': contains AT-command characters "
	    "('090\\t1234')",
	    "t.csv:6: column 'name': contains a control character ('E\\x7F')",
	    NULL);
	expect_empty();
}

static void
test_groups(void **state)
{
	char g64[3 * 64 + 1], a65[66], csv[1024];
	int i;

	assert_int_equal(parse("id,name,groups,mail,sms\n"
	    "r1,A, 関東 ; 放送局 ;;関東; Kanto Water ;,a@example.jp,09012345678\n"
	    "r2,B, ; ,b@example.jp,09012345678\n"), 0);
	expect_msgs(NULL);
	assert_string_equal(list.v[0].groups, "関東;放送局;Kanto Water");
	assert_null(list.v[1].groups);

	/* 64 code points is the limit, whatever the bytes. */
	for (i = 0; i < 64; i++)
		memcpy(g64 + 3 * i, "関", 3);
	g64[3 * 64] = '\0';
	memset(a65, 'a', 65);
	a65[65] = '\0';
	snprintf(csv, sizeof(csv), "id,name,groups,mail,sms\n"
	    "r1,A,関東；放送局,a@example.jp,09012345678\n"
	    "r2,B,\"ok;x,y\",b@example.jp,09012345678\n"
	    "r3,C,%s;ok,c@example.jp,09012345678\n"
	    "r4,D,ok;%s,c@example.jp,09012345678\n", g64, a65);
	assert_int_equal(parse(csv), -1);
	expect_msgs(
	    "t.csv:2: column 'groups': a group name contains a full-width "
	    "'；', '：' or '，' (separate groups with ';') ('関東；放送局')",
	    "t.csv:3: column 'groups': group names may not contain ',' or ':' "
	    "('x,y')",
	    "t.csv:5: column 'groups': a group name is longer than 64 "
	    "characters ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa...')",
	    NULL);
}

static void
test_fewer_than_two_means(void **state)
{
	assert_int_equal(parse("id,name,mail,lgwan,fax,sms\n"
	    "r1,A,a@example.jp,,,\n"
	    "r2,B,,,,\n"
	    "r3,C,c@example.jp,,,090-1234-5678\n"
	    "r4,D,,d@city.lg.jp,,\n"), 0);
	expect_msgs(
	    "t.csv:2: warning: recipient 'r1' has only one contact means "
	    "(mail); the sector rule is two or more",
	    "t.csv:3: warning: recipient 'r2' has no contact means; the sector "
	    "rule is two or more",
	    "t.csv:5: warning: recipient 'r4' has only one contact means "
	    "(lgwan); the sector rule is two or more",
	    NULL);
	assert_int_equal(msgs.errors, 0);
	assert_int_equal(msgs.warnings, 3);
	assert_int_equal(list.n, 4);
}

static void
test_id_case(void **state)
{
	assert_int_equal(parse("id,name,mail,sms\n"
	    "r1,A,a@example.jp,09012345678\n"
	    "R1,B,b@example.jp,09012345678\n"), 0);
	expect_msgs("t.csv:3: warning: column 'id': 'R1' differs only in case "
	    "from 'r1' on line 2", NULL);
	assert_int_equal(list.n, 2);
}

static void
test_national_without_country_code(void **state)
{
	const char *csv = "id,name,mail,fax\n"
	    "r1,A,a@example.jp,03-1234-5678\n"
	    "r2,B,b@example.jp,+81 3 1234 5678\n";

	assert_int_equal(parse_len(csv, strlen(csv), CONTACTS_ENC_AUTO, NULL),
	    -1);
	expect_msgs("t.csv:2: column 'fax': is a national number (a leading 0) "
	    "but no country_code is configured ('03-1234-5678')", NULL);
}

static void
test_many_rows(void **state)
{
	size_t cap = 64 * 20001, o = 0;
	char *csv = malloc(cap);

	assert_non_null(csv);
	o += (size_t)snprintf(csv + o, cap - o, "id,name,mail,sms\n");
	for (int i = 1; i <= 20000; i++)
		o += (size_t)snprintf(csv + o, cap - o,
		    "r%05d,Name %d,u%d@example.jp,090-%04d-%04d\n", i, i, i,
		    i / 10000, i % 10000);
	assert_int_equal(parse_len(csv, o, CONTACTS_ENC_AUTO, "81"), 0);
	expect_msgs(NULL);
	assert_int_equal(list.n, 20000);
	assert_string_equal(list.v[19999].id, "r20000");
	assert_string_equal(list.v[19999].sms, "+819000020000");
	assert_int_equal(list.v[19999].line, 20001);

	o += (size_t)snprintf(csv + o, cap - o,
	    "r00001,Again,x@example.jp,090-1234-5678\n");
	assert_int_equal(parse_len(csv, o, CONTACTS_ENC_AUTO, "81"), -1);
	expect_msgs("t.csv:20002: column 'id': duplicate id 'r00001' (first on "
	    "line 2)", NULL);
	expect_empty();
	free(csv);
}

/* ---- the validators ----------------------------------------------------- */

#define AT	"contains AT-command characters"

struct phone_case {
	const char	*in;
	const char	*cc;
	const char	*want;		/* E.164, or NULL */
	const char	*why;		/* the reason, when want is NULL */
};

static void
test_phone_table(void **state)
{
	static const struct phone_case t[] = {
		{ "03-1234-5678", "81", "+81312345678", NULL },
		{ "0312345678", "81", "+81312345678", NULL },
		{ "+81 3 1234 5678", "81", "+81312345678", NULL },
		{ "+81-3-1234-5678", "1", "+81312345678", NULL },
		{ "０３－１２３４－５６７８", "81", "+81312345678", NULL },
		{ "０３ー１２３４ー５６７８", "81", "+81312345678", NULL },
		{ "03‐1234‐5678", "81", "+81312345678", NULL },
		{ "03−1234−5678", "81", "+81312345678", NULL },
		{ "03―1234―5678", "81", "+81312345678", NULL },
		{ "03　1234　5678", "81", "+81312345678", NULL },
		{ "＋８１ ３ １２３４ ５６７８", "81", "+81312345678", NULL },
		{ "090-1234-5678", "81", "+819012345678", NULL },
		{ " 090 1234 5678 ", "81", "+819012345678", NULL },
		{ "0212-555-0100", "1", "+12125550100", NULL },
		{ "+1 212 555 0100", "81", "+12125550100", NULL },
		{ "0312345678", "+81", "+81312345678", NULL },
		{ "+12345678", "81", "+12345678", NULL },
		{ "+123456789012345", "81", "+123456789012345", NULL },

		{ "03-1234-5678;", "81", NULL, AT },
		{ "+++", "81", NULL, AT },
		{ "+81+312345678", "81", NULL, AT },
		{ "0312345678*", "81", NULL, AT },
		{ "#31#0312345678", "81", NULL, AT },
		{ "0312345678,,1", "81", NULL, AT },
		{ "0312\"345678", "81", NULL, AT },
		{ "0312345678\r", "81", NULL, AT },
		{ "0312345678\nATH", "81", NULL, AT },
		{ "ATD0312345678", "81", NULL, "contains letters" },
		{ "03-ABCD-5678", "81", NULL, "contains letters" },
		{ "０３ＡＢ", "81", NULL, "contains letters" },
		{ "(03) 1234-5678", "81", NULL, "contains parentheses (write "
		    "03-1234-5678 or +81 3 1234 5678)" },
		{ "03.1234.5678", "81", NULL, "contains characters other than "
		    "digits, '+', spaces and hyphens" },
		{ "内線123", "81", NULL, "contains characters other than digits, "
		    "'+', spaces and hyphens" },
		{ "\xFF", "81", NULL, "is not valid UTF-8" },
		{ "", "81", NULL, "has no digits" },
		{ " - - ", "81", NULL, "has no digits" },
		{ "+", "81", NULL, "has no digits" },
		{ "1234", "81", NULL, "is neither national (a leading 0) nor "
		    "international ('+' and the country code)" },
		{ "0312", "81", NULL, "is too short (E.164 numbers have 8 to 15 "
		    "digits)" },
		{ "0", "81", NULL, "is too short (E.164 numbers have 8 to 15 "
		    "digits)" },
		{ "+1234567", "81", NULL, "is too short (E.164 numbers have 8 to "
		    "15 digits)" },
		{ "+1234567890123456", "81", NULL, "is too long (E.164 numbers "
		    "have at most 15 digits)" },
		{ "0123456789012345678901234567890", "81", NULL, "is too long "
		    "(E.164 numbers have at most 15 digits)" },
		{ "+0312345678", "81", NULL, "has a 0 after the '+' (a country "
		    "code never starts with 0)" },
		{ "00441234567890", "81", NULL, "starts with the international "
		    "prefix 00: write '+' and the country code instead" },
		{ "010-44-20-7946-0000", "81", NULL, "starts with the "
		    "international prefix 010: write '+' and the country code "
		    "instead" },
		{ "03-1234-5678", NULL, NULL, "is a national number (a leading "
		    "0) but no country_code is configured" },
		{ "03-1234-5678", "", NULL, "is a national number (a leading "
		    "0) but no country_code is configured" },
		{ "03-1234-5678", "0081", NULL, "cannot be made international: "
		    "country_code is not 1-3 digits" },
		{ "03-1234-5678", "8a", NULL, "cannot be made international: "
		    "country_code is not 1-3 digits" },
	};
	char out[32];
	const char *why;
	int rc;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		why = NULL;
		out[0] = '\0';
		rc = contacts_normalise_phone(t[i].in, t[i].cc, out,
		    sizeof(out), &why);
		if (rc != (t[i].want ? 0 : -1))
			print_message("case %zu '%s': %s\n", i, t[i].in,
			    rc == 0 ? out : why);
		if (t[i].want != NULL) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, t[i].want);
		} else {
			assert_int_equal(rc, -1);
			assert_string_equal(why, t[i].why);
		}
	}
	assert_int_equal(contacts_normalise_phone("03-1234-5678", "81", out,
	    12, &why), -1);
	assert_string_equal(why, "does not fit the output buffer");
	assert_int_equal(contacts_normalise_phone("03-1234-5678", "81", out,
	    13, &why), 0);
	assert_string_equal(out, "+81312345678");
}

static void
test_address_table(void **state)
{
	static const char *good[] = {
		"user@example.jp",
		"first.last+tag@sub.example.lg.jp",
		"a!#$%&'*+-/=?^_`{|}~@example.jp",
		"x@a-b.example.jp",
		"X@EXAMPLE.JP",
	};
	static const struct { const char *in, *why; } bad[] = {
		{ "", "is empty" },
		{ "Yamada <y@example.jp>", "display names are not allowed: give "
		    "the bare address (user@example.jp)" },
		{ "<y@example.jp>", "display names are not allowed: give the "
		    "bare address (user@example.jp)" },
		{ "\"a b\"@example.jp", "quoted local parts are not allowed" },
		{ "a@b.jp\r\nBcc: x@y", "contains a line break" },
		{ "a@b.jp\n", "contains a line break" },
		{ "a @example.jp", "contains a space" },
		{ "a\t@example.jp", "contains a control character" },
		{ "山田@example.jp", "contains non-ASCII characters (full-width "
		    "or internationalised)" },
		{ "a＠example.jp", "contains non-ASCII characters (full-width "
		    "or internationalised)" },
		{ "a@example.jp,b@example.jp", "has more than one '@' (give one "
		    "address)" },
		{ "noat", "has no '@'" },
		{ "@example.jp", "has nothing before the '@'" },
		{ ".a@example.jp", "has a leading, trailing or double '.' "
		    "before the '@'" },
		{ "a.@example.jp", "has a leading, trailing or double '.' "
		    "before the '@'" },
		{ "a..b@example.jp", "has a leading, trailing or double '.' "
		    "before the '@'" },
		{ "a(b)@example.jp", "has a character before the '@' that an "
		    "address may not contain" },
		{ "a@", "has no domain after the '@'" },
		{ "a@[192.0.2.1]", "address literals ([192.0.2.1]) are not "
		    "allowed" },
		{ "a@-ex.jp", "has a domain that is not a host name (empty, too "
		    "long, or '-' at the start or end of a label)" },
		{ "a@ex-.jp", "has a domain that is not a host name (empty, too "
		    "long, or '-' at the start or end of a label)" },
		{ "a@ex..jp", "has a domain that is not a host name (empty, too "
		    "long, or '-' at the start or end of a label)" },
		{ "a@example.jp.", "has a domain that is not a host name (empty, "
		    "too long, or '-' at the start or end of a label)" },
		{ "a@ex_ample.jp", "has a domain that is not a host name "
		    "(letters, digits, '-' and '.')" },
		{ "a@localhost", "has a domain without a '.' (a full domain "
		    "like example.jp is needed)" },
	};
	char longaddr[300], longlocal[80];
	const char *why;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why = NULL;
		if (contacts_valid_address(good[i], &why) != 1)
			print_message("'%s': %s\n", good[i], why);
		assert_int_equal(contacts_valid_address(good[i], &why), 1);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (contacts_valid_address(bad[i].in, &why) != 0)
			print_message("'%s' was accepted\n", bad[i].in);
		assert_int_equal(contacts_valid_address(bad[i].in, &why), 0);
		assert_string_equal(why, bad[i].why);
	}

	/* 64 before the '@' is the limit; 254 in all. */
	memset(longlocal, 'a', 64);
	snprintf(longlocal + 64, sizeof(longlocal) - 64, "@example.jp");
	assert_int_equal(contacts_valid_address(longlocal, &why), 1);
	memset(longlocal, 'a', 65);
	snprintf(longlocal + 65, sizeof(longlocal) - 65, "@example.jp");
	assert_int_equal(contacts_valid_address(longlocal, &why), 0);
	assert_string_equal(why, "has more than 64 characters before the '@'");
	/* "a@" + three 63-byte labels + a 57-byte one + ".jp" = 254 */
	memset(longaddr, 'b', sizeof(longaddr));
	memcpy(longaddr, "a@", 2);
	longaddr[2 + 63] = longaddr[2 + 127] = longaddr[2 + 191] = '.';
	memcpy(longaddr + 251, ".jp", 4);
	assert_int_equal(strlen(longaddr), 254);
	assert_int_equal(contacts_valid_address(longaddr, &why), 1);
	memcpy(longaddr + 251, "b.jp", 5);
	assert_int_equal(contacts_valid_address(longaddr, &why), 0);
	assert_string_equal(why, "is longer than 254 characters");
}

static void
test_valid_id(void **state)
{
	char id[80];

	assert_int_equal(contacts_valid_id("r001"), 1);
	assert_int_equal(contacts_valid_id("A.b_c-9"), 1);
	assert_int_equal(contacts_valid_id(""), 0);
	assert_int_equal(contacts_valid_id("r 1"), 0);
	assert_int_equal(contacts_valid_id("r/1"), 0);
	assert_int_equal(contacts_valid_id("r:1"), 0);
	assert_int_equal(contacts_valid_id("山田"), 0);
	memset(id, 'x', 64);
	id[64] = '\0';
	assert_int_equal(contacts_valid_id(id), 1);
	id[64] = 'x';
	id[65] = '\0';
	assert_int_equal(contacts_valid_id(id), 0);
}

/* ---- against the configuration ------------------------------------------ */

static void
test_check(void **state)
{
	struct conf_kv lgkv[] = {
		{ .key = (char *)"type", .value = (char *)"lgwan", .line = 10 },
		{ .key = (char *)"domains",
		    .value = (char *)"lg.jp,.Pref.Example.JP", .line = 11 },
	};
	struct conf_channel ch[] = {
		{ .name = (char *)"mail", .type = (char *)"smtp", .line = 5 },
		{ .name = (char *)"lgwan", .type = (char *)"lgwan", .line = 9,
		    .kv = lgkv, .nkv = 2 },
	};
	struct conf_policy pol[] = {
		{ .name = (char *)"standard", .line = 20 },
	};
	struct conf c;

	memset(&c, 0, sizeof(c));
	c.path = (char *)"test.conf";
	c.channels = ch;
	c.nchannels = 2;
	c.policies = pol;
	c.npolicies = 1;

	assert_int_equal(parse("id,name,mail,lgwan,policy\n"
	    "r1,A,a@example.jp,a@city.lg.jp,standard\n"
	    "r2,B,b@example.jp,b@LG.JP,urgent\n"
	    "r3,C,c@example.jp,c@example.jp,\n"
	    "r4,D,d@example.jp,d@xlg.jp,\n"
	    "r5,E,e@example.jp,e@city.pref.example.jp,\n"
	    "r6,F,f@example.jp,f@lg.jp.example.com,Standard\n"), 0);
	expect_msgs(NULL);
	assert_int_equal(contacts_check("t.csv", &list, &c, &msgs), -1);
	expect_msgs(
	    "t.csv:3: column 'policy': no [policy urgent] in test.conf",
	    "t.csv:4: column 'lgwan': 'c@example.jp' is outside the domains of "
	    "every lgwan channel ([channel lgwan] domains = "
	    "lg.jp,.Pref.Example.JP)",
	    "t.csv:5: column 'lgwan': 'd@xlg.jp' is outside the domains of "
	    "every lgwan channel ([channel lgwan] domains = "
	    "lg.jp,.Pref.Example.JP)",
	    "t.csv:7: column 'policy': no [policy Standard] in test.conf",
	    "t.csv:7: column 'lgwan': 'f@lg.jp.example.com' is outside the "
	    "domains of every lgwan channel ([channel lgwan] domains = "
	    "lg.jp,.Pref.Example.JP)",
	    NULL);
	assert_int_equal(msgs.errors, 5);
}

static void
test_check_without_lgwan_channel(void **state)
{
	struct conf_channel ch[] = {
		{ .name = (char *)"mail", .type = (char *)"smtp", .line = 5 },
	};
	struct conf c;

	memset(&c, 0, sizeof(c));
	c.channels = ch;
	c.nchannels = 1;

	/* No lgwan channel: any lgwan address is accepted.  A recipient no
	 * configured channel can reach is worth a warning. */
	assert_int_equal(parse("id,name,mail,lgwan,fax,sms\n"
	    "r1,A,a@example.jp,a@example.com,,\n"
	    "r2,B,,,03-1234-5678,090-1234-5678\n"), 0);
	expect_msgs(NULL);
	assert_int_equal(contacts_check("t.csv", &list, &c, &msgs), 0);
	expect_msgs("t.csv:3: warning: recipient 'r2' has no address for any "
	    "configured channel type", NULL);
}

/* ---- files -------------------------------------------------------------- */

static void
test_load(void **state)
{
	char path[] = "/tmp/test_contacts.XXXXXX", want[128];
	const char *csv = "id,name,mail,fax\n"
	    "r1,山田,a@example.jp,03-1234-5678\n";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, csv, strlen(csv)), (ssize_t)strlen(csv));
	conf_msgs_free(&msgs);
	assert_int_equal(contacts_load(path, CONTACTS_ENC_AUTO, "81", &list,
	    &msgs), 0);
	expect_msgs(NULL);
	assert_int_equal(list.n, 1);
	assert_string_equal(list.v[0].name, "山田");
	contacts_free(&list);

	/* Over 64 MB: refused before reading (the file is sparse). */
	assert_int_equal(ftruncate(fd, 64L * 1024 * 1024 + 1), 0);
	assert_int_equal(contacts_load(path, CONTACTS_ENC_AUTO, "81", &list,
	    &msgs), -1);
	snprintf(want, sizeof(want), "%s: larger than 64 MB (67108865 bytes)",
	    path);
	expect_msgs(want, NULL);
	expect_empty();
	close(fd);
	unlink(path);

	conf_msgs_free(&msgs);
	assert_int_equal(contacts_load(path, CONTACTS_ENC_AUTO, "81", &list,
	    &msgs), -1);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or "
	    "directory", path);
	expect_msgs(want, NULL);

	conf_msgs_free(&msgs);
	assert_int_equal(contacts_load("/tmp", CONTACTS_ENC_AUTO, "81", &list,
	    &msgs), -1);
	expect_msgs("/tmp: cannot read: is a directory", NULL);
}

static void
test_example_file(void **state)
{
	/* contrib/contacts.csv.example must import cleanly. */
	conf_msgs_free(&msgs);
	if (access("contrib/contacts.csv.example", R_OK) != 0)
		skip();
	assert_int_equal(contacts_load("contrib/contacts.csv.example",
	    CONTACTS_ENC_AUTO, "81", &list, &msgs), 0);
	expect_msgs(NULL);
	assert_true(list.n >= 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_utf8_japanese, teardown),
		cmocka_unit_test_teardown(test_bom, teardown),
		cmocka_unit_test_teardown(test_cp932_bytes, teardown),
		cmocka_unit_test_teardown(test_cp932_iconv, teardown),
		cmocka_unit_test_teardown(test_auto_neither, teardown),
		cmocka_unit_test_teardown(test_encoding_parse, teardown),
		cmocka_unit_test_teardown(test_quoting, teardown),
		cmocka_unit_test_teardown(test_multiline_field, teardown),
		cmocka_unit_test_teardown(test_header_injection, teardown),
		cmocka_unit_test_teardown(test_unterminated_quote, teardown),
		cmocka_unit_test_teardown(test_stray_quotes, teardown),
		cmocka_unit_test_teardown(test_blank_rows, teardown),
		cmocka_unit_test_teardown(test_field_count, teardown),
		cmocka_unit_test_teardown(test_header, teardown),
		cmocka_unit_test_teardown(test_empty, teardown),
		cmocka_unit_test_teardown(test_every_rejection, teardown),
		cmocka_unit_test_teardown(test_control_characters, teardown),
		cmocka_unit_test_teardown(test_groups, teardown),
		cmocka_unit_test_teardown(test_fewer_than_two_means, teardown),
		cmocka_unit_test_teardown(test_id_case, teardown),
		cmocka_unit_test_teardown(test_national_without_country_code,
		    teardown),
		cmocka_unit_test_teardown(test_many_rows, teardown),
		cmocka_unit_test_teardown(test_phone_table, teardown),
		cmocka_unit_test_teardown(test_address_table, teardown),
		cmocka_unit_test_teardown(test_valid_id, teardown),
		cmocka_unit_test_teardown(test_check, teardown),
		cmocka_unit_test_teardown(test_check_without_lgwan_channel,
		    teardown),
		cmocka_unit_test_teardown(test_load, teardown),
		cmocka_unit_test_teardown(test_example_file, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
