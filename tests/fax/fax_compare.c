/*
 * fax_compare.c - do two fax TIFFs show the same pages?  For the tests:
 * what a (virtual) fax machine received through HylaFAX against what
 * dengon rendered.
 *
 *   fax_compare [--tolerance PCT] [--shift ROWS] A.tif B.tif
 *
 * Both files are decoded with libtiff (any compression it knows: G3 1-D
 * or 2-D, G4, uncompressed...; 1 bit per pixel, min-is-white or
 * min-is-black) and compared page by page:
 *
 *   - the page count and each page's width must be equal;
 *   - pages are compared at the lower of the two vertical resolutions:
 *     the finer page is reduced by keeping one row in r (each phase
 *     tried) or by OR-ing r rows, whichever matches best, as a fax
 *     machine converting fine to normal does one or the other;
 *   - a vertical shift of up to --shift rows (default 2) is tried and
 *     the best kept; rows one page has beyond the other count only by
 *     their black pixels, so a few rows of white at the end (a received
 *     page is often a little longer or shorter) cost nothing;
 *   - the difference is the number of pixels black in one image and not
 *     the other, as a percentage of the pixels black in either.
 *
 * Prints one line per page and a verdict.  Exit status: 0 when every
 * page is within the tolerance (default 2 %), 1 when a page differs
 * more or the page counts or widths differ, 2 on bad usage or a file
 * that cannot be read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#define MAX_PAGES	1000
#define MAX_WIDTH	8192	/* pixels: 4864 is the widest fax (A3 at
				 * 400 dpi); room to spare */
#define MAX_ROWS	40000

/* One page, 1 = black, rows of (width + 7) / 8 bytes, MSB first. */
struct page {
	uint32_t	 width;
	uint32_t	 rows;
	size_t		 rowbytes;
	double		 yres;		/* dots per inch */
	uint8_t		*bits;
};

struct file {
	const char	*path;
	int		 n;
	struct page	*pages;
	int		 warnings;	/* from the decoder: damaged lines */
};

static unsigned char popcount8[256];

/* libtiff's messages: errors are fatal here, warnings only counted. */
static int
on_error(TIFF *tif, void *user, const char *module, const char *fmt,
    va_list ap)
{
	const struct file *f = user;

	fprintf(stderr, "fax_compare: %s: ", f->path);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	return 1;
}

static int
on_warning(TIFF *tif, void *user, const char *module, const char *fmt,
    va_list ap)
{
	struct file *f = user;

	f->warnings++;
	return 1;
}

static void
file_free(struct file *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->pages[i].bits);
	free(f->pages);
	f->pages = NULL;
	f->n = 0;
}

/* The vertical resolution of the current directory in dpi; 0 if the
 * file does not say. */
static double
yres_of(TIFF *t)
{
	float r = 0;
	uint16_t unit = RESUNIT_INCH;

	if (!TIFFGetField(t, TIFFTAG_YRESOLUTION, &r) || r <= 0)
		return 0;
	TIFFGetFieldDefaulted(t, TIFFTAG_RESOLUTIONUNIT, &unit);
	if (unit == RESUNIT_CENTIMETER)
		return r * 2.54;
	if (unit == RESUNIT_NONE)
		return 0;
	return r;
}

/* Decode the current directory into pg.  0, or -1 (said why). */
static int
read_page(struct file *f, TIFF *t, struct page *pg)
{
	uint16_t bps = 1, spp = 1, photo = PHOTOMETRIC_MINISWHITE;
	uint32_t w = 0, h = 0;
	int no = f->n + 1;

	TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
	TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
	if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) ||
	    !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h)) {
		fprintf(stderr, "fax_compare: %s: page %d has no size\n",
		    f->path, no);
		return -1;
	}
	if (bps != 1 || spp != 1) {
		fprintf(stderr, "fax_compare: %s: page %d has %u bits per "
		    "sample and %u samples per pixel: a fax page has 1 and "
		    "1\n", f->path, no, bps, spp);
		return -1;
	}
	if (TIFFIsTiled(t)) {
		fprintf(stderr, "fax_compare: %s: page %d is tiled: not a "
		    "fax page\n", f->path, no);
		return -1;
	}
	if (w == 0 || w > MAX_WIDTH || h == 0 || h > MAX_ROWS) {
		fprintf(stderr, "fax_compare: %s: page %d is %ux%u pixels: "
		    "not a fax page\n", f->path, no, w, h);
		return -1;
	}
	if (!TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo))
		photo = PHOTOMETRIC_MINISWHITE;		/* fax default */
	pg->width = w;
	pg->rows = h;
	pg->rowbytes = (w + 7) / 8;
	pg->yres = yres_of(t);
	if (pg->yres == 0) {
		/* Guess: a normal A4 page is 1143 rows, a fine one 2286. */
		pg->yres = h > 1600 ? 196 : 98;
		fprintf(stderr, "fax_compare: %s: page %d has no vertical "
		    "resolution; taken as %.0f dpi\n", f->path, no, pg->yres);
	}
	if ((size_t)TIFFScanlineSize(t) != pg->rowbytes) {
		fprintf(stderr, "fax_compare: %s: page %d: unexpected "
		    "scanline size\n", f->path, no);
		return -1;
	}
	if ((pg->bits = calloc(h, pg->rowbytes)) == NULL) {
		fprintf(stderr, "fax_compare: out of memory\n");
		return -1;
	}
	for (uint32_t r = 0; r < h; r++) {
		uint8_t *row = pg->bits + (size_t)r * pg->rowbytes;

		if (TIFFReadScanline(t, row, r, 0) != 1) {
			fprintf(stderr, "fax_compare: %s: page %d: cannot "
			    "decode row %u\n", f->path, no, r);
			return -1;
		}
		if (photo == PHOTOMETRIC_MINISBLACK)
			for (size_t i = 0; i < pg->rowbytes; i++)
				row[i] = (uint8_t)~row[i];
		if (w % 8 != 0)		/* padding bits: never black */
			row[pg->rowbytes - 1] &= (uint8_t)(0xff << (8 - w % 8));
	}
	return 0;
}

static int
load(struct file *f)
{
	TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
	TIFF *t;
	int rc = 0;

	if (o == NULL) {
		fprintf(stderr, "fax_compare: out of memory\n");
		return -1;
	}
	TIFFOpenOptionsSetErrorHandlerExtR(o, on_error, f);
	TIFFOpenOptionsSetWarningHandlerExtR(o, on_warning, f);
	t = TIFFOpenExt(f->path, "r", o);
	TIFFOpenOptionsFree(o);
	if (t == NULL) {
		fprintf(stderr, "fax_compare: %s: cannot open as TIFF\n",
		    f->path);
		return -1;
	}
	if ((f->pages = calloc(MAX_PAGES, sizeof(*f->pages))) == NULL) {
		TIFFClose(t);
		fprintf(stderr, "fax_compare: out of memory\n");
		return -1;
	}
	do {
		if (f->n == MAX_PAGES) {
			fprintf(stderr, "fax_compare: %s: more than %d pages\n",
			    f->path, MAX_PAGES);
			rc = -1;
			break;
		}
		rc = read_page(f, t, &f->pages[f->n]);
		f->n++;		/* so that file_free() frees it */
	} while (rc == 0 && TIFFReadDirectory(t));
	TIFFClose(t);
	return rc;
}

/* Row y of pg reduced by r (phase >= 0: row y * r + phase; -1: the OR of
 * rows y * r .. y * r + r - 1) into out; NULL past the end (white). */
static const uint8_t *
row_at(const struct page *pg, long y, int r, int phase, uint8_t *out)
{
	long first = y * r;

	if (y < 0 || first >= (long)pg->rows)
		return NULL;
	if (r == 1)
		return pg->bits + (size_t)first * pg->rowbytes;
	if (phase >= 0) {
		if (first + phase >= (long)pg->rows)
			return NULL;
		return pg->bits + (size_t)(first + phase) * pg->rowbytes;
	}
	memset(out, 0, pg->rowbytes);
	for (long k = first; k < first + r && k < (long)pg->rows; k++)
		for (size_t i = 0; i < pg->rowbytes; i++)
			out[i] |= pg->bits[(size_t)k * pg->rowbytes + i];
	return out;
}

struct score {
	uint64_t	diff;		/* black in one, not the other */
	uint64_t	black;		/* black in either */
	long		shift;		/* B's rows against A's */
	int		phase;		/* -1: OR, else the row kept */
};

/* Compare a (reduced by ra) with b (by rb), b shifted by d rows. */
static struct score
compare_at(const struct page *a, int ra, int pa, const struct page *b,
    int rb, int pb, long d, uint8_t *ta, uint8_t *tb)
{
	struct score s = { 0, 0, d, ra > 1 ? pa : pb };
	long ha = ((long)a->rows + ra - 1) / ra;
	long hb = ((long)b->rows + rb - 1) / rb;
	long y0 = d < 0 ? d : 0, y1 = ha > hb - d ? ha : hb - d;

	for (long y = y0; y < y1; y++) {
		const uint8_t *x = row_at(a, y, ra, pa, ta);
		const uint8_t *z = row_at(b, y + d, rb, pb, tb);

		for (size_t i = 0; i < a->rowbytes; i++) {
			uint8_t u = x != NULL ? x[i] : 0;
			uint8_t v = z != NULL ? z[i] : 0;

			s.diff += popcount8[u ^ v];
			s.black += popcount8[u | v];
		}
	}
	return s;
}

/* Is s better than best: fewer differences, then the smaller shift? */
static int
better(const struct score *s, const struct score *best)
{
	long as = s->shift < 0 ? -s->shift : s->shift;
	long ab = best->shift < 0 ? -best->shift : best->shift;

	return s->diff < best->diff || (s->diff == best->diff && as < ab);
}

/* Page i of both files; its percentage into *pct.  0, 1 (cannot be
 * compared: said why), or -1 (out of memory). */
static int
compare_page(const struct page *a, const struct page *b, int i,
    long maxshift, double *pct, struct score *best)
{
	double hi = a->yres > b->yres ? a->yres : b->yres;
	double lo = a->yres > b->yres ? b->yres : a->yres;
	int r = (int)(hi / lo + 0.5), ra, rb;
	uint8_t *ta, *tb;

	if (a->width != b->width) {
		printf("page %d: widths differ: %u and %u pixels\n", i + 1,
		    a->width, b->width);
		return 1;
	}
	if (r < 1 || hi / lo - r > 0.1 || r - hi / lo > 0.1) {
		printf("page %d: resolutions %.0f and %.0f dpi are not "
		    "multiples\n", i + 1, a->yres, b->yres);
		return 1;
	}
	ra = a->yres > b->yres ? r : 1;
	rb = a->yres > b->yres ? 1 : r;
	ta = malloc(a->rowbytes);
	tb = malloc(b->rowbytes);
	if (ta == NULL || tb == NULL) {
		free(ta);
		free(tb);
		return -1;
	}
	best->diff = UINT64_MAX;
	best->black = 0;
	best->shift = 0;
	best->phase = 0;
	for (int ph = r > 1 ? -1 : 0; ph < r; ph++)
		for (long d = -maxshift; d <= maxshift; d++) {
			struct score s = compare_at(a, ra, ph, b, rb, ph, d,
			    ta, tb);

			if (better(&s, best))
				*best = s;
		}
	free(ta);
	free(tb);
	*pct = best->black == 0 ? 0 : 100.0 * (double)best->diff /
	    (double)best->black;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: fax_compare [--tolerance PCT] [--shift ROWS] "
	    "A.tif B.tif\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct file fa = { 0 }, fb = { 0 };
	double tol = 2.0;
	long maxshift = 2;
	const char *path[2];
	int np = 0, status = 0, n;

	for (int i = 1; i < argc; i++) {
		char *end;

		if (strcmp(argv[i], "--tolerance") == 0 && i + 1 < argc) {
			errno = 0;
			tol = strtod(argv[++i], &end);
			if (errno != 0 || *end != '\0' || tol < 0 || tol > 100)
				usage();
		} else if (strcmp(argv[i], "--shift") == 0 && i + 1 < argc) {
			errno = 0;
			maxshift = strtol(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || maxshift < 0 ||
			    maxshift > 100)
				usage();
		} else if (argv[i][0] == '-' && argv[i][1] != '\0')
			usage();
		else if (np < 2)
			path[np++] = argv[i];
		else
			usage();
	}
	if (np != 2)
		usage();
	for (int i = 0; i < 256; i++)
		for (int b = i; b != 0; b >>= 1)
			popcount8[i] += b & 1;
	fa.path = path[0];
	fb.path = path[1];
	if (load(&fa) == -1 || load(&fb) == -1) {
		file_free(&fa);
		file_free(&fb);
		return 2;
	}
	if (fa.warnings + fb.warnings > 0)
		printf("decoder warnings (damaged lines): %s %d, %s %d\n",
		    fa.path, fa.warnings, fb.path, fb.warnings);
	if (fa.n != fb.n) {
		printf("page counts differ: %s has %d, %s has %d\n", fa.path,
		    fa.n, fb.path, fb.n);
		status = 1;
	}
	n = fa.n < fb.n ? fa.n : fb.n;
	for (int i = 0; i < n; i++) {
		const struct page *a = &fa.pages[i], *b = &fb.pages[i];
		struct score s = { 0, 0, 0, 0 };
		double pct = 0;
		int rc = compare_page(a, b, i, maxshift, &pct, &s);

		if (rc == -1) {
			fprintf(stderr, "fax_compare: out of memory\n");
			status = 2;
			break;
		}
		if (rc == 1) {
			status = status == 0 ? 1 : status;
			continue;
		}
		printf("page %d: %.2f%% differ (%llu of %llu black pixels), "
		    "shift %+ld, rows %u at %.0f dpi and %u at %.0f dpi%s%s\n",
		    i + 1, pct, (unsigned long long)s.diff,
		    (unsigned long long)s.black, s.shift, a->rows, a->yres,
		    b->rows, b->yres, s.phase < 0 ? ", rows OR-ed" : "",
		    pct > tol ? "  ** over tolerance" : "");
		if (pct > tol && status == 0)
			status = 1;
	}
	if (status == 0)
		printf("fax_compare: %d page%s, all within %.2f%%\n", n,
		    n == 1 ? "" : "s", tol);
	else if (status == 1)
		printf("fax_compare: the faxes differ (tolerance %.2f%%)\n",
		    tol);
	file_free(&fa);
	file_free(&fb);
	return status;
}
