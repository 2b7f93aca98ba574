/*
 * test_fax_render.c - fax pages (channels/fax_render.c).
 *
 * Line breaking is checked twice: fax_break_ok() and fax_wrap() on hand-
 * worked cases with made-up advances (a full-width character 2, a half-
 * width one 1), then fax_wrap() on many pseudo-random texts against the
 * rules of fax_render.h written out again here (the character lists of
 * the header, not the module's).  Rendering is checked on the bitmaps with
 * the real font: no ink in the margins, full-width rules where the header
 * says (the header's rule, the box's top and bottom edges), the page
 * count.  The files are read back with libtiff and libpng, every tag and
 * every pixel.  The errors must say what and where.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <png.h>
#include <tiffio.h>

#include "channels/fax_render.h"

#define FONT	"/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
#define ROWS_N	1143
#define ROWS_F	2286
#define MARGIN	80		/* 10 mm at 204 dpi */
#define SLACK	4		/* pixels a glyph may reach past its box */

static char tmpdir[] = "/tmp/dengon-test-fax-XXXXXX";

/* ---- the rules of fax_render.h, written again -------------------------- */

/* Characters that may not begin a line, from the header's list. */
static const char *const no_start_chars[] = {
	"。", "、", "」", "』", "）", "】", "〕", "！", "？", "ー",
	"ぁ", "ぃ", "ぅ", "ぇ", "ぉ", "っ", "ゃ", "ゅ", "ょ",
	"ァ", "ィ", "ゥ", "ェ", "ォ", "ッ", "ャ", "ュ", "ョ",
	"｡", "､", "｣", "ｰ", "ｧ", "ｨ", "ｩ", "ｪ", "ｫ", "ｯ", "ｬ", "ｭ", "ｮ",
	")", ",", ".", "!", "?",
};

/* Characters that may not end a line. */
static const char *const no_end_chars[] = {
	"「", "『", "（", "【", "〔", "｢", "(",
};

/* The code point of the UTF-8 character s (test data: valid). */
static uint32_t
cp_of(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (p[0] < 0x80)
		return p[0];
	if (p[0] < 0xe0)
		return (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
	if (p[0] < 0xf0)
		return (uint32_t)(p[0] & 0x0f) << 12 |
		    (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
	return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
	    (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
}

static int
listed(uint32_t c, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cp_of(list[i]) == c)
			return 1;
	return 0;
}

static int
oracle_no_start(uint32_t c)
{
	return listed(c, no_start_chars,
	    sizeof(no_start_chars) / sizeof(no_start_chars[0]));
}

static int
oracle_no_end(uint32_t c)
{
	return listed(c, no_end_chars,
	    sizeof(no_end_chars) / sizeof(no_end_chars[0]));
}

static int
latin_word(uint32_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* UTF-8 text to code points and made-up advances: 2 for a character of
 * more than 2 bytes (kana, kanji, full-width forms), 1 otherwise, except
 * half-width katakana (3 bytes, 1 wide).  Returns the count. */
static size_t
decode(const char *s, uint32_t *cp, int32_t *adv, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p != '\0') {
		size_t k = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;

		assert_true(n < max);
		cp[n] = cp_of((const char *)p);
		adv[n] = k >= 3 && !(cp[n] >= 0xff61 && cp[n] <= 0xff9f) ? 2 : 1;
		n++;
		p += k;
	}
	return n;
}

/* Line k of a wrap as UTF-8, for messages and comparisons. */
static void
line_utf8(const uint32_t *cp, const struct fax_span *l, char *buf,
    size_t len)
{
	size_t o = 0;

	for (size_t i = l->start; i < l->start + l->len; i++) {
		uint32_t c = cp[i];

		assert_true(o + 5 < len);
		if (c < 0x80)
			buf[o++] = (char)c;
		else if (c < 0x800) {
			buf[o++] = (char)(0xc0 | c >> 6);
			buf[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			buf[o++] = (char)(0xe0 | c >> 12);
			buf[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			buf[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			buf[o++] = (char)(0xf0 | c >> 18);
			buf[o++] = (char)(0x80 | (c >> 12 & 0x3f));
			buf[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			buf[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	buf[o] = '\0';
}

/* Wrap text at width and compare with the expected lines (NULL-ended). */
static void
expect_wrap(const char *text, int32_t width, const char *const *want)
{
	uint32_t cp[512];
	int32_t adv[512];
	struct fax_span l[512];
	size_t n = decode(text, cp, adv, 512), nl, k;
	char buf[2048];

	nl = fax_wrap(cp, adv, n, width, l, 512);
	for (k = 0; want[k] != NULL; k++) {
		if (k >= nl)
			fail_msg("\"%s\" at %d: %zu lines, expected more",
			    text, (int)width, nl);
		line_utf8(cp, &l[k], buf, sizeof(buf));
		if (strcmp(buf, want[k]) != 0)
			fail_msg("\"%s\" at %d: line %zu is \"%s\", expected "
			    "\"%s\"", text, (int)width, k + 1, buf, want[k]);
	}
	assert_int_equal(nl, k);
}

/* ---- fax_break_ok() ---------------------------------------------------- */

static void
test_break_ok(void **state)
{
	const uint32_t a = cp_of("あ"), kan = cp_of("漢");

	for (size_t i = 0; i < sizeof(no_start_chars) / sizeof(*no_start_chars);
	    i++) {
		uint32_t c = cp_of(no_start_chars[i]);

		if (fax_break_ok(a, c))
			fail_msg("break allowed before %s", no_start_chars[i]);
		if (fax_break_ok(kan, c) || fax_break_ok(' ', c))
			fail_msg("break allowed before %s", no_start_chars[i]);
	}
	for (size_t i = 0; i < sizeof(no_end_chars) / sizeof(*no_end_chars);
	    i++) {
		uint32_t c = cp_of(no_end_chars[i]);

		if (fax_break_ok(c, a) || fax_break_ok(c, kan) ||
		    fax_break_ok(c, 'x'))
			fail_msg("break allowed after %s", no_end_chars[i]);
	}
	/* Between kana and kanji, anywhere; around Latin. */
	assert_true(fax_break_ok(a, kan));
	assert_true(fax_break_ok(kan, a));
	assert_true(fax_break_ok(cp_of("ア"), cp_of("イ")));
	assert_true(fax_break_ok(cp_of("ｱ"), cp_of("ｲ")));	/* half-width */
	assert_true(fax_break_ok(a, 'A'));
	assert_true(fax_break_ok('A', a));
	assert_true(fax_break_ok(cp_of("。"), a));	/* after punctuation */
	assert_true(fax_break_ok(cp_of("」"), cp_of("「")));
	/* Words and numbers stay whole; spaces hang. */
	assert_false(fax_break_ok('a', 'b'));
	assert_false(fax_break_ok('1', '2'));
	assert_false(fax_break_ok('/', 'x'));
	assert_false(fax_break_ok('a', ' '));
	assert_false(fax_break_ok(a, ' '));
	assert_true(fax_break_ok(' ', 'a'));
	assert_false(fax_break_ok(cp_of("…"), cp_of("…")));
	assert_false(fax_break_ok(cp_of("—"), cp_of("—")));
	assert_false(fax_break_ok('a', '\n'));
}

/* ---- fax_wrap() on worked cases ---------------------------------------- */

static void
test_wrap_cases(void **state)
{
	/* Width 20: ten full-width characters. */
	static const char *const fits[] = { "あいうえおかきくけこ", NULL };
	/* 。 would start line 2: こ goes down with it (oikomi is not
	 * done: the line gets shorter). */
	static const char *const maru[] = { "あいうえおかきくけ",
	    "こ。さしす", NULL };
	static const char *const tenten[] = { "あいうえおかきく",
	    "けっ、さしす", NULL };
	/* 「 would end line 1: it goes down. */
	static const char *const kagi[] = { "あいうえおかきくけ",
	    "「こさ」", NULL };
	static const char *const closing[] = { "あいうえおかきくけ",
	    "こ」です", NULL };
	/* Latin words are not cut; the space at the break disappears. */
	static const char *const words[] = { "see the", "manual now",
	    NULL };
	static const char *const url[] = { "URL:", "http://exa",
	    "mple.jp/ab", "c", NULL };
	/* A word too long for any line: on a line of its own, cut. */
	static const char *const mixed[] = { "詳細は", "www.example.",
	    "jpを参照。", NULL };
	/* Spaces hang: the bracket before them stays down too. */
	static const char *const open_sp[] = { "あいうえおかきく",
	    "「 けこさ」", NULL };
	static const char *const paras[] = { "あいう", "", "  えお", NULL };
	static const char *const trailing[] = { "あいう", NULL };
	static const char *const none[] = { NULL };
	static const char *const one_lf[] = { "", NULL };
	static const char *const spaces[] = { "aaaa", "bbbb", NULL };

	expect_wrap("あいうえおかきくけこ", 20, fits);
	expect_wrap("あいうえおかきくけこ。さしす", 20, maru);
	expect_wrap("あいうえおかきくけっ、さしす", 20, tenten);
	expect_wrap("あいうえおかきくけ「こさ」", 20, kagi);
	expect_wrap("あいうえおかきくけこ」です", 20, closing);
	expect_wrap("see the manual now", 10, words);
	expect_wrap("URL: http://example.jp/abc", 10, url);
	expect_wrap("詳細はwww.example.jpを参照。", 12, mixed);
	expect_wrap("あいうえおかきく「 けこさ」", 20, open_sp);
	expect_wrap("あいう\n\n  えお", 20, paras);
	expect_wrap("あいう\n", 20, trailing);
	expect_wrap("", 20, none);
	expect_wrap("\n", 20, one_lf);
	expect_wrap("aaaa      bbbb", 6, spaces);
}

/* ---- fax_wrap() on pseudo-random text ---------------------------------- */

static const char *const pieces[] = {
	"あ", "い", "う", "漢", "字", "カ", "タ", "ﾊ", "ﾝ", "。", "、", "」",
	"』", "）", "】", "〕", "ー", "っ", "ゃ", "ッ", "ョ", "！", "？", "｡",
	"｣", "ｰ", "「", "『", "（", "【", "〔", "｢", " ", "abc", "IPv6",
	"203", "x", "(", ")", ",", ".",
};

/* A text in which the rules can always be kept at width 20 or more: no
 * two restricted characters in a row, runs of Latin (words, numbers,
 * ASCII punctuation) of at most 6. */
static size_t
random_text(char *buf, size_t len, unsigned *seed)
{
	size_t o = 0, ascii = 0;
	int restricted = 1;	/* none at the very start either */

	buf[0] = '\0';
	while (o + 16 < len) {
		const char *p = pieces[rand_r(seed) %
		    (sizeof(pieces) / sizeof(pieces[0]))];
		uint32_t c;
		int r;

		if (rand_r(seed) % 40 == 0)
			p = "\n";
		c = cp_of(p);
		r = oracle_no_start(c) || oracle_no_end(c);
		if (r && restricted)
			continue;
		if (c < 0x80 && c != ' ' && c != '\n') {
			if (ascii + strlen(p) > 6)
				continue;
			ascii += strlen(p);
		} else
			ascii = 0;
		o += (size_t)snprintf(buf + o, len - o, "%s", p);
		restricted = r;
	}
	return o;
}

static void
test_wrap_random(void **state)
{
	static uint32_t cp[4096];
	static int32_t adv[4096];
	static struct fax_span l[4096];
	char text[3000], buf[2048];
	unsigned seed = 20240514;
	int cut_words = 0;

	for (int round = 0; round < 2000; round++) {
		int32_t width = 20 + (int32_t)(rand_r(&seed) % 60);
		size_t n, nl, prev_end = 0;

		random_text(text, 200 + (size_t)(rand_r(&seed) % 2500),
		    &seed);
		n = decode(text, cp, adv, 4096);
		nl = fax_wrap(cp, adv, n, width, l, 4096);
		assert_true(nl <= n);
		for (size_t k = 0; k < nl; k++) {
			int64_t w = 0;
			size_t s = l[k].start, e = s + l[k].len, j;
			int after_lf, wrapped;

			/* In order; only spaces and one LF skipped. */
			assert_true(s >= prev_end);
			for (size_t i = prev_end, lf = 0; i < s; i++) {
				assert_true(cp[i] == ' ' || cp[i] == '\n');
				lf += cp[i] == '\n';
				assert_true(lf <= 1);
			}
			for (size_t i = s; i < e; i++) {
				assert_true(cp[i] != '\n');
				w += adv[i];
			}
			line_utf8(cp, &l[k], buf, sizeof(buf));
			if (w > width)
				fail_msg("line \"%s\" is %d wide (%d)", buf,
				    (int)w, (int)width);
			if (l[k].len > 0 && cp[e - 1] == ' ')
				fail_msg("line \"%s\" ends with a space", buf);
			after_lf = k == 0 || cp[s - 1] == '\n';
			j = e;
			while (j < n && cp[j] == ' ')
				j++;
			wrapped = j < n && cp[j] != '\n';
			if (!after_lf && oracle_no_start(cp[s]))
				fail_msg("line %zu starts with a closing "
				    "character: \"%s\"", k + 1, buf);
			if (!after_lf && s > 0 && latin_word(cp[s]) &&
			    latin_word(cp[s - 1]))
				cut_words++;
			if (wrapped && l[k].len > 0 &&
			    oracle_no_end(cp[e - 1]))
				fail_msg("line %zu ends with an opening "
				    "character: \"%s\"", k + 1, buf);
			prev_end = e;
		}
		/* Everything but spaces and LF was laid out. */
		for (size_t i = prev_end; i < n; i++)
			assert_true(cp[i] == ' ' || cp[i] == '\n');
		/* Greedy: the next line's first character would not have
		 * fitted, or the break there is not allowed.  Checked on
		 * CJK-only boundaries, where both are easy to see. */
		for (size_t k = 0; k + 1 < nl; k++) {
			size_t e = l[k].start + l[k].len, s2 = l[k + 1].start;
			int64_t w = 0;

			if (s2 != e || cp[e] == '\n')
				continue;
			for (size_t i = l[k].start; i < e; i++)
				w += adv[i];
			if (w + adv[s2] <= width && s2 + 1 < n &&
			    !oracle_no_start(cp[s2 + 1]) &&
			    !oracle_no_end(cp[s2]) && cp[s2 + 1] != ' ' &&
			    cp[s2 + 1] != '\n' && adv[s2] == 2 &&
			    adv[s2 + 1] == 2) {
				line_utf8(cp, &l[k], buf, sizeof(buf));
				fail_msg("line \"%s\" could have taken one "
				    "more character", buf);
			}
		}
	}
	/* Words of at most 4 letters in lines of 20 or more: never cut. */
	assert_int_equal(cut_words, 0);
}

/* An over-long word is cut exactly at the width; progress is made even
 * when a single character is wider than the line. */
static void
test_wrap_forced(void **state)
{
	uint32_t cp[100];
	int32_t adv[100];
	struct fax_span l[100];
	size_t nl;

	for (int i = 0; i < 95; i++) {
		cp[i] = 'a' + (uint32_t)(i % 26);
		adv[i] = 1;
	}
	nl = fax_wrap(cp, adv, 95, 10, l, 100);
	assert_int_equal(nl, 10);
	for (size_t k = 0; k < nl; k++) {
		assert_int_equal(l[k].start, k * 10);
		assert_int_equal(l[k].len, k < 9 ? 10 : 5);
	}
	for (int i = 0; i < 5; i++)
		adv[i] = 50;
	nl = fax_wrap(cp, adv, 5, 10, l, 100);
	assert_int_equal(nl, 5);
	/* max smaller than the count: only max written, count returned. */
	l[1].start = 777;
	nl = fax_wrap(cp, adv, 5, 10, l, 1);
	assert_int_equal(nl, 5);
	assert_int_equal(l[1].start, 777);
}

/* ---- rendering --------------------------------------------------------- */

static int
ink(const struct fax_pages *p, int pg, int x, int y)
{
	return p->bits[pg][(size_t)y * FAX_ROWBYTES + (size_t)(x >> 3)] &
	    (0x80 >> (x & 7));
}

static long
ink_in(const struct fax_pages *p, int pg, int x0, int x1, int y0, int y1)
{
	long n = 0;

	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++)
			n += ink(p, pg, x, y) != 0;
	return n;
}

/* Groups of consecutive rows inked from the left to the right margin:
 * the header's rule, the box's top and bottom edges.  Their first rows
 * into first[] (up to 8). */
static int
full_rules(const struct fax_pages *p, int pg, int *first)
{
	int groups = 0, in = 0;

	for (int y = 0; y < p->rows[pg]; y++) {
		int full = 1;

		for (int x = MARGIN; x < FAX_WIDTH - MARGIN && full; x++)
			full = ink(p, pg, x, y) != 0;
		if (full && !in) {
			if (groups < 8)
				first[groups] = y;
			groups++;
		}
		in = full;
	}
	return groups;
}

/* Nothing drawn in the margins (left, right, top, bottom). */
static void
assert_margins_clear(const struct fax_pages *p)
{
	for (int pg = 0; pg < p->n; pg++) {
		int rows = p->rows[pg], my = p->fine ? 77 : 38;
		long l = ink_in(p, pg, 0, MARGIN - SLACK, 0, rows);
		long r = ink_in(p, pg, FAX_WIDTH - MARGIN + SLACK, FAX_WIDTH,
		    0, rows);
		long t = ink_in(p, pg, 0, FAX_WIDTH, 0, my - SLACK);
		long b = ink_in(p, pg, 0, FAX_WIDTH, rows - my + SLACK, rows);

		if (l + r + t + b > 0)
			fail_msg("page %d: ink in the margins: left %ld, "
			    "right %ld, top %ld, bottom %ld", pg + 1, l, r, t,
			    b);
	}
}

static void
doc_init(struct fax_doc *d, const char *body)
{
	memset(d, 0, sizeof(*d));
	d->font = FONT;
	d->header = "送信元: 電力ISAC  警報 A-2024-0042  2024-05-14 10:32 JST";
	d->tlp = "TLP:AMBER";
	d->title = "【緊急】制御系ネットワークにおける不審な通信の検知について";
	d->body = body;
	d->box_title = "受信確認のお願い";
	d->code = "K7QM-3XTD";
	d->box_lines = "上記のコードを添えて受信確認をお願いします。\n"
	    "電話: 03-1234-5678（24時間）";
}

static void
render_ok(const struct fax_doc *d, struct fax_pages *p)
{
	char err[256];

	if (fax_render(d, p, err, sizeof(err)) != 0)
		fail_msg("fax_render: %s", err);
	assert_true(p->n >= 1);
	for (int i = 0; i < p->n; i++)
		assert_int_equal(p->rows[i], d->fine ? ROWS_F : ROWS_N);
	assert_int_equal(p->fine, d->fine != 0);
}

/* A Japanese body of about n characters: sentences, with punctuation,
 * brackets and an occasional number. */
static char *
japanese(size_t n)
{
	static const char *const s[] = {
		"本日未明、制御系ネットワークで不審な通信を検知しました。",
		"「VPN装置」の管理画面へのログイン履歴を確認してください。",
		"影響範囲（発電所、変電所）を調査中です。",
		"対策：ファイアウォールで203.0.113.0/24を遮断すること。",
		"詳細は追ってお知らせします！",
	};
	size_t cap = n * 3 + 256, o = 0, chars = 0;
	char *b = malloc(cap);

	assert_non_null(b);
	b[0] = '\0';
	for (int i = 0; chars < n; i++) {
		const char *p = s[i % 5];

		o += (size_t)snprintf(b + o, cap - o, "%s%s", p,
		    i % 7 == 6 ? "\n" : "");
		for (; *p != '\0'; p++)
			chars += (*p & 0xc0) != 0x80;
		assert_true(o + 256 < cap);
	}
	return b;
}

static void
test_render_width(void **state)
{
	char *body = japanese(3000);
	struct fax_doc d;
	struct fax_pages p;
	long reach = 0;

	doc_init(&d, body);
	for (int fine = 0; fine <= 1; fine++) {
		d.fine = fine;
		render_ok(&d, &p);
		assert_margins_clear(&p);
		/* The text does reach the right margin: lines are filled,
		 * not wrapped short. */
		reach = ink_in(&p, 0, FAX_WIDTH - MARGIN - 40,
		    FAX_WIDTH - MARGIN, p.rows[0] / 4, p.rows[0] * 3 / 4);
		assert_true(reach > 100);
		fax_pages_free(&p);
	}
	free(body);
}

static void
test_pages_grow(void **state)
{
	static const size_t sizes[] = { 0, 500, 2000, 5000, 10000 };
	int last = 0, pages[5];
	struct fax_doc d;
	struct fax_pages p;

	for (size_t i = 0; i < 5; i++) {
		char *body = japanese(sizes[i]);

		if (sizes[i] == 0)
			body[0] = '\0';
		doc_init(&d, body);
		render_ok(&d, &p);
		pages[i] = p.n;
		assert_true(p.n >= last);
		last = p.n;
		fax_pages_free(&p);
		free(body);
	}
	assert_int_equal(pages[0], 1);
	assert_int_equal(pages[1], 1);
	assert_true(pages[3] > pages[2]);
	assert_true(pages[4] >= 5);
	assert_true(pages[4] < 12);	/* and not absurdly many */
}

/* The box is on the last page, whole: on every page the header's rule;
 * on the last one also the box's top and bottom edges, in that order,
 * above the bottom margin.  Body lengths are stepped so that the body
 * ends at every height of a page, pushing the box over at least once. */
static void
test_box_last_page(void **state)
{
	struct fax_doc d;
	struct fax_pages p;
	int moved = 0, first[8];

	for (size_t n = 1200; n < 3400; n += 45) {
		char *body = japanese(n);

		doc_init(&d, body);
		render_ok(&d, &p);
		for (int pg = 0; pg < p.n; pg++) {
			int g = full_rules(&p, pg, first);

			if (pg < p.n - 1) {
				if (g != 1)
					fail_msg("body %zu: page %d of %d has "
					    "%d rules", n, pg + 1, p.n, g);
				continue;
			}
			if (g != 3)
				fail_msg("body %zu: last page %d has %d rules",
				    n, p.n, g);
			assert_true(first[0] < first[1]);
			assert_true(first[1] < first[2]);
			assert_true(first[2] < p.rows[pg] - 38);
			/* The box alone under the header: it was moved. */
			if (ink_in(&p, pg, 0, FAX_WIDTH, first[0] + 4,
			    first[1] - 4) == 0)
				moved++;
		}
		fax_pages_free(&p);
		free(body);
	}
	assert_true(moved > 0);
}

/* Everything empty but the font: one page with its header; a body with
 * characters the font lacks, TAB, controls, a very long URL. */
static void
test_odd_input(void **state)
{
	struct fax_doc d;
	struct fax_pages p;
	char *url, *body;
	size_t n = 20000;

	memset(&d, 0, sizeof(d));
	d.font = FONT;
	render_ok(&d, &p);
	assert_int_equal(p.n, 1);
	assert_true(ink_in(&p, 0, 0, FAX_WIDTH, 0, p.rows[0]) > 0); /* 1/1 */
	fax_pages_free(&p);

	doc_init(&d, "絵文字😀、外字𠮷、ハングル한국어、アラビア文字العربية。\n"
	    "列1\t列2\t列3\r\n\x01\x7f制御文字\xc2\x85も。葛\xf3\xa0\x84\x81\n");
	render_ok(&d, &p);
	assert_int_equal(p.n, 1);
	assert_margins_clear(&p);
	fax_pages_free(&p);

	url = malloc(n + 64);
	assert_non_null(url);
	memcpy(url, "参照: https://example.jp/", 27);
	for (size_t i = 27; i < n; i++)
		url[i] = (char)('a' + i % 26);
	memcpy(url + n, "。\n", 5);
	doc_init(&d, url);
	d.title = url;			/* a title that long too */
	d.header = url;
	d.tlp = url;
	render_ok(&d, &p);
	assert_true(p.n >= 2);
	assert_margins_clear(&p);
	fax_pages_free(&p);
	free(url);

	body = japanese(10000);
	doc_init(&d, body);
	d.fine = 1;
	render_ok(&d, &p);
	assert_true(p.n >= 5);
	assert_margins_clear(&p);
	fax_pages_free(&p);
	fax_pages_free(&p);		/* again: harmless */
	free(body);
}

static void
test_refused(void **state)
{
	static const struct {
		int	field;	/* 0 body, 1 title, 2 header, 3 box_lines */
		const char *text;
		const char *name;
	} bad[] = {
		{ 0, "正常な文\xff続き", "body" },
		{ 1, "\xc0\xaf", "title" },		/* overlong '/' */
		{ 2, "末尾が途中\xe3\x81", "header" },	/* truncated */
		{ 3, "\xed\xa0\x80", "box lines" },	/* a surrogate */
		{ 0, "\xf4\x90\x80\x80", "body" },	/* > U+10FFFF */
	};
	struct fax_doc d;
	struct fax_pages p;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		doc_init(&d, "本文");
		if (bad[i].field == 0)
			d.body = bad[i].text;
		else if (bad[i].field == 1)
			d.title = bad[i].text;
		else if (bad[i].field == 2)
			d.header = bad[i].text;
		else
			d.box_lines = bad[i].text;
		memset(&p, 0xa5, sizeof(p));
		err[0] = '\0';
		assert_int_equal(fax_render(&d, &p, err, sizeof(err)), -1);
		if (strstr(err, "UTF-8") == NULL ||
		    strstr(err, bad[i].name) == NULL)
			fail_msg("case %zu: \"%s\"", i, err);
		assert_int_equal(p.n, 0);
		assert_null(p.bits);
		assert_null(p.rows);
	}

	/* A font that is not there, and one that is not a font. */
	doc_init(&d, "本文");
	d.font = "/nonexistent/fonts/ipag.ttf";
	assert_int_equal(fax_render(&d, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/fonts/ipag.ttf"));
	assert_non_null(strstr(err, "No such file"));
	d.font = "/etc/passwd";
	assert_int_equal(fax_render(&d, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/etc/passwd"));
	assert_null(p.bits);
	d.font = NULL;
	assert_int_equal(fax_render(&d, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "font"));

	/* A confirmation box taller than a page. */
	{
		char *lines = malloc(20000);
		size_t o = 0;

		assert_non_null(lines);
		for (int i = 0; i < 100; i++)
			o += (size_t)snprintf(lines + o, 20000 - o,
			    "連絡先 %d\n", i);
		doc_init(&d, "本文");
		d.box_lines = lines;
		assert_int_equal(fax_render(&d, &p, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "taller than a page"));
		free(lines);
	}

	/* More pages than FAX_MAX_PAGES. */
	{
		char *body = japanese(3000 * FAX_MAX_PAGES);

		doc_init(&d, body);
		assert_int_equal(fax_render(&d, &p, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "pages"));
		assert_null(p.bits);
		free(body);
	}
}

/* ---- files ------------------------------------------------------------- */

static void
check_tiff(const char *path, const struct fax_pages *p)
{
	TIFF *t = TIFFOpen(path, "r");
	uint8_t *row = malloc(FAX_ROWBYTES);
	int dirs = 0;

	assert_non_null(t);
	assert_non_null(row);
	do {
		uint32_t w = 0, h = 0, g3 = 99, rps = 0, sub = 0;
		uint16_t bps = 0, comp = 0, phot = 9, fill = 0, unit = 0;
		uint16_t pn = 99, pt = 99, clean = 9;
		float xr = 0, yr = 0;

		assert_true(dirs < p->n);
		assert_true(TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w));
		assert_true(TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h));
		assert_true(TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bps));
		assert_true(TIFFGetField(t, TIFFTAG_COMPRESSION, &comp));
		assert_true(TIFFGetField(t, TIFFTAG_GROUP3OPTIONS, &g3));
		assert_true(TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &phot));
		assert_true(TIFFGetField(t, TIFFTAG_FILLORDER, &fill));
		assert_true(TIFFGetField(t, TIFFTAG_XRESOLUTION, &xr));
		assert_true(TIFFGetField(t, TIFFTAG_YRESOLUTION, &yr));
		assert_true(TIFFGetField(t, TIFFTAG_RESOLUTIONUNIT, &unit));
		assert_true(TIFFGetField(t, TIFFTAG_PAGENUMBER, &pn, &pt));
		assert_true(TIFFGetField(t, TIFFTAG_ROWSPERSTRIP, &rps));
		assert_true(TIFFGetField(t, TIFFTAG_SUBFILETYPE, &sub));
		assert_true(TIFFGetField(t, TIFFTAG_CLEANFAXDATA, &clean));
		assert_int_equal(w, 1728);
		assert_int_equal(h, (uint32_t)p->rows[dirs]);
		assert_int_equal(bps, 1);
		assert_int_equal(comp, COMPRESSION_CCITTFAX3);
		assert_int_equal(g3, GROUP3OPT_FILLBITS);	/* 1-D, filled */
		assert_int_equal(phot, PHOTOMETRIC_MINISWHITE);
		assert_int_equal(fill, FILLORDER_MSB2LSB);
		assert_true(xr > 203.9 && xr < 204.1);
		if (p->fine)
			assert_true(yr > 195.9 && yr < 196.1);
		else
			assert_true(yr > 97.9 && yr < 98.1);
		assert_int_equal(unit, RESUNIT_INCH);
		assert_int_equal(pn, dirs);
		assert_int_equal(pt, p->n);
		assert_int_equal(rps, h);
		assert_int_equal(sub, FILETYPE_PAGE);
		assert_int_equal(clean, CLEANFAXDATA_CLEAN);
		/* Every pixel back. */
		for (uint32_t r = 0; r < h; r++) {
			assert_int_equal(TIFFReadScanline(t, row, r, 0), 1);
			if (memcmp(row, p->bits[dirs] + (size_t)r *
			    FAX_ROWBYTES, FAX_ROWBYTES) != 0)
				fail_msg("%s: page %d row %u differs", path,
				    dirs + 1, r);
		}
		dirs++;
	} while (TIFFReadDirectory(t));
	assert_int_equal(dirs, p->n);
	TIFFClose(t);
	free(row);
}

static void
test_tiff(void **state)
{
	char *body = japanese(4500), path[256], err[256];
	struct fax_doc d;
	struct fax_pages p;

	snprintf(path, sizeof(path), "%s/alert.tif", tmpdir);
	doc_init(&d, body);
	for (int fine = 0; fine <= 1; fine++) {
		d.fine = fine;
		render_ok(&d, &p);
		assert_true(p.n >= 2);
		if (fax_write_tiff(&p, path, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		check_tiff(path, &p);
		fax_pages_free(&p);
	}
	assert_int_equal(unlink(path), 0);
	free(body);
}

static void
test_png(void **state)
{
	char *body = japanese(4500), path[256], err[256];
	struct fax_doc d;
	struct fax_pages p;

	snprintf(path, sizeof(path), "%s/alert.png", tmpdir);
	doc_init(&d, body);
	for (int fine = 0; fine <= 1; fine++) {
		png_image img;
		uint8_t *px;
		size_t y = 0;
		int dbl = fine ? 1 : 2;

		d.fine = fine;
		render_ok(&d, &p);
		if (fax_write_png(&p, path, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		memset(&img, 0, sizeof(img));
		img.version = PNG_IMAGE_VERSION;
		assert_true(png_image_begin_read_from_file(&img, path));
		assert_int_equal(img.width, FAX_WIDTH);
		/* Pages one below another, rows doubled at normal
		 * resolution, a separator between them. */
		assert_true(img.height > (uint32_t)(p.n * p.rows[0] * dbl));
		assert_true(img.height < (uint32_t)(p.n * p.rows[0] * dbl +
		    (p.n - 1) * 64));
		img.format = PNG_FORMAT_GRAY;
		px = malloc(PNG_IMAGE_SIZE(img));
		assert_non_null(px);
		assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
		for (int pg = 0; pg < p.n; pg++) {
			int sep = 0;

			/* The grey separator. */
			for (; pg > 0 && px[y * FAX_WIDTH] != 255; y++, sep++)
				assert_true(px[y * FAX_WIDTH] > 0);
			if (pg > 0)
				assert_true(sep >= 8);
			for (int r = 0; r < p.rows[pg] * dbl; r++, y++)
				for (int x = 0; x < FAX_WIDTH; x++) {
					int black = ink(&p, pg, x, r / dbl) != 0;

					if (px[y * FAX_WIDTH + (size_t)x] !=
					    (black ? 0 : 255))
						fail_msg("page %d row %d x %d",
						    pg + 1, r, x);
				}
		}
		assert_int_equal(y, img.height);
		free(px);
		fax_pages_free(&p);
	}
	assert_int_equal(unlink(path), 0);
	free(body);
}

static void
test_write_errors(void **state)
{
	struct fax_doc d;
	struct fax_pages p, none;
	char err[256], path[256];

	doc_init(&d, "本文");
	render_ok(&d, &p);
	assert_int_equal(fax_write_tiff(&p, "/nonexistent/dir/a.tif", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir/a.tif"));
	assert_int_equal(fax_write_png(&p, "/nonexistent/dir/a.png", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir/a.png"));
	memset(&none, 0, sizeof(none));
	snprintf(path, sizeof(path), "%s/none.tif", tmpdir);
	assert_int_equal(fax_write_tiff(&none, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no pages"));
	assert_int_equal(access(path, F_OK), -1);
	fax_pages_free(&p);
}

/* The time a long alert takes, printed (not asserted: valgrind and the
 * sanitizers make any bound either loose or flaky). */
static void
test_speed(void **state)
{
	char *body = japanese(9000);
	struct fax_doc d;
	struct fax_pages p;
	struct timespec a, b;
	double s;

	doc_init(&d, body);
	d.fine = 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	render_ok(&d, &p);
	clock_gettime(CLOCK_MONOTONIC, &b);
	s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	print_message("%d fine pages in %.3f s\n", p.n, s);
	assert_true(p.n >= 4);
	fax_pages_free(&p);
	free(body);
}

static int
setup(void **state)
{
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (access(FONT, R_OK) != 0) {
		fprintf(stderr, "test_fax_render: %s: %s (install "
		    "fonts-ipafont-gothic: make deps)\n", FONT,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Also what a failed test left behind. */
static int
teardown(void **state)
{
	static const char *const files[] = { "alert.tif", "alert.png",
	    "none.tif" };
	char path[256];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_break_ok),
		cmocka_unit_test(test_wrap_cases),
		cmocka_unit_test(test_wrap_random),
		cmocka_unit_test(test_wrap_forced),
		cmocka_unit_test(test_render_width),
		cmocka_unit_test(test_pages_grow),
		cmocka_unit_test(test_box_last_page),
		cmocka_unit_test(test_odd_input),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_tiff),
		cmocka_unit_test(test_png),
		cmocka_unit_test(test_write_errors),
		cmocka_unit_test(test_speed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
