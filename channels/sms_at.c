/*
 * sms_at.c - the AT dialogue with one modem: lines, final results, the
 * AT+CMGS prompt and unsolicited result codes (sms_at.h).
 *
 * State owned: the bytes read but not yet split into lines, the reply
 * being collected, and whether the next line is the PDU of a +CDS/+CMT.
 * Invariant: at most one command is outstanding (the modem is a serial
 * conversation); a URC can arrive at any time and is dispatched at once,
 * never mistaken for part of a reply.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channels/sms_at.h"

#define AT_BUF		8192
#define AT_LINE_MAX	1024

struct at_modem {
	struct serial	*port;
	char		 name[128];
	at_urc_fn	 urc;
	void		*arg;
	char		 buf[AT_BUF];		/* unparsed input */
	size_t		 len;
	struct at_reply	*reply;		/* being collected, or NULL */
	struct at_reply	 own;		/* for at_feed() without a command */
	int		 done;		/* the reply has its final result */
	int		 want_prompt;	/* AT+CMGS sent: "> " ends the wait */
	int		 prompt;	/* ... and it came */
	char		 echo[64];	/* the command sent: its echo is skipped */
	enum at_urc	 pdu_for;	/* the next line is the PDU of */
	int		 pdu_next;	/* ... this URC */
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct at_modem *
at_new(struct serial *port, const char *name, at_urc_fn urc, void *arg)
{
	struct at_modem *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->port = port;
	snprintf(m->name, sizeof(m->name), "%s", name ? name : "modem");
	m->urc = urc;
	m->arg = arg;
	m->reply = &m->own;
	return m;
}

void
at_free(struct at_modem *m)
{
	free(m);
}

const struct at_reply *
at_last_reply(const struct at_modem *m)
{
	return m->reply != NULL ? m->reply : &m->own;
}

/* "+CMTI: "SM",3" -> mem "SM", index 3. */
static void
urc_stored(struct at_modem *m, enum at_urc kind, const char *args)
{
	char mem[16] = "";
	const char *p = args, *q;
	size_t n;

	while (*p == ' ')
		p++;
	if (*p == '"') {
		p++;
		if ((q = strchr(p, '"')) == NULL)
			return;
		n = (size_t)(q - p) < sizeof(mem) - 1 ? (size_t)(q - p) :
		    sizeof(mem) - 1;
		memcpy(mem, p, n);
		mem[n] = '\0';
		p = q + 1;
	}
	if ((p = strchr(p, ',')) == NULL || !isdigit((unsigned char)p[1]))
		return;
	/* an index is small: anything else is noise (and would overflow) */
	if (strspn(p + 1, "0123456789") > 5 || atoi(p + 1) > 65535)
		return;
	if (m->urc != NULL)
		m->urc(kind, mem, atoi(p + 1), NULL, m->arg);
}

/* Append an information line to the reply being collected. */
static void
reply_line(struct at_reply *r, const char *line)
{
	size_t have = strlen(r->lines), n = strlen(line);

	if (have + n + 2 > sizeof(r->lines))
		return;		/* a reply this long is noise: keep the start */
	if (have > 0)
		r->lines[have++] = '\n';
	memcpy(r->lines + have, line, n + 1);
	r->nlines++;
}

/* A final result code ends the reply. */
static int
final_line(struct at_reply *r, const char *line)
{
	const char *p;

	if (strcmp(line, "OK") == 0)
		r->status = AT_OK;
	else if (strcmp(line, "ERROR") == 0 || strcmp(line, "NO CARRIER") == 0 ||
	    strcmp(line, "COMMAND NOT SUPPORT") == 0) {
		r->status = AT_ERROR;
		r->code = -1;
	} else if (strncmp(line, "+CME ERROR:", 11) == 0 ||
	    strncmp(line, "+CMS ERROR:", 11) == 0) {
		r->status = AT_ERROR;
		r->cms = line[3] == 'S';
		for (p = line + 11; *p == ' '; p++)
			;
		r->code = isdigit((unsigned char)*p) ? atoi(p) : -1;
	} else
		return 0;
	snprintf(r->final, sizeof(r->final), "%s", line);
	return 1;
}

/* One complete line from the modem (already cleaned). */
static void
on_line(struct at_modem *m, const char *line)
{
	if (m->pdu_next) {
		m->pdu_next = 0;
		if (m->urc != NULL)
			m->urc(m->pdu_for, NULL, -1, line, m->arg);
		return;
	}
	if (strncmp(line, "+CMTI:", 6) == 0) {
		urc_stored(m, AT_URC_CMTI, line + 6);
		return;
	}
	if (strncmp(line, "+CDSI:", 6) == 0) {
		urc_stored(m, AT_URC_CDSI, line + 6);
		return;
	}
	if (strncmp(line, "+CDS:", 5) == 0 || strncmp(line, "+CMT:", 5) == 0) {
		m->pdu_for = line[3] == 'S' ? AT_URC_CDS : AT_URC_CMT;
		m->pdu_next = 1;
		return;
	}
	if (strcmp(line, "RING") == 0 || strncmp(line, "+CRING", 6) == 0 ||
	    strncmp(line, "+CLIP:", 6) == 0 || strncmp(line, "^", 1) == 0)
		return;		/* calls and vendor status lines: not ours */
	if (m->reply == NULL || m->done)
		return;		/* nothing asked: noise */
	if (m->echo[0] != '\0' && strcmp(line, m->echo) == 0) {
		m->echo[0] = '\0';	/* echo still on (before ATE0) */
		return;
	}
	if (final_line(m->reply, line)) {
		m->done = 1;
		return;
	}
	reply_line(m->reply, line);
}

void
at_feed(struct at_modem *m, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\r' || c == '\n') {
			char line[AT_LINE_MAX];
			size_t n = 0, s = 0;

			/* keep printable ASCII: line noise is dropped */
			for (size_t k = 0; k < m->len && n < sizeof(line) - 1; k++)
				if (m->buf[k] >= 0x20 && m->buf[k] < 0x7f)
					line[n++] = m->buf[k];
			line[n] = '\0';
			m->len = 0;
			while (line[s] == ' ')
				s++;
			while (n > s && line[n - 1] == ' ')
				line[--n] = '\0';
			if (line[s] != '\0')
				on_line(m, line + s);
			continue;
		}
		if (m->len < sizeof(m->buf))
			m->buf[m->len++] = (char)c;
		/* "> " has no line end: it is seen as it arrives */
		if (m->want_prompt && c == ' ' && m->len >= 2 &&
		    m->buf[m->len - 2] == '>') {
			int only = 1;

			for (size_t k = 0; k + 2 < m->len; k++)
				only &= m->buf[k] < 0x20 || m->buf[k] >= 0x7f;
			if (only) {
				m->prompt = 1;
				m->len = 0;
			}
		}
	}
}

/* Read and feed until the reply is complete (or, while a prompt is
 * wanted, the prompt came), or the deadline passes. */
static enum at_status
wait_for(struct at_modem *m, int64_t deadline, struct at_reply *r)
{
	char buf[1024];

	while (!m->done && !(m->want_prompt && m->prompt)) {
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return AT_TIMEOUT;
		n = serial_read(m->port, buf, sizeof(buf), (int)left, r->error,
		    sizeof(r->error));
		if (n < 0)
			return AT_GONE;
		at_feed(m, buf, (size_t)n);
	}
	return AT_OK;
}

static void
reply_reset(struct at_modem *m, struct at_reply *r, const char *cmd)
{
	memset(r, 0, sizeof(*r));
	r->code = -1;
	m->reply = r;
	m->done = 0;
	m->prompt = 0;
	m->want_prompt = 0;
	snprintf(m->echo, sizeof(m->echo), "%s", cmd);
}

static enum at_status
finish(struct at_modem *m, struct at_reply *r, enum at_status st,
    const char *cmd, int timeout_ms)
{
	m->reply = &m->own;
	m->done = 1;
	m->want_prompt = 0;
	if (st == AT_TIMEOUT)
		snprintf(r->error, sizeof(r->error), "%s: no answer to %s "
		    "within %ds", m->name, cmd, (timeout_ms + 999) / 1000);
	if (st != AT_OK)
		r->status = st;
	return r->status;
}

enum at_status
at_cmd(struct at_modem *m, const char *cmd, int timeout_ms,
    struct at_reply *r)
{
	char line[128];
	int64_t deadline = now_ms() + timeout_ms;
	enum at_status st;
	int n;

	reply_reset(m, r, cmd);
	n = snprintf(line, sizeof(line), "%s\r", cmd);
	if (n < 0 || (size_t)n >= sizeof(line))
		return finish(m, r, AT_ERROR, cmd, timeout_ms);
	if (serial_write(m->port, line, (size_t)n, timeout_ms, r->error,
	    sizeof(r->error)) == -1)
		return finish(m, r, AT_GONE, cmd, timeout_ms);
	st = wait_for(m, deadline, r);
	return finish(m, r, st, cmd, timeout_ms);
}

enum at_status
at_submit(struct at_modem *m, const char *hex, int tpdu_len, int timeout_ms,
    struct at_reply *r, int *mr)
{
	char cmd[32];
	int64_t deadline;
	enum at_status st;
	int n;

	*mr = -1;
	n = snprintf(cmd, sizeof(cmd), "AT+CMGS=%d", tpdu_len);
	reply_reset(m, r, cmd);
	m->want_prompt = 1;
	cmd[n] = '\r';
	if (serial_write(m->port, cmd, (size_t)n + 1, AT_TIMEOUT_MS, r->error,
	    sizeof(r->error)) == -1)
		return finish(m, r, AT_GONE, "AT+CMGS", AT_TIMEOUT_MS);
	cmd[n] = '\0';
	/* the prompt, or an ERROR instead of it */
	deadline = now_ms() + AT_TIMEOUT_MS;
	if ((st = wait_for(m, deadline, r)) == AT_GONE)
		return finish(m, r, st, cmd, AT_TIMEOUT_MS);
	if (m->done) {
		/* ERROR instead of the prompt; an OK is no better: nothing
		 * was sent */
		if (r->status == AT_OK) {
			r->status = AT_ERROR;
			snprintf(r->final, sizeof(r->final), "OK without a "
			    "prompt");
		}
		return finish(m, r, r->status, cmd, AT_TIMEOUT_MS);
	}
	if (!m->prompt) {
		/* ESC cancels a half-open prompt, should it come late */
		serial_write(m->port, "\x1b", 1, 1000, r->error,
		    sizeof(r->error));
		return finish(m, r, AT_TIMEOUT, "AT+CMGS (no prompt)",
		    AT_TIMEOUT_MS);
	}
	m->want_prompt = 0;
	if (serial_write(m->port, hex, strlen(hex), AT_TIMEOUT_MS, r->error,
	    sizeof(r->error)) == -1 || serial_write(m->port, "\x1a", 1,
	    AT_TIMEOUT_MS, r->error, sizeof(r->error)) == -1)
		return finish(m, r, AT_GONE, cmd, timeout_ms);
	deadline = now_ms() + timeout_ms;
	st = wait_for(m, deadline, r);
	finish(m, r, st, "the PDU", timeout_ms);
	if (r->status == AT_OK && ((*mr = at_parse_int(r->lines, "+CMGS:",
	    0)) < 0 || *mr > 255)) {
		*mr = -1;
		r->status = AT_ERROR;
		snprintf(r->final, sizeof(r->final), "OK without +CMGS");
	}
	return r->status;
}

int
at_poll(struct at_modem *m, int timeout_ms, char *err, size_t errlen)
{
	char buf[1024];
	ssize_t n;

	n = serial_read(m->port, buf, sizeof(buf), timeout_ms, err, errlen);
	if (n < 0)
		return -1;
	at_feed(m, buf, (size_t)n);
	return 0;
}

/* Is s a run of hex digits (a PDU line)? */
static int
hex_line(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int
at_parse_list(const char *lines, void (*fn)(int index, int stat,
    const char *pdu, void *arg), void *arg)
{
	const char *p = lines;
	int count = 0;

	while (p != NULL && *p != '\0') {
		const char *e = strchr(p, '\n'), *next, *pe;
		int index = -1, stat = -1, ok = 0;

		next = e != NULL ? e + 1 : NULL;
		if (strncmp(p, "+CMGL:", 6) == 0) {
			ok = sscanf(p + 6, " %d , %d", &index, &stat) == 2 &&
			    index >= 0;
		} else if (strncmp(p, "+CMGR:", 6) == 0) {
			ok = sscanf(p + 6, " %d", &stat) == 1;
		}
		if (!ok || next == NULL) {
			p = next;
			continue;
		}
		/* the PDU is the next line */
		pe = strchr(next, '\n');
		size_t n = pe != NULL ? (size_t)(pe - next) : strlen(next);

		if (hex_line(next, n) && n < 1024) {
			char pdu[1024];

			memcpy(pdu, next, n);
			pdu[n] = '\0';
			fn(index, stat, pdu, arg);
			count++;
			p = pe != NULL ? pe + 1 : NULL;
		} else
			p = next;
	}
	return count;
}

int
at_parse_int(const char *lines, const char *prefix, int nth)
{
	const char *p = lines;
	size_t plen = strlen(prefix);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, prefix, plen) == 0) {
			const char *q = p + plen;

			for (int i = 0; i < nth; i++) {
				const char *c = strchr(q, ',');
				const char *e = strchr(q, '\n');

				if (c == NULL || (e != NULL && c > e))
					return -1;
				q = c + 1;
			}
			while (*q == ' ' || *q == '"')
				q++;
			if (!isdigit((unsigned char)*q))
				return -1;
			long v = strtol(q, NULL, 10);

			return v > 1000000 ? -1 : (int)v;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

/*
 * 3GPP TS 24.011 8.2.5.4 (RP causes, 0-127) and TS 27.005 3.2.5 (300-511).
 * Permanent: what says the number or the subscription will not take a
 * message (and a PDU the modem calls invalid: sending it again will not
 * help).  Everything else - network out of order, congestion, the ME, the
 * SIM, the SMSC - may work later or on another modem.
 */
int
at_cms_permanent(int code)
{
	switch (code) {
	case 1:		/* unassigned (unallocated) number */
	case 8:		/* operator determined barring */
	case 10:	/* call barred */
	case 21:	/* short message transfer rejected */
	case 28:	/* unidentified subscriber */
	case 29:	/* facility rejected */
	case 30:	/* unknown subscriber */
	case 50:	/* requested facility not subscribed */
	case 96:	/* invalid mandatory information */
	case 304:	/* invalid PDU mode parameter */
		return 1;
	default:
		return 0;
	}
}

const char *
at_cms_text(int code)
{
	switch (code) {
	case 1:		return "unassigned number";
	case 8:		return "operator determined barring";
	case 10:	return "call barred";
	case 21:	return "short message transfer rejected";
	case 27:	return "destination out of service";
	case 28:	return "unidentified subscriber";
	case 29:	return "facility rejected";
	case 30:	return "unknown subscriber";
	case 38:	return "network out of order";
	case 41:	return "temporary failure";
	case 42:	return "congestion";
	case 47:	return "resources unavailable";
	case 50:	return "requested facility not subscribed";
	case 96:	return "invalid mandatory information";
	case 300:	return "ME failure";
	case 302:	return "operation not allowed";
	case 304:	return "invalid PDU mode parameter";
	case 310:	return "SIM not inserted";
	case 311:	return "SIM PIN required";
	case 322:	return "memory full";
	case 330:	return "SMSC address unknown";
	case 331:	return "no network service";
	case 332:	return "network timeout";
	case 500:	return "unknown error";
	default:	return "error";
	}
}
