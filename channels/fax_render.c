/*
 * fax_render.c - an alert laid out on A4 fax pages and drawn with
 * FreeType; the pages written as TIFF Class F (libtiff) or PNG (libpng).
 *
 * fax_render() works in three passes over one struct fr:
 *
 *   1. text in: every field of the fax_doc checked as UTF-8 and turned
 *      into code points (utf32()): CR dropped, TAB to spaces, other
 *      controls to a space, invisible joiners and variation selectors
 *      dropped; LF kept where a field may have several lines.
 *   2. layout: each field wrapped (fax_wrap(), with the advances FreeType
 *      gives in the field's size) and its lines appended to the display
 *      list, a list of items (a line of text at a pen position, or a
 *      filled rectangle) each on one page.  The cursor moves to a new page
 *      when a line, or the whole confirmation box, does not fit.  Only
 *      then is the page count known, and the header of every page (text,
 *      "n/m", the boxed TLP label) is appended.
 *   3. drawing: the pages allocated and every item drawn; glyphs are
 *      rendered anti-aliased and thresholded (cleaner thin strokes than
 *      the monochrome rasteriser at 98 dpi), bold is FreeType's outline
 *      emboldening.
 *
 * Geometry is in tenths of millimetres and converted per axis: 204 dpi
 * across, 98 or 196 dpi down (the font is scaled with the same two
 * resolutions, so glyphs keep their shape at either).  The struct fr owns
 * the FreeType library and face, the display list (each item owns its
 * code points) and the decoded fields; fr_free() releases them all.
 *
 * Invariants: an item's page is in [0, npages); every drawing call clips
 * to the page; fax_render() leaves *out either complete or all zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_ADVANCES_H
#include FT_OUTLINE_H
#include <png.h>
#include <tiffio.h>

#include "channels/fax_render.h"
#include "relay/relay.h"	/* ingest_utf8_seq(): the one UTF-8 decoder */

#define XDPI		204
#define YDPI_NORMAL	98
#define YDPI_FINE	196
#define ROWS_NORMAL	1143	/* 297 mm at 3.85 lines/mm */
#define ROWS_FINE	2286	/* 297 mm at 7.7 lines/mm */

/* Layout, in tenths of a millimetre. */
#define MARGIN_X	100	/* left and right */
#define MARGIN_TOP	100
#define MARGIN_BOTTOM	100
#define TLP_PAD_X	25	/* inside the TLP box */
#define TLP_PAD_Y	12
#define TLP_BORDER	5
#define NM_GAP		50	/* between "n/m" and the TLP box */
#define RULE_GAP	25	/* header band to the rule under it */
#define RULE		4	/* its thickness */
#define CONTENT_GAP	50	/* rule to the first line of text */
#define TITLE_GAP	40	/* title to body */
#define BOX_GAP		60	/* body to the confirmation box */
#define BOX_BORDER	6
#define BOX_PAD		40
#define BOX_INNER_GAP	25	/* between the parts of the box */
#define NOTDEF_LINE	3	/* the stroke of the missing-glyph box */

#define GREY_THRESHOLD	80	/* of 255: this dark or darker is black */
#define LOAD_FLAGS	(FT_LOAD_NO_BITMAP | FT_LOAD_TARGET_LIGHT)
#define TAB_COLUMNS	8

/* The sizes of text on the page. */
enum fr_style {
	FS_HEADER,
	FS_TLP,
	FS_TITLE,
	FS_BODY,
	FS_BOXTITLE,
	FS_CODE,
	FS_COUNT
};

static const struct {
	int	pt10;		/* size in tenths of a point */
	int	bold;
	int	pitch;		/* line pitch, percent of the size */
} style_def[FS_COUNT] = {
	[FS_HEADER]	= { 100, 0, 130 },
	[FS_TLP]	= { 120, 1, 120 },
	[FS_TITLE]	= { 180, 1, 140 },
	[FS_BODY]	= { 120, 0, 150 },
	[FS_BOXTITLE]	= { 140, 1, 150 },
	[FS_CODE]	= { 280, 1, 130 },
};

struct fr_metrics {
	int	em_x;		/* the size in pixels across (26.6) */
	int	em_y;		/* in rows (whole) */
	int	pitch;		/* rows from one line to the next */
	int	base;		/* baseline, rows below a line's top */
	int	bold_x;		/* emboldening, 26.6 */
	int	bold_y;
};

enum fr_item_kind { IT_TEXT, IT_RECT };

struct fr_item {
	int		 page;
	int		 kind;
	int		 style;		/* IT_TEXT */
	int		 x, y;		/* text: pen, baseline; rect: corner */
	int		 w, h;		/* IT_RECT */
	uint32_t	*cp;		/* IT_TEXT, owned */
	size_t		 n;
};

enum fr_align { AL_LEFT, AL_CENTRE, AL_RIGHT };

struct fr {
	FT_Library	 lib;
	FT_Face		 face;
	int		 style;		/* the size set on face; -1: none */
	int		 ydpi;
	int		 rows;		/* of every page */
	struct fr_metrics m[FS_COUNT];
	int		 asc_num, asc_den;	/* ascender share of the em */

	struct fr_item	*items;
	size_t		 nitems, itemcap;

	int		 page;		/* layout cursor */
	int		 y;		/* top row of the next line */
	int		 top;		/* first row under the header */
	int		 bottom;	/* first row below the text area */

	char		*err;
	size_t		 errlen;
};

/* The fields of the document as code points (owned by fax_render()). */
struct fr_text {
	uint32_t	*cp;
	size_t		 n;
};

static int
fr_fail(struct fr *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Put a message in the caller's err; -1. */
static int
fr_fail(struct fr *f, const char *fmt, ...)
{
	va_list ap;

	if (f->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(f->err, f->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
mmx(int tenths)
{
	return (tenths * XDPI + 127) / 254;
}

static int
mmy(const struct fr *f, int tenths)
{
	return (tenths * f->ydpi + 127) / 254;
}

/* ---- characters -------------------------------------------------------- */

static int
is_space(uint32_t c)
{
	return c == ' ';
}

/* Wide (two columns), for placeholders and TAB columns. */
static int
is_wide(uint32_t c)
{
	return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0x303e) ||
	    (c >= 0x3041 && c <= 0x33ff) || (c >= 0x3400 && c <= 0x4dbf) ||
	    (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xa000 && c <= 0xa4cf) ||
	    (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
	    (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
	    (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) ||
	    (c >= 0x20000 && c <= 0x3fffd);
}

/* Text where a line may break between any two characters: CJK,
 * including the half-width katakana. */
static int
is_cjk(uint32_t c)
{
	return is_wide(c) || (c >= 0xff61 && c <= 0xff9f);
}

static int
in_list(uint32_t c, const uint16_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == c)
			return 1;
	return 0;
}

/* May not begin a line (JIS X 4051 closing brackets, punctuation, small
 * kana, prolonged sound mark, iteration marks; full- and half-width). */
static int
no_start(uint32_t c)
{
	static const uint16_t list[] = {
		'!', ')', ',', '.', ':', ';', '?', ']', '}', 0x00bb,
		0x2010, 0x2013, 0x2019, 0x201d, 0x2025, 0x2026, 0x203a,
		0x203c, 0x2047, 0x2048, 0x2049,
		0x3001, 0x3002, 0x3005, 0x3009, 0x300b, 0x300d, 0x300f,
		0x3011, 0x3015, 0x3017, 0x3019, 0x301b, 0x301c, 0x301e,
		0x301f, 0x303b,
		0x3041, 0x3043, 0x3045, 0x3047, 0x3049, 0x3063, 0x3083,
		0x3085, 0x3087, 0x308e, 0x3095, 0x3096, 0x309b, 0x309c,
		0x309d, 0x309e, 0x30a0,
		0x30a1, 0x30a3, 0x30a5, 0x30a7, 0x30a9, 0x30c3, 0x30e3,
		0x30e5, 0x30e7, 0x30ee, 0x30f5, 0x30f6, 0x30fb, 0x30fc,
		0x30fd, 0x30fe,
		0xff01, 0xff09, 0xff0c, 0xff0e, 0xff1a, 0xff1b, 0xff1f,
		0xff3d, 0xff5d, 0xff5e, 0xff60,
		0xff61, 0xff63, 0xff64, 0xff65, 0xff67, 0xff68, 0xff69,
		0xff6a, 0xff6b, 0xff6c, 0xff6d, 0xff6e, 0xff6f, 0xff70,
		0xff9e, 0xff9f,
	};

	if (c >= 0x31f0 && c <= 0x31ff)		/* small katakana for Ainu */
		return 1;
	return c <= 0xffff && in_list(c, list, sizeof(list) / sizeof(list[0]));
}

/* May not end a line: opening brackets and quotes. */
static int
no_end(uint32_t c)
{
	static const uint16_t list[] = {
		'(', '[', '{', 0x00ab, 0x2018, 0x201c, 0x2039,
		0x3008, 0x300a, 0x300c, 0x300e, 0x3010, 0x3014, 0x3016,
		0x3018, 0x301a, 0x301d,
		0xff08, 0xff3b, 0xff5b, 0xff5f, 0xff62,
	};

	return c <= 0xffff && in_list(c, list, sizeof(list) / sizeof(list[0]));
}

int
fax_break_ok(uint32_t a, uint32_t b)
{
	if (is_space(b) || b == '\n' || no_start(b) || no_end(a))
		return 0;
	/* "……" and "——" stay together. */
	if (a == b && (a == 0x2014 || a == 0x2015 || a == 0x2025 ||
	    a == 0x2026))
		return 0;
	if (is_space(a) || a == '\n')
		return 1;
	return is_cjk(a) || is_cjk(b);
}

/* Would a break before cp[i] leave an opening bracket at the end of the
 * line, before the spaces that hang there ("「 " then a break)?
 * fax_break_ok() sees only the space. */
static int
opens_before(const uint32_t *cp, size_t s, size_t i)
{
	if (!is_space(cp[i - 1]))
		return 0;
	while (i > s && is_space(cp[i - 1]))
		i--;
	return i > s && no_end(cp[i - 1]);
}

size_t
fax_wrap(const uint32_t *cp, const int32_t *adv, size_t n, int32_t width,
    struct fax_span *lines, size_t max)
{
	size_t nl = 0, s = 0;

	while (s < n) {
		size_t i, brk = 0, end, len;
		int64_t w = 0;

		for (i = s; i < n && cp[i] != '\n'; i++) {
			if (i > s && fax_break_ok(cp[i - 1], cp[i]) &&
			    !opens_before(cp, s, i))
				brk = i;
			/* Spaces may hang past the width: never a reason
			 * to break. */
			if (!is_space(cp[i]) && i > s && w + adv[i] > width)
				break;
			w += adv[i];
		}
		if (i == n || cp[i] == '\n')
			end = i;
		else
			end = brk > s ? brk : i;	/* or cut anywhere */
		for (len = end - s; len > 0 && is_space(cp[s + len - 1]); len--)
			;
		if (nl < max) {
			lines[nl].start = s;
			lines[nl].len = len;
		}
		nl++;
		if (end < n && cp[end] == '\n')
			s = end + 1;	/* a new line keeps its indent */
		else
			for (s = end; s < n && is_space(cp[s]); s++)
				;
	}
	return nl;
}

/* Characters that take no room and would only draw a placeholder:
 * joiners, variation selectors (the IVS of names), the BOM. */
static int
invisible(uint32_t c)
{
	return (c >= 0x200b && c <= 0x200f) || c == 0x2060 || c == 0xfeff ||
	    (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xe0100 && c <= 0xe01ef) ||
	    c == 0x00ad;
}

/* The code point of a sequence ingest_utf8_seq() found valid, k bytes. */
static uint32_t
utf8_cp(const unsigned char *s, size_t k)
{
	static const unsigned char lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t c = s[0] & lead_mask[k];

	for (size_t i = 1; i < k; i++)
		c = c << 6 | (s[i] & 0x3f);
	return c;
}

/* s (what: its name for messages; NULL: empty) as code points into *t,
 * cleaned as the file header says; LF kept if multiline, else a space.
 * Two passes (count, fill) so TAB expansion cannot overflow. */
static int
utf32(struct fr *f, const char *what, const char *s, int multiline,
    struct fr_text *t)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	size_t len = strlen((const char *)p);

	t->cp = NULL;
	t->n = 0;
	for (int pass = 0; pass < 2; pass++) {
		size_t o = 0, col = 0, k;

		for (size_t i = 0; i < len; i += k) {
			uint32_t c;

			if ((k = ingest_utf8_seq(p + i, len - i)) == 0)
				return fr_fail(f, "fax: the %s is not valid "
				    "UTF-8 (byte %zu of %zu: 0x%02x)", what,
				    i + 1, len, p[i]);
			c = utf8_cp(p + i, k);
			if (c == '\r' || invisible(c))
				continue;
			if (c == '\t') {
				size_t sp = TAB_COLUMNS - col % TAB_COLUMNS;

				if (pass == 1)
					for (size_t j = 0; j < sp; j++)
						t->cp[o + j] = ' ';
				o += sp;
				col += sp;
				continue;
			}
			if (c == '\n' && multiline)
				col = 0;
			else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
				c = ' ';
				col++;
			} else
				col += is_wide(c) ? 2 : 1;
			if (pass == 1)
				t->cp[o] = c;
			o++;
		}
		if (pass == 0) {
			if (o > SIZE_MAX / sizeof(uint32_t) - 1)
				return fr_fail(f, "fax: the %s is too long",
				    what);
			if ((t->cp = malloc((o + 1) * sizeof(uint32_t))) ==
			    NULL)
				return fr_fail(f, "fax: out of memory");
		} else
			t->n = o;
	}
	return 0;
}

/* ---- FreeType ---------------------------------------------------------- */

/* Set the face to style st. */
static int
set_style(struct fr *f, int st)
{
	FT_Error e;

	if (f->style == st)
		return 0;
	e = FT_Set_Char_Size(f->face, 0, style_def[st].pt10 * 64 / 10, XDPI,
	    (FT_UInt)f->ydpi);
	if (e != 0)
		return fr_fail(f, "fax: the font cannot be scaled to %d.%d pt "
		    "(FreeType error 0x%02x)", style_def[st].pt10 / 10,
		    style_def[st].pt10 % 10, e);
	f->style = st;
	return 0;
}

/* The advance of c in the current style, 26.6 pixels.  A character the
 * font lacks gets the placeholder's: a full em if wide, half otherwise. */
static int32_t
advance(struct fr *f, uint32_t c)
{
	const struct fr_metrics *m = &f->m[f->style];
	FT_UInt gi = FT_Get_Char_Index(f->face, c);
	FT_Fixed a;

	if (gi == 0 || FT_Get_Advance(f->face, gi, LOAD_FLAGS, &a) != 0)
		return is_wide(c) ? m->em_x : m->em_x / 2;
	return (int32_t)(a >> 10) + m->bold_x;
}

static void
fr_free(struct fr *f)
{
	for (size_t i = 0; i < f->nitems; i++)
		free(f->items[i].cp);
	free(f->items);
	f->items = NULL;
	f->nitems = f->itemcap = 0;
	if (f->face != NULL)
		FT_Done_Face(f->face);
	if (f->lib != NULL)
		FT_Done_FreeType(f->lib);
	f->face = NULL;
	f->lib = NULL;
}

/* Load the font and work out the metrics of every style. */
static int
fr_open(struct fr *f, const char *font)
{
	FT_Error e;

	if (font == NULL || font[0] == '\0')
		return fr_fail(f, "fax: no font configured");
	if ((e = FT_Init_FreeType(&f->lib)) != 0) {
		f->lib = NULL;
		return fr_fail(f, "fax: FreeType cannot start (error 0x%02x)",
		    e);
	}
	if (access(font, R_OK) != 0)
		return fr_fail(f, "fax: font %s: %s", font, strerror(errno));
	if ((e = FT_New_Face(f->lib, font, 0, &f->face)) != 0) {
		f->face = NULL;
		return fr_fail(f, "fax: font %s: not a font FreeType can load "
		    "(error 0x%02x)", font, e);
	}
	if (FT_Select_Charmap(f->face, FT_ENCODING_UNICODE) != 0)
		return fr_fail(f, "fax: font %s has no Unicode character map",
		    font);
	if (!FT_IS_SCALABLE(f->face))
		return fr_fail(f, "fax: font %s is a bitmap font: a scalable "
		    "(TrueType/OpenType) font is needed", font);
	/* The ascender's share of ascender + descender places the baseline
	 * (IPA fonts: 0.88 of the em). */
	f->asc_num = f->face->ascender;
	f->asc_den = f->face->ascender - f->face->descender;
	if (f->asc_num <= 0 || f->asc_den <= 0 || f->asc_num > f->asc_den) {
		f->asc_num = 88;
		f->asc_den = 100;
	}
	for (int st = 0; st < FS_COUNT; st++) {
		struct fr_metrics *m = &f->m[st];
		int pt10 = style_def[st].pt10;

		m->em_x = pt10 * XDPI * 64 / 720;
		m->em_y = (pt10 * f->ydpi + 360) / 720;
		m->pitch = (m->em_y * style_def[st].pitch + 50) / 100;
		m->base = (m->pitch - m->em_y) / 2 +
		    (m->em_y * f->asc_num + f->asc_den / 2) / f->asc_den;
		if (style_def[st].bold) {
			/* Strokes a thirtieth of the em thicker across,
			 * less down: at 98 dpi more closes the counters of
			 * dense kanji (確, 認). */
			m->bold_x = m->em_x / 30;
			m->bold_y = m->em_y * 64 / 45;
		}
	}
	f->style = -1;
	return 0;
}

/* ---- the display list -------------------------------------------------- */

static struct fr_item *
add_item(struct fr *f, int kind)
{
	struct fr_item *it;

	if (f->nitems == f->itemcap) {
		size_t cap = f->itemcap == 0 ? 64 : f->itemcap * 2;
		struct fr_item *n;

		if (cap > SIZE_MAX / sizeof(*n) ||
		    (n = realloc(f->items, cap * sizeof(*n))) == NULL) {
			fr_fail(f, "fax: out of memory");
			return NULL;
		}
		f->items = n;
		f->itemcap = cap;
	}
	it = &f->items[f->nitems++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->page = f->page;
	return it;
}

static int
add_rect(struct fr *f, int page, int x, int y, int w, int h)
{
	struct fr_item *it = add_item(f, IT_RECT);

	if (it == NULL)
		return -1;
	it->page = page;
	it->x = x;
	it->y = y;
	it->w = w;
	it->h = h;
	return 0;
}

/* A frame of thickness tx across, ty down, outside w x h at x, y. */
static int
add_frame(struct fr *f, int page, int x, int y, int w, int h, int tx, int ty)
{
	if (add_rect(f, page, x, y, w, ty) == -1 ||
	    add_rect(f, page, x, y + h - ty, w, ty) == -1 ||
	    add_rect(f, page, x, y, tx, h) == -1 ||
	    add_rect(f, page, x + w - tx, y, tx, h) == -1)
		return -1;
	return 0;
}

/* Text cp[0..n) as one item at pen x, baseline y on page; copied. */
static int
add_text(struct fr *f, int page, int style, int x, int y,
    const uint32_t *cp, size_t n)
{
	struct fr_item *it;

	if (n == 0)
		return 0;
	if ((it = add_item(f, IT_TEXT)) == NULL)
		return -1;
	if ((it->cp = malloc(n * sizeof(uint32_t))) == NULL) {
		f->nitems--;
		return fr_fail(f, "fax: out of memory");
	}
	memcpy(it->cp, cp, n * sizeof(uint32_t));
	it->n = n;
	it->page = page;
	it->style = style;
	it->x = x;
	it->y = y;
	return 0;
}

/* Width of cp[0..n) in pixels (style set). */
static int
text_width(struct fr *f, const uint32_t *cp, size_t n)
{
	int64_t w = 0;

	for (size_t i = 0; i < n; i++)
		w += advance(f, cp[i]);
	return (int)((w + 63) >> 6);
}

/* The longest prefix of cp[0..n) at most maxw pixels wide (style set). */
static size_t
fit_prefix(struct fr *f, const uint32_t *cp, size_t n, int maxw)
{
	int64_t w = 0, lim = (int64_t)maxw * 64;
	size_t k;

	for (k = 0; k < n; k++) {
		w += advance(f, cp[k]);
		if (w > lim)
			break;
	}
	return k;
}

/* Wrapped lines of t in style st, width pixels: *spans (caller frees),
 * *nspans. */
static int
wrap_text(struct fr *f, const struct fr_text *t, int st, int width,
    struct fax_span **spans, size_t *nspans)
{
	int32_t *adv;

	*spans = NULL;
	*nspans = 0;
	if (t->n == 0)
		return 0;
	if (set_style(f, st) == -1)
		return -1;
	if (t->n > SIZE_MAX / sizeof(struct fax_span) ||
	    (adv = malloc(t->n * sizeof(int32_t))) == NULL)
		return fr_fail(f, "fax: out of memory");
	if ((*spans = malloc(t->n * sizeof(struct fax_span))) == NULL) {
		free(adv);
		return fr_fail(f, "fax: out of memory");
	}
	for (size_t i = 0; i < t->n; i++)
		adv[i] = t->cp[i] == '\n' ? 0 : advance(f, t->cp[i]);
	*nspans = fax_wrap(t->cp, adv, t->n, (int32_t)width * 64, *spans,
	    t->n);
	free(adv);
	return 0;
}

static int
new_page(struct fr *f)
{
	if (f->page + 1 >= FAX_MAX_PAGES)
		return fr_fail(f, "fax: the alert needs more than %d pages",
		    FAX_MAX_PAGES);
	f->page++;
	f->y = f->top;
	return 0;
}

/* Lines of t, style st, aligned in [x, x + width), from the cursor on;
 * onto new pages when the page is full unless keep (the caller has made
 * room).  A blank line at the top of a page is dropped. */
static int
flow(struct fr *f, const struct fr_text *t, int st, int x, int width,
    int align, int keep)
{
	const struct fr_metrics *m = &f->m[st];
	struct fax_span *sp;
	size_t ns;
	int rc = 0;

	if (wrap_text(f, t, st, width, &sp, &ns) == -1)
		return -1;
	for (size_t i = 0; i < ns && rc == 0; i++) {
		const uint32_t *cp = t->cp + sp[i].start;
		int lx = x;

		if (!keep && f->y + m->pitch > f->bottom &&
		    (rc = new_page(f)) == -1)
			break;
		if (sp[i].len == 0 && f->y == f->top && f->page > 0)
			continue;
		if (align != AL_LEFT) {
			int w = text_width(f, cp, sp[i].len);

			lx += align == AL_CENTRE ? (width - w) / 2 : width - w;
		}
		rc = add_text(f, f->page, st, lx, f->y + m->base, cp,
		    sp[i].len);
		f->y += m->pitch;
	}
	free(sp);
	return rc;
}

/* Rows t takes in style st wrapped to width, or -1. */
static int
text_rows(struct fr *f, const struct fr_text *t, int st, int width)
{
	struct fax_span *sp;
	size_t ns;

	if (wrap_text(f, t, st, width, &sp, &ns) == -1)
		return -1;
	free(sp);
	if (ns > (size_t)(INT_MAX / f->m[st].pitch))
		return fr_fail(f, "fax: the confirmation box is too long");
	return (int)ns * f->m[st].pitch;
}

/* The confirmation box: box_title, the code large, box_lines, in a frame
 * the width of the text, all on one page (the next one if it does not
 * fit on this one). */
static int
layout_box(struct fr *f, const struct fr_text *title,
    const struct fr_text *code, const struct fr_text *lines)
{
	int bx = mmx(BOX_BORDER), by = mmy(f, BOX_BORDER);
	int px = mmx(BOX_PAD), py = mmy(f, BOX_PAD);
	int x = mmx(MARGIN_X), w = FAX_WIDTH - 2 * mmx(MARGIN_X);
	int iw = w - 2 * (bx + px), gap = mmy(f, BOX_INNER_GAP);
	int rt, rc, rl, h, top, parts;

	if (title->n == 0 && code->n == 0 && lines->n == 0)
		return 0;
	if ((rt = text_rows(f, title, FS_BOXTITLE, iw)) == -1 ||
	    (rc = text_rows(f, code, FS_CODE, iw)) == -1 ||
	    (rl = text_rows(f, lines, FS_BODY, iw)) == -1)
		return -1;
	parts = (rt > 0) + (rc > 0) + (rl > 0);
	h = 2 * (by + py) + rt + rc + rl + (parts - 1) * gap;
	if (h > f->bottom - f->top)
		return fr_fail(f, "fax: the confirmation box (box_title, "
		    "code, box_lines) is taller than a page");
	if (f->y > f->top)
		f->y += mmy(f, BOX_GAP);
	if (f->y + h > f->bottom && new_page(f) == -1)
		return -1;
	top = f->y;
	if (add_frame(f, f->page, x, top, w, h, bx, by) == -1)
		return -1;
	f->y = top + by + py;
	if (flow(f, title, FS_BOXTITLE, x + bx + px, iw, AL_LEFT, 1) == -1)
		return -1;
	if (rt > 0 && rc + rl > 0)
		f->y += gap;
	if (flow(f, code, FS_CODE, x + bx + px, iw, AL_CENTRE, 1) == -1)
		return -1;
	if (rc > 0 && rl > 0)
		f->y += gap;
	if (flow(f, lines, FS_BODY, x + bx + px, iw, AL_LEFT, 1) == -1)
		return -1;
	f->y = top + h;
	return 0;
}

/* Header band geometry: the TLP box's height and the rule's row. */
static int
header_height(const struct fr *f)
{
	return f->m[FS_TLP].em_y + 2 * (mmy(f, TLP_PAD_Y) + mmy(f, TLP_BORDER));
}

/* The header of page pg of np: header text (cut with "…" if too long),
 * "n/m", the TLP label boxed at the right, a rule under them. */
static int
layout_header(struct fr *f, int pg, int np, const struct fr_text *hdr,
    const struct fr_text *tlp)
{
	int left = mmx(MARGIN_X), right = FAX_WIDTH - mmx(MARGIN_X);
	int top = mmy(f, MARGIN_TOP), hh = header_height(f);
	int bx = mmx(TLP_BORDER), by = mmy(f, TLP_BORDER);
	int base = top + by + mmy(f, TLP_PAD_Y) + (f->m[FS_TLP].em_y *
	    f->asc_num + f->asc_den / 2) / f->asc_den;
	int limit = right, w;
	uint32_t nm[24];
	char buf[24];
	size_t n, k;

	if (tlp->n > 0) {
		if (set_style(f, FS_TLP) == -1)
			return -1;
		/* At most half the width: cut a label that long. */
		if ((n = fit_prefix(f, tlp->cp, tlp->n, FAX_WIDTH / 2)) == 0)
			n = 1;
		w = text_width(f, tlp->cp, n) + 2 * (bx + mmx(TLP_PAD_X));
		limit = right - w;
		if (add_frame(f, pg, limit, top, w, hh, bx, by) == -1 ||
		    add_text(f, pg, FS_TLP, limit + bx + mmx(TLP_PAD_X), base,
		    tlp->cp, n) == -1)
			return -1;
		limit -= mmx(NM_GAP);
	}
	snprintf(buf, sizeof(buf), "%d/%d", pg + 1, np);
	for (k = 0; buf[k] != '\0'; k++)
		nm[k] = (unsigned char)buf[k];
	if (set_style(f, FS_HEADER) == -1)
		return -1;
	w = text_width(f, nm, k);
	limit -= w;
	if (add_text(f, pg, FS_HEADER, limit, base, nm, k) == -1)
		return -1;
	limit -= mmx(NM_GAP);
	if (hdr->n > 0) {
		static const uint32_t ell = 0x2026;
		int ew = text_width(f, &ell, 1);

		n = hdr->n;
		if (fit_prefix(f, hdr->cp, n, limit - left) < n) {
			n = fit_prefix(f, hdr->cp, n, limit - left - ew);
			if (add_text(f, pg, FS_HEADER,
			    left + text_width(f, hdr->cp, n), base, &ell,
			    1) == -1)
				return -1;
		}
		if (add_text(f, pg, FS_HEADER, left, base, hdr->cp, n) == -1)
			return -1;
	}
	return add_rect(f, pg, left, top + hh + mmy(f, RULE_GAP),
	    right - left, mmy(f, RULE) > 0 ? mmy(f, RULE) : 1);
}

/* ---- drawing ----------------------------------------------------------- */

static void
fill(struct fax_pages *p, int pg, int x, int y, int w, int h)
{
	int x0 = x < 0 ? 0 : x, x1 = x + w > FAX_WIDTH ? FAX_WIDTH : x + w;
	int y0 = y < 0 ? 0 : y, y1 = y + h > p->rows[pg] ? p->rows[pg] : y + h;

	for (int r = y0; r < y1; r++) {
		uint8_t *row = p->bits[pg] + (size_t)r * FAX_ROWBYTES;

		for (int c = x0; c < x1; c++)
			row[c >> 3] |= (uint8_t)(0x80 >> (c & 7));
	}
}

/* A glyph's bitmap with its top left at x, y; grey thresholded. */
static void
blit(struct fax_pages *p, int pg, const FT_Bitmap *b, int x, int y)
{
	for (unsigned r = 0; r < b->rows; r++) {
		const unsigned char *src = b->buffer + (ptrdiff_t)r * b->pitch;
		int py = y + (int)r;
		uint8_t *row;

		if (py < 0 || py >= p->rows[pg])
			continue;
		row = p->bits[pg] + (size_t)py * FAX_ROWBYTES;
		for (unsigned c = 0; c < b->width; c++) {
			int px = x + (int)c, on;

			if (px < 0 || px >= FAX_WIDTH)
				continue;
			if (b->pixel_mode == FT_PIXEL_MODE_MONO)
				on = src[c >> 3] & (0x80 >> (c & 7));
			else
				on = src[c] >= GREY_THRESHOLD;
			if (on)
				row[px >> 3] |= (uint8_t)(0x80 >> (px & 7));
		}
	}
}

/* The placeholder for a character the font lacks: an open box. */
static void
draw_notdef(struct fr *f, struct fax_pages *p, int pg, int x, int base,
    int adv)
{
	const struct fr_metrics *m = &f->m[f->style];
	int w = adv * 8 / 10, h = m->em_y * 7 / 10;
	int tx = mmx(NOTDEF_LINE), ty = mmy(f, NOTDEF_LINE);

	if (ty < 1)
		ty = 1;
	x += adv / 10;
	fill(p, pg, x, base - h, w, ty);
	fill(p, pg, x, base - ty, w, ty);
	fill(p, pg, x, base - h, tx, h);
	fill(p, pg, x + w - tx, base - h, tx, h);
}

static int
draw_text(struct fr *f, struct fax_pages *p, const struct fr_item *it)
{
	const struct fr_metrics *m;
	FT_GlyphSlot g = f->face->glyph;
	int64_t pen = (int64_t)it->x * 64;

	if (set_style(f, it->style) == -1)
		return -1;
	m = &f->m[it->style];
	for (size_t i = 0; i < it->n; i++) {
		uint32_t c = it->cp[i];
		FT_UInt gi = FT_Get_Char_Index(f->face, c);
		int32_t a = advance(f, c);
		int x = (int)((pen + 32) >> 6);

		pen += a;
		if (is_space(c))
			continue;
		if (gi == 0 || FT_Load_Glyph(f->face, gi, LOAD_FLAGS) != 0) {
			draw_notdef(f, p, it->page, x, it->y, (a + 32) >> 6);
			continue;
		}
		if (g->format == FT_GLYPH_FORMAT_OUTLINE && m->bold_x > 0)
			FT_Outline_EmboldenXY(&g->outline, m->bold_x,
			    m->bold_y);
		if (FT_Render_Glyph(g, FT_RENDER_MODE_NORMAL) != 0) {
			draw_notdef(f, p, it->page, x, it->y, (a + 32) >> 6);
			continue;
		}
		blit(p, it->page, &g->bitmap, x + g->bitmap_left,
		    it->y - g->bitmap_top);
	}
	return 0;
}

static int
alloc_pages(struct fr *f, struct fax_pages *out, int np, int fine)
{
	size_t bytes = (size_t)f->rows * FAX_ROWBYTES;

	out->n = 0;
	out->fine = fine;
	if (np <= 0 || np > FAX_MAX_PAGES)
		return fr_fail(f, "fax: %d pages", np);
	out->rows = calloc((size_t)np, sizeof(int));
	out->bits = calloc((size_t)np, sizeof(uint8_t *));
	if (out->rows == NULL || out->bits == NULL)
		return fr_fail(f, "fax: out of memory");
	for (int i = 0; i < np; i++) {
		if ((out->bits[i] = calloc(bytes, 1)) == NULL)
			return fr_fail(f, "fax: out of memory for %d pages",
			    np);
		out->rows[i] = f->rows;
		out->n = i + 1;
	}
	return 0;
}

int
fax_render(const struct fax_doc *d, struct fax_pages *out, char *err,
    size_t errlen)
{
	enum { T_HEADER, T_TLP, T_TITLE, T_BODY, T_BOXTITLE, T_CODE,
	    T_BOXLINES, T_COUNT };
	static const char *names[T_COUNT] = { "header", "TLP label",
	    "title", "body", "box title", "confirmation code", "box lines" };
	const char *src[T_COUNT];
	struct fr_text t[T_COUNT];
	struct fr f;
	int rc = -1, np, left, width;

	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));
	memset(t, 0, sizeof(t));
	f.err = err;
	f.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	f.ydpi = d->fine ? YDPI_FINE : YDPI_NORMAL;
	f.rows = d->fine ? ROWS_FINE : ROWS_NORMAL;
	src[T_HEADER] = d->header;
	src[T_TLP] = d->tlp;
	src[T_TITLE] = d->title;
	src[T_BODY] = d->body;
	src[T_BOXTITLE] = d->box_title;
	src[T_CODE] = d->code;
	src[T_BOXLINES] = d->box_lines;
	for (int i = 0; i < T_COUNT; i++)
		if (utf32(&f, names[i], src[i], i == T_TITLE ||
		    i == T_BODY || i == T_BOXTITLE || i == T_BOXLINES,
		    &t[i]) == -1)
			goto done;
	if (fr_open(&f, d->font) == -1)
		goto done;

	left = mmx(MARGIN_X);
	width = FAX_WIDTH - 2 * left;
	f.top = mmy(&f, MARGIN_TOP) + header_height(&f) + mmy(&f, RULE_GAP) +
	    mmy(&f, RULE) + mmy(&f, CONTENT_GAP);
	f.bottom = f.rows - mmy(&f, MARGIN_BOTTOM);
	f.page = 0;
	f.y = f.top;
	if (flow(&f, &t[T_TITLE], FS_TITLE, left, width, AL_LEFT, 0) == -1)
		goto done;
	if (t[T_TITLE].n > 0)
		f.y += mmy(&f, TITLE_GAP);
	if (flow(&f, &t[T_BODY], FS_BODY, left, width, AL_LEFT, 0) == -1 ||
	    layout_box(&f, &t[T_BOXTITLE], &t[T_CODE], &t[T_BOXLINES]) == -1)
		goto done;
	np = f.page + 1;
	for (int pg = 0; pg < np; pg++)
		if (layout_header(&f, pg, np, &t[T_HEADER], &t[T_TLP]) == -1)
			goto done;

	if (alloc_pages(&f, out, np, d->fine != 0) == -1)
		goto done;
	for (size_t i = 0; i < f.nitems; i++) {
		const struct fr_item *it = &f.items[i];

		if (it->kind == IT_RECT)
			fill(out, it->page, it->x, it->y, it->w, it->h);
		else if (draw_text(&f, out, it) == -1)
			goto done;
	}
	rc = 0;
done:
	if (rc == -1)
		fax_pages_free(out);
	for (int i = 0; i < T_COUNT; i++)
		free(t[i].cp);
	fr_free(&f);
	return rc;
}

void
fax_pages_free(struct fax_pages *p)
{
	if (p == NULL)
		return;
	if (p->bits != NULL)
		for (int i = 0; i < p->n; i++)
			free(p->bits[i]);
	free(p->bits);
	free(p->rows);
	memset(p, 0, sizeof(*p));
}

/* ---- TIFF Class F ------------------------------------------------------ */

static int
pages_ok(const struct fax_pages *p, const char *path, char *err,
    size_t errlen)
{
	if (p == NULL || p->n <= 0 || p->n > FAX_MAX_PAGES ||
	    p->rows == NULL || p->bits == NULL) {
		snprintf(err, errlen, "fax: %s: no pages to write", path);
		return -1;
	}
	for (int i = 0; i < p->n; i++)
		if (p->bits[i] == NULL || p->rows[i] <= 0 ||
		    p->rows[i] > ROWS_FINE) {
			snprintf(err, errlen, "fax: %s: page %d is empty or "
			    "longer than A4", path, i + 1);
			return -1;
		}
	return 0;
}

/* libtiff's first error message, for err. */
struct tiff_msg {
	char	text[256];
	int	set;
};

static int
tiff_error(TIFF *tif, void *user, const char *module, const char *fmt,
    va_list ap)
{
	struct tiff_msg *m = user;

	if (!m->set) {
		vsnprintf(m->text, sizeof(m->text), fmt, ap);
		m->set = 1;
	}
	return 1;
}

static int
tiff_warning(TIFF *tif, void *user, const char *module, const char *fmt,
    va_list ap)
{
	return 1;	/* none that matter when writing */
}

/* The tags of one page (i of n). */
static int
tiff_page_tags(TIFF *tif, const struct fax_pages *p, int i)
{
	return TIFFSetField(tif, TIFFTAG_SUBFILETYPE, (uint32_t)FILETYPE_PAGE) &&
	    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)FAX_WIDTH) &&
	    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)p->rows[i]) &&
	    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 1) &&
	    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1) &&
	    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX3) &&
	    TIFFSetField(tif, TIFFTAG_GROUP3OPTIONS,
	    (uint32_t)GROUP3OPT_FILLBITS) &&
	    TIFFSetField(tif, TIFFTAG_FAXMODE, FAXMODE_CLASSF) &&
	    TIFFSetField(tif, TIFFTAG_FILLORDER, FILLORDER_MSB2LSB) &&
	    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE) &&
	    TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT) &&
	    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
	    TIFFSetField(tif, TIFFTAG_XRESOLUTION, (double)XDPI) &&
	    TIFFSetField(tif, TIFFTAG_YRESOLUTION,
	    (double)(p->fine ? YDPI_FINE : YDPI_NORMAL)) &&
	    TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH) &&
	    TIFFSetField(tif, TIFFTAG_PAGENUMBER, i, p->n) &&
	    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, (uint32_t)p->rows[i]) &&
	    TIFFSetField(tif, TIFFTAG_CLEANFAXDATA, CLEANFAXDATA_CLEAN) &&
	    TIFFSetField(tif, TIFFTAG_SOFTWARE, "dengon");
}

int
fax_write_tiff(const struct fax_pages *p, const char *path, char *err,
    size_t errlen)
{
	struct tiff_msg msg = { .set = 0 };
	TIFFOpenOptions *opts;
	uint8_t row[FAX_ROWBYTES];
	TIFF *tif;
	int fd, ok = 1;

	if (pages_ok(p, path, err, errlen) == -1)
		return -1;
	if ((opts = TIFFOpenOptionsAlloc()) == NULL) {
		snprintf(err, errlen, "fax: %s: out of memory", path);
		return -1;
	}
	TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_error, &msg);
	TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warning, &msg);
	/* Read and write: libtiff reads the previous directory back to
	 * link the next one. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		snprintf(err, errlen, "fax: %s: %s", path, strerror(errno));
		TIFFOpenOptionsFree(opts);
		return -1;
	}
	tif = TIFFFdOpenExt(fd, path, "w", opts);
	TIFFOpenOptionsFree(opts);
	if (tif == NULL) {
		close(fd);
		unlink(path);
		snprintf(err, errlen, "fax: %s: libtiff cannot write it: %s",
		    path, msg.set ? msg.text : "unknown error");
		return -1;
	}
	for (int i = 0; i < p->n && ok; i++) {
		ok = tiff_page_tags(tif, p, i);
		for (int r = 0; r < p->rows[i] && ok; r++) {
			/* A copy: a codec may scribble on the row. */
			memcpy(row, p->bits[i] + (size_t)r * FAX_ROWBYTES,
			    FAX_ROWBYTES);
			ok = TIFFWriteScanline(tif, row, (uint32_t)r, 0) == 1;
		}
		if (ok)
			ok = TIFFWriteDirectory(tif) == 1;
	}
	TIFFClose(tif);		/* closes fd */
	if (!ok || msg.set) {
		unlink(path);
		snprintf(err, errlen, "fax: %s: cannot write the TIFF: %s",
		    path, msg.set ? msg.text : "libtiff failed");
		return -1;
	}
	return 0;
}

/* ---- PNG --------------------------------------------------------------- */

#define PNG_SEPARATOR	24	/* rows of grey between pages */
#define PNG_GREY	0x99

struct png_msg {
	char	text[256];
};

static void
png_error_fn(png_structp png, png_const_charp msg)
{
	struct png_msg *m = png_get_error_ptr(png);

	snprintf(m->text, sizeof(m->text), "%s", msg);
	png_longjmp(png, 1);
}

static void
png_warning_fn(png_structp png, png_const_charp msg)
{
}

/* The image: header, rows; libpng's errors come back here as -1. */
static int
png_rows(png_structp png, png_infop info, const struct fax_pages *p,
    uint8_t *row, uint32_t height)
{
	if (setjmp(png_jmpbuf(png)))
		return -1;
	png_set_IHDR(png, info, FAX_WIDTH, height, 8, PNG_COLOR_TYPE_GRAY,
	    PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
	    PNG_FILTER_TYPE_DEFAULT);
	png_set_pHYs(png, info, (png_uint_32)(XDPI * 10000 / 254),
	    (png_uint_32)(XDPI * 10000 / 254), PNG_RESOLUTION_METER);
	png_set_filter(png, 0, PNG_FILTER_NONE);
	png_write_info(png, info);
	for (int i = 0; i < p->n; i++) {
		if (i > 0) {
			memset(row, PNG_GREY, FAX_WIDTH);
			for (int r = 0; r < PNG_SEPARATOR; r++)
				png_write_row(png, row);
		}
		for (int r = 0; r < p->rows[i]; r++) {
			const uint8_t *src = p->bits[i] +
			    (size_t)r * FAX_ROWBYTES;

			for (int c = 0; c < FAX_WIDTH; c++)
				row[c] = src[c >> 3] & (0x80 >> (c & 7)) ?
				    0 : 255;
			png_write_row(png, row);
			if (!p->fine)
				png_write_row(png, row);
		}
	}
	png_write_end(png, info);
	return 0;
}

int
fax_write_png(const struct fax_pages *p, const char *path, char *err,
    size_t errlen)
{
	struct png_msg msg = { "" };
	png_structp png;
	png_infop info = NULL;
	uint8_t *row;
	uint64_t height = 0;
	FILE *fp;
	int fd, rc;

	if (pages_ok(p, path, err, errlen) == -1)
		return -1;
	for (int i = 0; i < p->n; i++)
		height += (uint64_t)p->rows[i] * (p->fine ? 1 : 2) +
		    (i > 0 ? PNG_SEPARATOR : 0);
	if ((row = malloc(FAX_WIDTH)) == NULL) {
		snprintf(err, errlen, "fax: %s: out of memory", path);
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || (fp = fdopen(fd, "wb")) == NULL) {
		snprintf(err, errlen, "fax: %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		free(row);
		return -1;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &msg,
	    png_error_fn, png_warning_fn);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
		snprintf(msg.text, sizeof(msg.text), "out of memory");
		rc = -1;
	} else {
		png_init_io(png, fp);
		rc = png_rows(png, info, p, row, (uint32_t)height);
	}
	png_destroy_write_struct(&png, &info);
	free(row);
	if (fclose(fp) != 0 && rc == 0) {
		snprintf(msg.text, sizeof(msg.text), "%s", strerror(errno));
		rc = -1;
	}
	if (rc == -1) {
		unlink(path);
		snprintf(err, errlen, "fax: %s: cannot write the PNG: %s",
		    path, msg.text);
	}
	return rc;
}
