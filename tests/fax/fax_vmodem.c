/*
 * fax_vmodem.c - a virtual Class 1 fax modem for the tests (issue 7).
 *
 *   fax_vmodem --link PATH --outdir DIR --log FILE [--timeout S]
 *              [--answer-delay S] [--busy-delay S] [--noanswer-delay S]
 *              [--no-ecm] [--pty-min N] [--verbose]
 *
 * A fax client (efax, HylaFAX's faxgetty/faxsend, dengon's fax channel)
 * opens PATH, a symlink to the slave side of a pty, and talks Hayes and
 * T.31 Class 1 (AT+FCLASS=1, +FTM/+FRM/+FTH/+FRH/+FTS/+FRS, ATD, ATA, ATH)
 * to spandsp's T.31 emulator, which runs the real V.21/V.27ter/V.29/V.17
 * modems.  The "telephone line" is an in-memory 8 kHz audio loop run in
 * real time (160 samples every 20 ms): what the T.31 modem transmits is
 * what a spandsp fax terminal (the called fax machine) hears, and what
 * that terminal transmits is what the modem hears.  The called machine
 * writes each fax it receives to DIR/NNNN-NUMBER.tif (NNNN counts the
 * calls; the file appears under that name only once complete).
 *
 * The number dialled chooses what the line does (digits only, as a
 * modem takes them; ',' pauses are ignored):
 *   0999...  BUSY (after --busy-delay, default 2 s)
 *   0998...  rings and nobody answers: NO ANSWER (after --noanswer-delay,
 *            default 6 s)
 *   0997...  answered, but the line stays silent: no CED, no DIS; the
 *            modem gives NO CARRIER after S7 seconds (60 unless the client
 *            sets ATS7), as a real modem does
 *   0996...  busy on the first call to that very number, answered by the
 *            fax machine on every later call (64 numbers remembered)
 *   other    answered (after --answer-delay, default 2 s) by the fax
 *            machine; a data call (+FCLASS=0) to it gets NO CARRIER
 * ATA with no call coming in answers a silent line.
 *
 * Flow control.  spandsp 0.0.6's t31_at_rx() takes whatever it is given
 * and drops what does not fit its buffers (the non-ECM transmit buffer of
 * T31_TX_BUF_LEN bytes, the HDLC frame buffer of T31_MAX_HDLC_LEN), and it
 * has no call telling how much room is left; so we read its private state
 * (SPANDSP_EXPOSE_INTERNAL_STRUCTURES) and take from the pty only what
 * fits: the client's writes then block in the kernel, as they would behind
 * a modem holding CTS off.  When the client has asked for XON/XOFF flow
 * control (IXON on the tty), XOFF is also sent above T31_TX_BUF_HIGH_TIDE
 * bytes queued and XON below T31_TX_BUF_LOW_TIDE, as fax modems do (a pty
 * has no CTS or DCD wire).  Input is also never fed past a point where the
 * modem changes mode (the CR ending a command, the DLE ETX ending data),
 * so bytes a client sends early are interpreted in the right mode.
 *
 * DTR.  A pty has no DTR wire, but what a client does to it shows: setting
 * the speed to B0 drops DTR (HylaFAX resets a modem that way), and so does
 * closing the port with HUPCL set (a serial port's last close).  Either
 * hangs up as a modem set to &D2 does (NO CARRIER if it was not in command
 * mode); after a close, what the modem had not yet delivered and what the
 * client wrote but the modem had not yet taken are lost, as they are on a
 * real port.  The client's opens and closes are seen through inotify.
 *
 * Log: one JSON object per line in FILE, "t" seconds since start, "ev":
 *   start  {pid, link, pty}
 *   dial   {call, number}                       ATD seen
 *   call   {call, number, result}               answered | busy | noanswer
 *                                               | silent | nocarrier
 *   page   {call, page, width, length, xres, yres, x_ppm, y_ppm,
 *           encoding, bad_rows, bit_rate, ecm}  each page the machine takes
 *   end    {call, number, result[, status, text, pages, remote, file]}
 *          the call's outcome: for an answered call, when the fax machine
 *          is done (T.30 completion code and its text; file once renamed)
 *   hangup {call, seconds}                      the client hung up
 *   dtr    {off}                                "B0" or "close": DTR drop
 *   abort  {call, reason}                       dial aborted by the client
 *   warn   {text}
 *   exit   {reason}
 *
 * It stops on SIGTERM/SIGINT/SIGHUP, when its parent dies, or after
 * --timeout seconds; the link is removed on the way out.
 *
 * State owned: one struct vmodem (the pty, the T.31 modem, the call in
 * progress and the far-end fax terminal, the log).  One thread, one poll()
 * loop; every spandsp callback runs inside t31_at_rx/t31_tx/t31_rx/fax_rx
 * called from that loop.
 *
 * Invariants:
 *   1. m->fax != NULL only while m->call == VM_CALL_UP and the line is a
 *      fax line; it is released (and its TIFF renamed) by vm_rx_finish only.
 *   2. Bytes read from the pty sit in m->in until T.31 has room for them in
 *      its current mode.  Only three things drop them, as a modem would:
 *      the client closing the port (DTR), a character abandoning a dial,
 *      and an HDLC frame longer than any frame can be.
 *   3. m->xoff is true only while an XOFF sent to the client is not yet
 *      undone by an XON.
 */
#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES 1

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <spandsp.h>

#define VM_RATE		8000
#define VM_BLOCK	160		/* samples per 20 ms tick */
#define VM_OUT_MAX	65536		/* bytes queued for the client */
#define VM_IN_MAX	512		/* bytes read ahead from the client */
#define VM_BUSY_MAX	64		/* numbers remembered for 0996 */
#define VM_NUM_MAX	64

#define VM_DLE		0x10
#define VM_ETX		0x03
#define VM_XON		0x11
#define VM_XOFF		0x13

enum vm_line {
	VM_LINE_FAX,		/* the fax machine answers */
	VM_LINE_BUSY,
	VM_LINE_NOANSWER,
	VM_LINE_SILENT,		/* answered, nothing on the line */
	VM_LINE_DATA		/* a data call to the fax machine */
};

enum vm_call {
	VM_CALL_IDLE,		/* on hook */
	VM_CALL_DIALING,	/* ATD seen, outcome at m->due */
	VM_CALL_UP		/* off hook, the line connected */
};

struct vmodem {
	/* options */
	const char *link;
	const char *outdir;
	double answer_delay, busy_delay, noanswer_delay;
	double timeout;
	int ecm;
	int pty_min;
	int verbose;

	/* the pty: we keep the slave open so the master never sees EIO */
	int master, slave;
	char pty[64];
	uint8_t out[VM_OUT_MAX];
	size_t out_len;
	int out_overrun;
	uint8_t in[VM_IN_MAX];
	size_t in_len;
	int xoff;
	int ino;		/* inotify on the slave: clients opening it */
	int clients;		/* open file descriptions of the slave but ours */
	int dtr_low;		/* the client set the speed to B0 */

	/* the modem and the line; time is counted in samples */
	t31_state_t *t31;
	int64_t now;
	enum vm_call call;
	enum vm_line line;
	int64_t due;		/* when a dialled call gets its outcome */
	int64_t up_at;		/* when the call went off hook */
	int call_no;		/* number of the current (last) call */
	int next_call;
	char number[VM_NUM_MAX];
	char busy_seen[VM_BUSY_MAX][VM_NUM_MAX];
	int busy_count;

	/* the far end: a spandsp fax terminal receiving */
	fax_state_t *fax;
	int rx_done, rx_status, rx_page;
	char part[PATH_MAX], file[PATH_MAX];

	FILE *log;
	struct timespec t0;
};

static volatile sig_atomic_t vm_signalled;

static void
vm_on_signal(int sig)
{
	vm_signalled = sig;
}

/* Seconds since start, for the log. */
static double
vm_elapsed(const struct vmodem *m)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - m->t0.tv_sec) +
	    (double)(ts.tv_nsec - m->t0.tv_nsec) / 1e9;
}

/* Append S to DST (of SIZE bytes, holding *LEN) as a JSON string. */
static void
vm_json_str(char *dst, size_t size, size_t *len, const char *s)
{
	const unsigned char *p;
	int n;

	n = snprintf(dst + *len, size - *len, "\"");
	*len += (n > 0 && (size_t)n < size - *len) ? (size_t)n : 0;
	for (p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			n = snprintf(dst + *len, size - *len, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			n = snprintf(dst + *len, size - *len, "\\u%04x", *p);
		else
			n = snprintf(dst + *len, size - *len, "%c", *p);
		if (n < 0 || (size_t)n >= size - *len)
			break;
		*len += (size_t)n;
	}
	n = snprintf(dst + *len, size - *len, "\"");
	*len += (n > 0 && (size_t)n < size - *len) ? (size_t)n : 0;
}

/*
 * One log line: EV, then pairs of (key, format) where format is "s" for a
 * string (char *), "i" for an int, "b" for a boolean int, "f" for a double,
 * "S" for a string or null; the list ends with a NULL key.
 */
static void
vm_log(struct vmodem *m, const char *ev, ...)
{
	char line[2048];
	size_t len = 0;
	const char *key, *fmt, *s;
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "{\"t\":%.3f,\"ev\":\"%s\"",
	    vm_elapsed(m), ev);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	len = (size_t)n;
	va_start(ap, ev);
	while ((key = va_arg(ap, const char *)) != NULL) {
		fmt = va_arg(ap, const char *);
		n = snprintf(line + len, sizeof(line) - len, ",\"%s\":", key);
		if (n < 0 || (size_t)n >= sizeof(line) - len)
			break;
		len += (size_t)n;
		switch (fmt[0]) {
		case 's':
		case 'S':
			s = va_arg(ap, const char *);
			if (s == NULL && fmt[0] == 'S')
				n = snprintf(line + len, sizeof(line) - len, "null");
			else {
				vm_json_str(line, sizeof(line), &len, s);
				n = 0;
			}
			break;
		case 'b':
			n = snprintf(line + len, sizeof(line) - len, "%s",
			    va_arg(ap, int) ? "true" : "false");
			break;
		case 'f':
			n = snprintf(line + len, sizeof(line) - len, "%.3f",
			    va_arg(ap, double));
			break;
		default:
			n = snprintf(line + len, sizeof(line) - len, "%d",
			    va_arg(ap, int));
			break;
		}
		if (n < 0 || (size_t)n >= sizeof(line) - len)
			break;
		len += (size_t)n;
	}
	va_end(ap);
	if (m->log) {
		fprintf(m->log, "%s}\n", line);
		fflush(m->log);
	}
	if (m->verbose)
		fprintf(stderr, "fax_vmodem: %s}\n", line);
}

/* With --verbose, show bytes crossing the pty (DIR "<" from the client). */
static void
vm_trace(const struct vmodem *m, const char *dir, const uint8_t *buf, size_t len)
{
	size_t i;

	if (!m->verbose || len == 0)
		return;
	fprintf(stderr, "%.3f %s ", vm_elapsed(m), dir);
	for (i = 0; i < len && i < 96; i++) {
		if (buf[i] >= 0x20 && buf[i] < 0x7f)
			fputc(buf[i], stderr);
		else
			fprintf(stderr, "<%02x>", buf[i]);
	}
	fprintf(stderr, "%s\n", i < len ? "..." : "");
}

/* ---- the pty ----------------------------------------------------------- */

/* Write what is queued for the client, as far as the pty takes it. */
static void
vm_flush(struct vmodem *m)
{
	ssize_t n;

	while (m->out_len > 0) {
		n = write(m->master, m->out, m->out_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;		/* EAGAIN: the client is not reading */
		}
		memmove(m->out, m->out + n, m->out_len - (size_t)n);
		m->out_len -= (size_t)n;
	}
}

/* Queue BUF for the client.  A client that never reads loses the excess,
 * as it would with a real modem's buffer; said once in the log. */
static void
vm_send(struct vmodem *m, const uint8_t *buf, size_t len)
{
	size_t room = VM_OUT_MAX - m->out_len;

	vm_trace(m, ">", buf, len);
	if (len > room) {
		if (!m->out_overrun)
			vm_log(m, "warn", "text", "s",
			    "the client does not read: output lost", NULL);
		m->out_overrun = 1;
		len = room;
	}
	memcpy(m->out + m->out_len, buf, len);
	m->out_len += len;
	vm_flush(m);
}

/* True when the client asked for XON/XOFF output flow control: the
 * master's termios calls reach the slave's settings. */
static int
vm_client_ixon(const struct vmodem *m)
{
	struct termios tio;

	return tcgetattr(m->master, &tio) == 0 && (tio.c_iflag & IXON);
}

/* Send a flow control character ahead of anything queued. */
static void
vm_send_flow(struct vmodem *m, uint8_t c)
{
	ssize_t n;

	vm_trace(m, ">", &c, 1);
	do
		n = write(m->master, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {		/* the pty is full: queue it in front */
		if (m->out_len == VM_OUT_MAX)
			m->out_len--;
		memmove(m->out + 1, m->out, m->out_len);
		m->out[0] = c;
		m->out_len++;
	}
}

/*
 * A pty whose number is PTY_MIN or more.  The kernel hands out the lowest
 * free number, and a program left behind by an earlier run may hold a
 * literal /dev/pts/N and reopen it; those are low numbers, so they are
 * held until we get a higher one.  Returns 0, or -1 (reported).
 */
static int
vm_open_pty(struct vmodem *m)
{
	int held[64], nheld = 0, fd = -1, i;
	const char *name;
	unsigned long nr;

	for (;;) {
		fd = posix_openpt(O_RDWR | O_NOCTTY);
		if (fd < 0 || grantpt(fd) < 0 || unlockpt(fd) < 0 ||
		    (name = ptsname(fd)) == NULL) {
			fprintf(stderr, "fax_vmodem: cannot open a pty: %s\n",
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
			break;
		}
		nr = strtoul(name + strlen("/dev/pts/"), NULL, 10);
		if (nr >= (unsigned long)m->pty_min || nheld == 64) {
			snprintf(m->pty, sizeof(m->pty), "%s", name);
			break;
		}
		held[nheld++] = fd;
	}
	for (i = 0; i < nheld; i++)
		close(held[i]);
	if (fd < 0)
		return -1;
	m->master = fd;
	return 0;
}

/* Open the pty, make it raw, point the link at it.  0 or -1 (reported). */
static int
vm_pty_setup(struct vmodem *m)
{
	struct termios tio;
	char tmp[PATH_MAX];

	if (vm_open_pty(m) < 0)
		return -1;
	m->slave = open(m->pty, O_RDWR | O_NOCTTY);
	if (m->slave < 0) {
		fprintf(stderr, "fax_vmodem: %s: %s\n", m->pty, strerror(errno));
		return -1;
	}
	/* A serial port after `stty raw`: a client that does not set the
	 * line up itself must not see its own bytes echoed or CRs mangled.
	 * HUPCL as on a serial port (a pty lacks it): its last close drops
	 * DTR unless the client clears it. */
	if (tcgetattr(m->slave, &tio) == 0) {
		cfmakeraw(&tio);
		tio.c_cflag |= CLOCAL | CREAD | HUPCL;
		cfsetspeed(&tio, B115200);
		tcsetattr(m->slave, TCSANOW, &tio);
	}
	fchmod(m->slave, 0666);	/* clients may run as another user */
	fcntl(m->master, F_SETFL, fcntl(m->master, F_GETFL) | O_NONBLOCK);
	fcntl(m->slave, F_SETFL, fcntl(m->slave, F_GETFL) | O_NONBLOCK);
	m->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (m->ino < 0 || inotify_add_watch(m->ino, m->pty,
	    IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0) {
		fprintf(stderr, "fax_vmodem: inotify on %s: %s\n", m->pty,
		    strerror(errno));
		return -1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.new", m->link) >= (int)sizeof(tmp)) {
		fprintf(stderr, "fax_vmodem: %s: path too long\n", m->link);
		return -1;
	}
	unlink(tmp);
	if (symlink(m->pty, tmp) < 0 || rename(tmp, m->link) < 0) {
		fprintf(stderr, "fax_vmodem: cannot link %s to %s: %s\n",
		    m->link, m->pty, strerror(errno));
		return -1;
	}
	return 0;
}

/* Remove the link if it still points at our pty. */
static void
vm_unlink(const struct vmodem *m)
{
	char target[PATH_MAX];
	ssize_t n;

	n = readlink(m->link, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		if (strcmp(target, m->pty) == 0)
			unlink(m->link);
	}
}

/* ---- the far end: a fax machine that receives ---------------------------- */

static int
vm_phase_d(t30_state_t *t30, void *user, int result)
{
	struct vmodem *m = user;
	t30_stats_t st;

	t30_get_transfer_statistics(t30, &st);
	m->rx_page++;
	vm_log(m, "page", "call", "i", m->call_no, "page", "i", m->rx_page,
	    "width", "i", st.width, "length", "i", st.length,
	    "xres", "i", (int)(st.x_resolution * 0.0254 + 0.5),
	    "yres", "i", (int)(st.y_resolution * 0.0254 + 0.5),
	    "x_ppm", "i", st.x_resolution, "y_ppm", "i", st.y_resolution,
	    "encoding", "i", st.encoding, "bad_rows", "i", st.bad_rows,
	    "bit_rate", "i", st.bit_rate, "ecm", "b",
	    st.error_correcting_mode, NULL);
	return T30_ERR_OK;
}

static void
vm_phase_e(t30_state_t *t30, void *user, int code)
{
	struct vmodem *m = user;

	if (!m->rx_done) {
		m->rx_done = 1;
		m->rx_status = code;
	}
}

/* Answer the call with a fax machine receiving into m->part.  0 or -1. */
static int
vm_rx_start(struct vmodem *m)
{
	t30_state_t *t30;
	char ident[21];
	logging_state_t *ls;

	m->fax = fax_init(NULL, FALSE);
	if (m->fax == NULL) {
		vm_log(m, "warn", "text", "s", "fax_init failed", NULL);
		return -1;
	}
	fax_set_transmit_on_idle(m->fax, TRUE);
	t30 = fax_get_t30_state(m->fax);
	/* The called machine's CSI is its own number, as a real one's is. */
	snprintf(ident, sizeof(ident), "%.20s", m->number);
	t30_set_tx_ident(t30, ident);
	t30_set_supported_modems(t30,
	    T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17);
	t30_set_supported_compressions(t30, T30_SUPPORT_T4_1D_COMPRESSION |
	    T30_SUPPORT_T4_2D_COMPRESSION | T30_SUPPORT_T6_COMPRESSION);
	t30_set_supported_resolutions(t30, T30_SUPPORT_STANDARD_RESOLUTION |
	    T30_SUPPORT_FINE_RESOLUTION | T30_SUPPORT_SUPERFINE_RESOLUTION |
	    T30_SUPPORT_R8_RESOLUTION | T30_SUPPORT_R16_RESOLUTION);
	t30_set_supported_image_sizes(t30, T30_SUPPORT_215MM_WIDTH |
	    T30_SUPPORT_255MM_WIDTH | T30_SUPPORT_303MM_WIDTH |
	    T30_SUPPORT_UNLIMITED_LENGTH | T30_SUPPORT_A4_LENGTH |
	    T30_SUPPORT_B4_LENGTH | T30_SUPPORT_US_LETTER_LENGTH |
	    T30_SUPPORT_US_LEGAL_LENGTH);
	t30_set_ecm_capability(t30, m->ecm);
	t30_set_rx_file(t30, m->part, -1);
	t30_set_phase_d_handler(t30, vm_phase_d, m);
	t30_set_phase_e_handler(t30, vm_phase_e, m);
	if (m->verbose) {
		ls = t30_get_logging_state(t30);
		span_log_set_level(ls, SPAN_LOG_SHOW_SEVERITY |
		    SPAN_LOG_SHOW_PROTOCOL | SPAN_LOG_FLOW);
		span_log_set_tag(ls, "far-end");
	}
	m->rx_done = 0;
	m->rx_status = 0;
	m->rx_page = 0;
	return 0;
}

/* The fax machine is done (or the call is cut): release it, which closes
 * the TIFF, then give the file its final name and log the outcome. */
static void
vm_rx_finish(struct vmodem *m)
{
	t30_state_t *t30;
	t30_stats_t st;
	char remote[64];
	const char *file = NULL;

	if (m->fax == NULL)
		return;
	t30 = fax_get_t30_state(m->fax);
	if (!m->rx_done)
		t30_terminate(t30);	/* runs the phase E handler */
	if (!m->rx_done) {
		m->rx_done = 1;
		m->rx_status = T30_ERR_CALLDROPPED;
	}
	t30_get_transfer_statistics(t30, &st);
	snprintf(remote, sizeof(remote), "%s",
	    t30_get_rx_ident(t30) ? t30_get_rx_ident(t30) : "");
	fax_free(m->fax);
	m->fax = NULL;
	if (access(m->part, F_OK) == 0) {
		if (rename(m->part, m->file) == 0)
			file = m->file;
		else
			vm_log(m, "warn", "text", "s", strerror(errno), NULL);
	}
	vm_log(m, "end", "call", "i", m->call_no, "number", "s", m->number,
	    "result", "s", "answered", "status", "i", m->rx_status,
	    "text", "s", t30_completion_code_to_str(m->rx_status),
	    "pages", "i", st.pages_rx, "remote", "s", remote,
	    "file", "S", file, NULL);
}

/* ---- the call ---------------------------------------------------------- */

static const char *
vm_line_name(enum vm_line line)
{
	switch (line) {
	case VM_LINE_FAX:	return "answered";
	case VM_LINE_BUSY:	return "busy";
	case VM_LINE_NOANSWER:	return "noanswer";
	case VM_LINE_SILENT:	return "silent";
	case VM_LINE_DATA:	return "nocarrier";
	}
	return "?";
}

/* What the line does for the dialled DIGITS (see the file's header). */
static enum vm_line
vm_classify(struct vmodem *m, const char *digits)
{
	int i;

	if (strncmp(digits, "0999", 4) == 0)
		return VM_LINE_BUSY;
	if (strncmp(digits, "0998", 4) == 0)
		return VM_LINE_NOANSWER;
	if (strncmp(digits, "0997", 4) == 0)
		return VM_LINE_SILENT;
	if (strncmp(digits, "0996", 4) == 0) {
		for (i = 0; i < m->busy_count; i++)
			if (strcmp(m->busy_seen[i], digits) == 0)
				return VM_LINE_FAX;
		if (m->busy_count < VM_BUSY_MAX)
			snprintf(m->busy_seen[m->busy_count++], VM_NUM_MAX,
			    "%s", digits);
		return VM_LINE_BUSY;
	}
	return VM_LINE_FAX;
}

static int64_t
vm_seconds(double s)
{
	return (int64_t)(s * VM_RATE);
}

/* ATD: note the number, decide the line, and set when the outcome comes. */
static int
vm_dial(struct vmodem *m, const char *num)
{
	size_t i, j = 0;
	char fname[VM_NUM_MAX];

	if (m->call != VM_CALL_IDLE)
		return -1;		/* already off hook: ERROR */
	for (i = 0; num && num[i] && j < sizeof(m->number) - 1; i++)
		if (num[i] != ',')
			m->number[j++] = num[i];
	m->number[j] = '\0';
	m->call_no = m->next_call++;
	m->line = vm_classify(m, m->number);
	if (m->line == VM_LINE_FAX && m->t31->at_state.fclass_mode == 0)
		m->line = VM_LINE_DATA;
	for (i = 0; m->number[i] && i < sizeof(fname) - 1; i++)
		fname[i] = isalnum((unsigned char)m->number[i]) ?
		    m->number[i] : '_';
	fname[i] = '\0';
	snprintf(m->file, sizeof(m->file), "%s/%04d-%s.tif", m->outdir,
	    m->call_no, fname[0] ? fname : "none");
	snprintf(m->part, sizeof(m->part), "%s/.%04d-%s.tif.part", m->outdir,
	    m->call_no, fname[0] ? fname : "none");
	switch (m->line) {
	case VM_LINE_BUSY:
		m->due = m->now + vm_seconds(m->busy_delay);
		break;
	case VM_LINE_NOANSWER:
		m->due = m->now + vm_seconds(m->noanswer_delay);
		break;
	default:
		m->due = m->now + vm_seconds(m->answer_delay);
		break;
	}
	m->call = VM_CALL_DIALING;
	vm_log(m, "dial", "call", "i", m->call_no, "number", "s", m->number,
	    NULL);
	return 0;
}

/* The dialled call's outcome is due. */
static void
vm_dial_outcome(struct vmodem *m)
{
	at_state_t *at = &m->t31->at_state;

	vm_log(m, "call", "call", "i", m->call_no, "number", "s", m->number,
	    "result", "s", vm_line_name(m->line), NULL);
	switch (m->line) {
	case VM_LINE_BUSY:
	case VM_LINE_NOANSWER:
		m->call = VM_CALL_IDLE;
		t31_call_event(m->t31, m->line == VM_LINE_BUSY ?
		    AT_CALL_EVENT_BUSY : AT_CALL_EVENT_NO_ANSWER);
		vm_log(m, "end", "call", "i", m->call_no, "number", "s",
		    m->number, "result", "s", vm_line_name(m->line), NULL);
		return;
	case VM_LINE_DATA:
		/* A fax machine answers a data modem: no carrier it knows. */
		m->call = VM_CALL_IDLE;
		at_put_response_code(at, AT_RESPONSE_CODE_NO_CARRIER);
		at_set_at_rx_mode(at, AT_MODE_ONHOOK_COMMAND);
		vm_log(m, "end", "call", "i", m->call_no, "number", "s",
		    m->number, "result", "s", vm_line_name(m->line), NULL);
		return;
	case VM_LINE_FAX:
		if (vm_rx_start(m) < 0)
			m->line = VM_LINE_SILENT;
		break;
	case VM_LINE_SILENT:
		break;
	}
	m->call = VM_CALL_UP;
	m->up_at = m->now;
	t31_call_event(m->t31, AT_CALL_EVENT_CONNECTED);
}

/* The client went on hook (ATH, ATZ, or T.31's own hangup). */
static void
vm_hangup(struct vmodem *m)
{
	if (m->call == VM_CALL_DIALING) {
		vm_log(m, "abort", "call", "i", m->call_no, "reason", "s",
		    "hangup while dialling", NULL);
		m->call = VM_CALL_IDLE;
		return;
	}
	if (m->call != VM_CALL_UP)
		return;
	m->call = VM_CALL_IDLE;
	if (m->fax)
		vm_rx_finish(m);
	else if (m->line == VM_LINE_SILENT)
		vm_log(m, "end", "call", "i", m->call_no, "number", "s",
		    m->number, "result", "s", "silent", NULL);
	vm_log(m, "hangup", "call", "i", m->call_no, "seconds", "f",
	    (double)(m->now - m->up_at) / VM_RATE, NULL);
}

/* DTR dropped (WHY: "B0" or "close"): on hook, as a modem set to &D2. */
static void
vm_dtr_drop(struct vmodem *m, const char *why)
{
	vm_log(m, "dtr", "off", "s", why, NULL);
	if (m->call != VM_CALL_IDLE ||
	    m->t31->at_state.at_rx_mode != AT_MODE_ONHOOK_COMMAND)
		t31_call_event(m->t31, AT_CALL_EVENT_HANGUP);
}

/* The last client closed the port.  A port left stopped by our XOFF would
 * hold the next client's writes: XON first.  The rest of what it wrote is
 * dropped; what the modem says while no client has the port open is
 * discarded (vm_tick drains it). */
static void
vm_client_gone(struct vmodem *m)
{
	struct termios tio;

	if (m->xoff) {
		vm_send_flow(m, VM_XON);
		m->xoff = 0;
	}
	m->in_len = 0;
	if (tcgetattr(m->master, &tio) == 0 && (tio.c_cflag & HUPCL))
		vm_dtr_drop(m, "close");
}

/* Count the client's opens and closes of the slave (inotify events). */
static void
vm_watch(struct vmodem *m)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	while ((n = read(m->ino, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(void *)p;
			if (ev->mask & IN_OPEN)
				m->clients++;
			if ((ev->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) &&
			    m->clients > 0 && --m->clients == 0)
				vm_client_gone(m);
		}
	}
}

/* Notice the client setting the speed to B0 (and back). */
static void
vm_check_b0(struct vmodem *m)
{
	struct termios tio;
	int low;

	if (tcgetattr(m->master, &tio) < 0)
		return;
	low = cfgetospeed(&tio) == B0;
	if (low && !m->dtr_low)
		vm_dtr_drop(m, "B0");
	m->dtr_low = low;
}

/* Discard what the modem says while no client has the port open (the
 * client's open is always counted before its first byte is read: the
 * loop reads inotify events first). */
static void
vm_drain(struct vmodem *m)
{
	uint8_t buf[512];

	m->out_len = 0;
	while (read(m->slave, buf, sizeof(buf)) > 0)
		;
}

/* ---- spandsp callbacks ------------------------------------------------- */

static int
vm_at_tx(at_state_t *s, void *user, const uint8_t *buf, size_t len)
{
	vm_send(user, buf, len);
	return (int)len;
}

static int
vm_modem_control(t31_state_t *t31, void *user, int op, const char *num)
{
	struct vmodem *m = user;

	switch (op) {
	case AT_MODEM_CONTROL_CALL:
		return vm_dial(m, num);
	case AT_MODEM_CONTROL_ANSWER:
		/* Nothing rings: answering takes a silent line off hook. */
		if (m->call != VM_CALL_IDLE)
			return -1;
		m->call_no = m->next_call++;
		snprintf(m->number, sizeof(m->number), "%s", "");
		m->line = VM_LINE_SILENT;
		m->call = VM_CALL_UP;
		m->up_at = m->now;
		vm_log(m, "call", "call", "i", m->call_no, "number", "s", "",
		    "result", "s", "silent", "answer", "b", 1, NULL);
		t31_call_event(t31, AT_CALL_EVENT_ANSWERED);
		return 0;
	case AT_MODEM_CONTROL_HANGUP:
	case AT_MODEM_CONTROL_ONHOOK:
		vm_hangup(m);
		return 0;
	default:
		/* OFFHOOK, DTR, RTS, CTS, CAR, RNG, DSR, SETID: no wires on a
		 * pty; CTS is done by reading only what fits (vm_feed). */
		return 0;
	}
}

/* ---- feeding the client's bytes to T.31 -------------------------------- */

/* Index just past the DLE ETX in BUF[0..LEN), DLE state DLED at the
 * start; LEN when there is none. */
static size_t
vm_through_dle_etx(const uint8_t *buf, size_t len, int dled)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (dled) {
			dled = 0;
			if (buf[i] == VM_ETX)
				return i + 1;
		} else if (buf[i] == VM_DLE)
			dled = 1;
	}
	return len;
}

/* How many bytes of m->in T.31 takes now; 0 to hold them. */
static size_t
vm_feedable(struct vmodem *m)
{
	t31_state_t *t = m->t31;
	const uint8_t *cr;
	int room;

	switch (t->at_state.at_rx_mode) {
	case AT_MODE_ONHOOK_COMMAND:
	case AT_MODE_OFFHOOK_COMMAND:
		/* One command line at a time: it may change the mode. */
		cr = memchr(m->in, t->at_state.p.s_regs[3], m->in_len);
		return cr ? (size_t)(cr - m->in) + 1 : m->in_len;
	case AT_MODE_DELIVERY:
		return 1;	/* any character aborts a +FRM/+FRH/+FRS */
	case AT_MODE_HDLC:
		room = T31_MAX_HDLC_LEN - 2 - t->hdlc_tx.len;
		if (room <= 0) {
			/* The client sent a frame longer than any HDLC
			 * frame; a modem has nowhere to keep it either. */
			vm_log(m, "warn", "text", "s",
			    "HDLC frame too long: discarded", NULL);
			t->hdlc_tx.len = 0;
			room = T31_MAX_HDLC_LEN - 2;
		}
		return vm_through_dle_etx(m->in,
		    m->in_len < (size_t)room ? m->in_len : (size_t)room,
		    t->dled);
	case AT_MODE_STUFFED:
		room = T31_TX_BUF_LEN - 2 - (t->tx.in_bytes - t->tx.out_bytes);
		if (room <= 0)
			return 0;
		return vm_through_dle_etx(m->in,
		    m->in_len < (size_t)room ? m->in_len : (size_t)room,
		    t->dled);
	default:
		return 0;	/* AT_MODE_CONNECTED: hanging up, hold */
	}
}

/* XOFF above the high tide of queued page data, XON below the low one or
 * when the data phase is over. */
static void
vm_flow(struct vmodem *m)
{
	t31_state_t *t = m->t31;
	int fill = t->tx.in_bytes - t->tx.out_bytes;
	int stuffed = t->at_state.at_rx_mode == AT_MODE_STUFFED;

	if (!m->xoff && stuffed && fill > T31_TX_BUF_HIGH_TIDE &&
	    vm_client_ixon(m)) {
		vm_send_flow(m, VM_XOFF);
		m->xoff = 1;
	} else if (m->xoff && (!stuffed || fill < T31_TX_BUF_LOW_TIDE)) {
		vm_send_flow(m, VM_XON);
		m->xoff = 0;
	}
}

/* Give T.31 what it can take of the bytes read from the client. */
static void
vm_feed(struct vmodem *m)
{
	size_t n;

	while (m->in_len > 0) {
		if (m->call == VM_CALL_DIALING) {
			/* A character while dialling abandons the call. */
			vm_trace(m, "<", m->in, 1);
			memmove(m->in, m->in + 1, --m->in_len);
			vm_log(m, "abort", "call", "i", m->call_no, "reason",
			    "s", "character while dialling", NULL);
			m->call = VM_CALL_IDLE;
			at_put_response_code(&m->t31->at_state,
			    AT_RESPONSE_CODE_NO_CARRIER);
			continue;
		}
		n = vm_feedable(m);
		if (n == 0)
			break;
		vm_trace(m, "<", m->in, n);
		t31_at_rx(m->t31, (const char *)m->in, (int)n);
		memmove(m->in, m->in + n, m->in_len - n);
		m->in_len -= n;
		vm_flow(m);
	}
}

/* Read from the client what we may hold. */
static void
vm_read(struct vmodem *m)
{
	ssize_t n;

	if (m->in_len == VM_IN_MAX)
		return;
	n = read(m->master, m->in + m->in_len, VM_IN_MAX - m->in_len);
	if (n > 0)
		m->in_len += (size_t)n;
}

/* ---- the line ---------------------------------------------------------- */

/* 20 ms of the line: the modem's audio to the far end and back. */
static void
vm_tick(struct vmodem *m)
{
	int16_t to_far[VM_BLOCK], to_modem[VM_BLOCK];
	int n;

	n = t31_tx(m->t31, to_far, VM_BLOCK);
	if (n < VM_BLOCK)
		memset(to_far + n, 0, (size_t)(VM_BLOCK - n) * sizeof(int16_t));
	memset(to_modem, 0, sizeof(to_modem));
	if (m->fax && !m->rx_done) {
		fax_rx(m->fax, to_far, VM_BLOCK);
		n = fax_tx(m->fax, to_modem, VM_BLOCK);
		if (n < VM_BLOCK)
			memset(to_modem + n, 0,
			    (size_t)(VM_BLOCK - n) * sizeof(int16_t));
	}
	t31_rx(m->t31, to_modem, VM_BLOCK);
	m->now += VM_BLOCK;
	if (m->fax && m->rx_done)
		vm_rx_finish(m);	/* the far end hangs up: silence */
	if (m->call == VM_CALL_DIALING && m->now >= m->due)
		vm_dial_outcome(m);
	vm_flow(m);
	vm_check_b0(m);
	if (m->clients == 0)
		vm_drain(m);
}

/* ---- set-up and the loop ------------------------------------------------ */

/* The next call number: one more than the highest NNNN-*.tif in outdir,
 * so that a modem started again does not overwrite. */
static int
vm_first_call(const char *dir)
{
	DIR *d;
	struct dirent *e;
	int max = 0, n;

	if ((d = opendir(dir)) == NULL)
		return 1;
	while ((e = readdir(d)) != NULL) {
		if (isdigit((unsigned char)e->d_name[0]) &&
		    (n = atoi(e->d_name)) > max)
			max = n;
	}
	closedir(d);
	return max + 1;
}

static void
vm_usage(void)
{
	fprintf(stderr,
	    "usage: fax_vmodem --link PATH --outdir DIR --log FILE "
	    "[--timeout S]\n"
	    "                  [--answer-delay S] [--busy-delay S] "
	    "[--noanswer-delay S]\n"
	    "                  [--no-ecm] [--pty-min N] [--verbose]\n");
	exit(2);
}

/* A non-negative number of seconds from option NAME, or exit. */
static double
vm_opt_seconds(const char *name, const char *arg)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || v < 0 || v > 86400) {
		fprintf(stderr, "fax_vmodem: %s: '%s' is not a number of "
		    "seconds (0 to 86400)\n", name, arg);
		exit(2);
	}
	return v;
}

static void
vm_options(struct vmodem *m, int argc, char **argv, const char **logpath)
{
	static const struct option opts[] = {
		{ "link", required_argument, NULL, 'l' },
		{ "outdir", required_argument, NULL, 'o' },
		{ "log", required_argument, NULL, 'L' },
		{ "timeout", required_argument, NULL, 't' },
		{ "answer-delay", required_argument, NULL, 'a' },
		{ "busy-delay", required_argument, NULL, 'b' },
		{ "noanswer-delay", required_argument, NULL, 'n' },
		{ "no-ecm", no_argument, NULL, 'E' },
		{ "pty-min", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'l': m->link = optarg; break;
		case 'o': m->outdir = optarg; break;
		case 'L': *logpath = optarg; break;
		case 't': m->timeout = vm_opt_seconds("--timeout", optarg); break;
		case 'a':
			m->answer_delay = vm_opt_seconds("--answer-delay", optarg);
			break;
		case 'b':
			m->busy_delay = vm_opt_seconds("--busy-delay", optarg);
			break;
		case 'n':
			m->noanswer_delay = vm_opt_seconds("--noanswer-delay",
			    optarg);
			break;
		case 'E': m->ecm = 0; break;
		case 'p': m->pty_min = atoi(optarg); break;
		case 'v': m->verbose = 1; break;
		default: vm_usage();
		}
	}
	if (optind != argc || m->link == NULL || m->outdir == NULL ||
	    *logpath == NULL)
		vm_usage();
}

/* Set up signals, the parent's death, the log, the output folder, the pty
 * and the modem.  0 or -1 (reported). */
static int
vm_setup(struct vmodem *m, const char *logpath)
{
	struct sigaction sa;
	pid_t parent = getppid();
	logging_state_t *ls;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vm_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)	/* it died before prctl */
		return -1;

	m->log = fopen(logpath, "a");
	if (m->log == NULL) {
		fprintf(stderr, "fax_vmodem: %s: %s\n", logpath, strerror(errno));
		return -1;
	}
	if (mkdir(m->outdir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "fax_vmodem: %s: %s\n", m->outdir,
		    strerror(errno));
		return -1;
	}
	m->next_call = vm_first_call(m->outdir);
	if (vm_pty_setup(m) < 0)
		return -1;

	m->t31 = t31_init(NULL, vm_at_tx, m, vm_modem_control, m, NULL, NULL);
	if (m->t31 == NULL) {
		fprintf(stderr, "fax_vmodem: t31_init failed\n");
		return -1;
	}
	t31_set_transmit_on_idle(m->t31, TRUE);
	if (m->verbose) {
		ls = t31_get_logging_state(m->t31);
		span_log_set_level(ls, SPAN_LOG_SHOW_SEVERITY |
		    SPAN_LOG_SHOW_PROTOCOL | SPAN_LOG_FLOW);
		span_log_set_tag(ls, "modem");
	}
	vm_log(m, "start", "pid", "i", (int)getpid(), "link", "s", m->link,
	    "pty", "s", m->pty, NULL);
	return 0;
}

/* Run the line in real time until a signal or the timeout.  Returns the
 * reason it stopped. */
static const char *
vm_run(struct vmodem *m)
{
	struct itimerspec its;
	struct pollfd pf[3];
	uint64_t ticks;
	int tfd;
	uint64_t i;

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (tfd < 0)
		return "timerfd_create failed";
	memset(&its, 0, sizeof(its));
	its.it_interval.tv_nsec = 20 * 1000 * 1000;
	its.it_value.tv_nsec = 20 * 1000 * 1000;
	timerfd_settime(tfd, 0, &its, NULL);

	while (!vm_signalled) {
		if (m->timeout > 0 && vm_elapsed(m) >= m->timeout)
			break;
		pf[0].fd = tfd;
		pf[0].events = POLLIN;
		pf[1].fd = m->master;
		pf[1].events = (m->in_len < VM_IN_MAX ? POLLIN : 0) |
		    (m->out_len > 0 ? POLLOUT : 0);
		pf[2].fd = m->ino;
		pf[2].events = POLLIN;
		if (poll(pf, 3, 1000) < 0) {
			if (errno == EINTR)
				continue;
			close(tfd);
			return "poll failed";
		}
		vm_watch(m);	/* first: see vm_drain */
		if ((pf[0].revents & POLLIN) &&
		    read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks)) {
			/* Late ticks are caught up, so that the line's
			 * time keeps pace with the clock. */
			for (i = 0; i < ticks && i < 50; i++) {
				vm_tick(m);
				vm_feed(m);
			}
		}
		if (pf[1].revents & POLLIN)
			vm_read(m);
		vm_feed(m);
		if (m->out_len > 0)
			vm_flush(m);
	}
	close(tfd);
	if (vm_signalled)
		return vm_signalled == SIGTERM ? "SIGTERM" :
		    vm_signalled == SIGINT ? "SIGINT" : "SIGHUP";
	return "timeout";
}

int
main(int argc, char **argv)
{
	static struct vmodem vm;	/* big buffers: not on the stack */
	struct vmodem *m = &vm;
	const char *logpath = NULL, *why;

	m->answer_delay = 2.0;
	m->busy_delay = 2.0;
	m->noanswer_delay = 6.0;
	m->ecm = 1;
	m->pty_min = 16;
	m->master = m->slave = m->ino = -1;
	clock_gettime(CLOCK_MONOTONIC, &m->t0);
	vm_options(m, argc, argv, &logpath);
	if (vm_setup(m, logpath) < 0) {
		if (m->master >= 0)
			vm_unlink(m);
		return 1;
	}
	why = vm_run(m);
	if (m->call == VM_CALL_UP)
		vm_hangup(m);	/* an unfinished fax keeps what came */
	vm_unlink(m);
	vm_log(m, "exit", "reason", "s", why, NULL);
	/* spandsp 0.0.6's t31_free() leaves its receive queue behind. */
	queue_free(m->t31->rx_queue);
	t31_free(m->t31);
	close(m->ino);
	close(m->slave);
	close(m->master);
	fclose(m->log);
	return 0;
}
