/*
 * fax_render.h - an alert as A4 fax pages (TIFF Class F), and as PNG.
 *
 * channels/fax.c words the page (fax_doc: every string already in the
 * relay's language); this file lays it out and draws it with FreeType in
 * the configured font, then writes the pages:
 *
 *   - TIFF Class F: 1728 pixels wide, 204 dpi across, 98 (normal) or 196
 *     (fine) dpi down, A4 length (297 mm: 1143 or 2286 rows at most),
 *     1 bit per pixel, min-is-white, FillOrder MSB2LSB, G3 1-D (MH)
 *     compression with EOLs byte-aligned (Group3Options 4), one page per
 *     directory with PageNumber n/m, ResolutionUnit inch.  In the tags:
 *     SubFileType page, RowsPerStrip the page's rows (one strip),
 *     CleanFaxData clean, no RTC at the end of a page (libtiff's
 *     FAXMODE_CLASSF), PageNumber as TIFF counts (0 for the first page,
 *     then the page count).  Checked with HylaFAX's tiffcheck and
 *     faxinfo and efax's efix (which decodes it pixel for pixel).
 *   - PNG (a quick look for an operator): every page one below another,
 *     grey separator between pages, rows doubled at normal resolution so
 *     the aspect is right; 8-bit grey.
 *
 * Layout, on every page: a header line (fax_doc.header, then "n/m" at the
 * right) and the TLP label boxed at the top right; under it on the first
 * page the title in a large size, then the body; on the last page the
 * confirmation box (box_title, the code large, then box_lines).  Text is
 * wrapped to the width with Japanese line-breaking rules: no line starts
 * with a closing bracket or punctuation (。、」』）】〕！？ー ぁぃぅぇぉっゃゅょ
 * and their half-width and katakana forms) or ends with an opening one
 * (「『（【〔); Latin words are not cut when they fit on a line; an
 * over-long word or URL is cut anywhere.  More body than fits gives more
 * pages (n/m counts them); the box never straddles a page.
 *
 * Sizes: header 10 pt, TLP 12 pt bold, title 18 pt bold, body 12 pt, box
 * title 14 pt bold, code 28 pt bold; margins 10 mm (80 pixels across).
 * Every page is full A4 length (1143 or 2286 rows).  The confirmation box
 * is a frame 0.6 mm thick (5 pixels across) spanning the text width; the
 * header's rule spans it too.  Bold is synthetic (FreeType emboldening):
 * fonts such as IPA Gothic have none.
 *
 * The text, in every field: UTF-8 (anything else is refused, naming the
 * field and the byte); CR dropped; TAB to spaces up to the next multiple
 * of 8 columns (a CJK character counting two); other control characters
 * as a space; zero-width joiners, variation selectors and the BOM
 * dropped.  LF ends a line in title, body, box_title and box_lines, and
 * is a space in header, tlp and code (a header or TLP too long for its
 * place is cut, the header with "…").  A NULL field is empty; a field
 * that is empty takes no room (no title, no body, no box at all when
 * box_title, code and box_lines are all empty).  A character the font
 * lacks is drawn as an open box.
 */
#ifndef DENGON_FAX_RENDER_H
#define DENGON_FAX_RENDER_H

#include <stddef.h>
#include <stdint.h>

struct fax_doc {
	const char	*font;		/* a TrueType/OpenType file with CJK
					 * (IPA Gothic: /usr/share/fonts/
					 * opentype/ipafont-gothic/ipag.ttf) */
	int		 fine;		/* 1: 204x196 dpi; 0: 204x98 */
	const char	*header;	/* one line: sender, alert id, time */
	const char	*tlp;		/* "TLP:AMBER" */
	const char	*title;		/* the subject (may be long: wrapped) */
	const char	*body;		/* UTF-8, LF line ends, paragraphs */
	const char	*box_title;	/* e.g. "受信確認のお願い" */
	const char	*code;		/* "XXXX-XXXX", drawn large */
	const char	*box_lines;	/* LF-separated: name, how to confirm */
};

/* Pages as bitmaps: 1 bit per pixel, 1 = black, MSB first, rows of
 * FAX_WIDTH/8 bytes. */
#define FAX_WIDTH	1728
#define FAX_ROWBYTES	(FAX_WIDTH / 8)

struct fax_pages {
	int		 n;		/* pages */
	int		 fine;
	int		*rows;		/* rows of each page */
	uint8_t	       **bits;		/* each page: rows[i] * FAX_ROWBYTES */
};

/* At most this many pages (a body of some 90,000 characters). */
#define FAX_MAX_PAGES	50

/* Lay d out and draw it into *out (the caller frees it with
 * fax_pages_free()).  0, or -1 with err and *out all zero (a font that
 * cannot be loaded, naming its path; a field that is not UTF-8, naming
 * the field; more than FAX_MAX_PAGES pages; a confirmation box taller
 * than a page; out of memory).  d is only read; nothing is kept. */
int fax_render(const struct fax_doc *d, struct fax_pages *out, char *err,
    size_t errlen);
/* Free what fax_render() allocated and zero *p (again: harmless). */
void fax_pages_free(struct fax_pages *p);

/* Write the pages: TIFF Class F, or PNG.  0, or -1 with err naming path
 * (and no file left behind).  A new file is mode 0600 (less the umask):
 * an alert may be TLP:AMBER; an existing one is overwritten. */
int fax_write_tiff(const struct fax_pages *p, const char *path, char *err,
    size_t errlen);
int fax_write_png(const struct fax_pages *p, const char *path, char *err,
    size_t errlen);

/* Line breaking (exported for the unit test): may a line break fall
 * between the code points a and b?  Never before a space (spaces hang at
 * the end of a line) nor LF, never before a character that may not
 * start a line or after one that may not end it, never inside "……" or
 * "——"; otherwise after a space, and next to a CJK character (kana,
 * kanji, full- and half-width forms); not between two other characters
 * (a Latin word, a number, a URL). */
int fax_break_ok(uint32_t a, uint32_t b);

/* One line of fax_wrap(): cp[start .. start + len), trailing spaces not
 * counted. */
struct fax_span {
	size_t	start;
	size_t	len;
};

/* The lines of cp[0..n) in a width (adv: the advance of each character,
 * in the unit of width; that of LF is ignored).  LF ends a line (a final
 * LF adds no empty line); a line is broken at the last place
 * fax_break_ok() allows that keeps it within width (and not after an
 * opening bracket followed by spaces), spaces there dropped; where there
 * is none, a line is cut before the character that does not fit (at
 * least one character a line).  Spaces may run past the width.  Writes
 * the first max lines to lines[] and returns how many there are (at
 * most n).  Pure: no allocation, no state. */
size_t fax_wrap(const uint32_t *cp, const int32_t *adv, size_t n,
    int32_t width, struct fax_span *lines, size_t max);

#endif /* DENGON_FAX_RENDER_H */
