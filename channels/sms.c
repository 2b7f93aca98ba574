/*
 * sms.c - the SMS channel: what a recipient reads (composed to fit
 * max_parts, code and alert id never cut), and the modems that send it
 * (sms.h), over the AT dialogue of sms_at.c and the PDUs of sms_pdu.c.
 *
 * State owned: the channel's configuration (devices, PIN files, speed,
 * flow control, max_parts) and, per open modem, its port and parser, the
 * reassembly of inbound parts and the time of the last listing.
 *
 * Promises: a number reaches the modem only inside a PDU, and only if it
 * is E.164 (sms_number_ok(), checked again here whatever the directory
 * said); a PIN is entered at most once per start-up of a device, and never
 * after the SIM refused one; an inbound message is deleted from the SIM
 * only after its owner recorded it.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channels/mail.h"
#include "channels/sms.h"
#include "channels/sms_at.h"
#include "relay/relay.h"

#define SMS_INIT_TRIES		3	/* "AT" until the modem answers */
#define SMS_REG_WAIT_MS		30000	/* network registration */
#define SMS_PENDING_MAX		64	/* inbound parts kept for reassembly */
#define SMS_PART_WAIT_MS	(10 * 60 * 1000)	/* a missing part */

struct sms_conf {
	char	**devices;
	char	**pins;		/* NULL entries: no PIN */
	size_t	  n;
	int	  baud;
	char	  flow[16];
	int	  max_parts;
	char	  lang[4];
	char	  relay[128];
	char	  country[8];
};

/* ---- configuration ---------------------------------------------------------- */

static void sms_release(void *state);

static int
sms_configure(const struct conf_channel *ch, const struct conf *relay,
    void **state, char *err, size_t errlen)
{
	struct sms_conf *sc = calloc(1, sizeof(*sc));
	const char *v;
	char **pins = NULL;
	size_t np = 0;

	if (sc == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sc->n = conf_split_list(conf_channel_get(ch, "devices"), &sc->devices);
	if (sc->n == 0) {
		snprintf(err, errlen, "devices: no modem listed");
		sms_release(sc);
		return -1;
	}
	if ((sc->pins = calloc(sc->n, sizeof(*sc->pins))) == NULL) {
		snprintf(err, errlen, "out of memory");
		sms_release(sc);
		return -1;
	}
	if ((v = conf_channel_get(ch, "pin_files")) != NULL)
		np = conf_split_list(v, &pins);
	for (size_t i = 0; i < np; i++) {
		if (i < sc->n && strcmp(pins[i], "-") != 0)
			sc->pins[i] = pins[i];
		else
			free(pins[i]);
	}
	free(pins);
	v = conf_channel_get(ch, "baud");
	sc->baud = v != NULL ? atoi(v) : 115200;
	v = conf_channel_get(ch, "flow_control");
	snprintf(sc->flow, sizeof(sc->flow), "%s", v ? v : "none");
	v = conf_channel_get(ch, "max_parts");
	sc->max_parts = v != NULL ? atoi(v) : 3;
	if (sc->max_parts < 1 || sc->max_parts > SMS_MAX_PARTS)
		sc->max_parts = 3;
	snprintf(sc->lang, sizeof(sc->lang), "%s", relay->language ?
	    relay->language : "ja");
	snprintf(sc->relay, sizeof(sc->relay), "%s", relay->name);
	snprintf(sc->country, sizeof(sc->country), "%s", relay->country_code ?
	    relay->country_code : "81");
	*state = sc;
	return 0;
}

static void
sms_release(void *state)
{
	struct sms_conf *sc = state;

	if (sc == NULL)
		return;
	for (size_t i = 0; i < sc->n; i++) {
		free(sc->devices ? sc->devices[i] : NULL);
		free(sc->pins ? sc->pins[i] : NULL);
	}
	free(sc->devices);
	free(sc->pins);
	free(sc);
}

size_t
sms_ndevices(const void *state)
{
	return ((const struct sms_conf *)state)->n;
}

const char *
sms_device(const void *state, size_t i)
{
	const struct sms_conf *sc = state;

	return i < sc->n ? sc->devices[i] : NULL;
}

/* ---- what the recipient reads ------------------------------------------------- */

/* The byte length of the first k characters of UTF-8 s. */
static size_t
utf8_prefix(const char *s, size_t k)
{
	size_t i = 0;

	while (s[i] != '\0' && k > 0) {
		i++;
		while ((s[i] & 0xC0) == 0x80)
			i++;
		k--;
	}
	return i;
}

static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += (*s & 0xC0) != 0x80;
	return n;
}

/* Collapse a text to what an SMS carries well: LF kept (at most one
 * blank line), other controls as spaces, trailing blanks dropped. */
static char *
clean_text(const char *s)
{
	size_t n = strlen(s ? s : ""), o = 0;
	char *out = malloc(n + 1);
	int nl = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n') {
			while (o > 0 && out[o - 1] == ' ')
				o--;
			if (o == 0 || ++nl > 2)
				continue;
			out[o++] = '\n';
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (o == 0 || out[o - 1] == ' ' || out[o - 1] == '\n'))
			continue;
		nl = 0;
		out[o++] = (char)c;
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\n'))
		o--;
	out[o] = '\0';
	return out;
}

/*
 * Assemble head + body (its first `keep` characters, with an ellipsis if
 * cut) + tail.  tier 0: the full tail; 1: the short one.
 */
static char *
assemble(const struct sms_conf *sc, const struct channel_msg *m,
    const char *subject, size_t subj_keep, const char *body, size_t keep,
    int tier, const char *ellipsis)
{
	struct mail_buf b = { 0 };
	char code[CODE_LEN + 2], when[64];
	int ja = strcmp(sc->lang, "en") != 0;
	size_t sl = utf8_prefix(subject, subj_keep);
	size_t bl = utf8_prefix(body, keep);

	code_format(m->code, code);
	relay_time_local(m->created, when, sizeof(when));
	if (m->drill)
		mail_buf_str(&b, ja ? "【訓練】" : "[DRILL] ");
	if (m->round > 0)
		mail_buf_str(&b, ja ? "【再送】" : "[Reminder] ");
	if (m->revision > 1)
		mail_buf_str(&b, ja ? "【更新】" : "[Update] ");
	mail_buf_fmt(&b, "[TLP:%s] ", queue_tlp_name(m->tlp));
	mail_buf_add(&b, subject, sl);
	if (subject[sl] != '\0')
		mail_buf_str(&b, ellipsis);
	if (bl > 0 || body[0] != '\0') {
		mail_buf_str(&b, "\n");
		mail_buf_add(&b, body, bl);
		if (body[bl] != '\0')
			mail_buf_str(&b, ellipsis);
	}
	if (m->notice != NULL)		/* an update, already confirmed */
		mail_buf_fmt(&b, ja ? "\n受信確認は済んでいます。返信は不要です。"
		    "\n通知番号 %s" : "\nAlready confirmed: no reply needed."
		    "\nAlert %s", m->alert);
	else if (tier == 0 && ja)
		mail_buf_fmt(&b, "\n確認コード %s をこのSMSに返信してください。"
		    "\n通知番号 %s %s %s", code, m->alert, when, sc->relay);
	else if (tier == 0)
		mail_buf_fmt(&b, "\nReply to this SMS with code %s to confirm."
		    "\nAlert %s %s %s", code, m->alert, when, sc->relay);
	else if (ja)
		mail_buf_fmt(&b, "\n確認コード %s\n通知番号 %s", code, m->alert);
	else
		mail_buf_fmt(&b, "\nCode %s\nAlert %s", code, m->alert);
	mail_buf_add(&b, "", 1);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* The longest k in [0, max] for which fits(k) (fits is monotone). */
static size_t
longest(const struct sms_conf *sc, const struct channel_msg *m,
    const char *subject, size_t subj_keep, const char *body, size_t max,
    int tier, const char *ell, int body_varies)
{
	size_t lo = 0, hi = max;

	while (lo < hi) {
		size_t mid = (lo + hi + 1) / 2;
		char *t = body_varies ?
		    assemble(sc, m, subject, subj_keep, body, mid, tier, ell) :
		    assemble(sc, m, subject, mid, body, 0, tier, ell);
		int ok = t != NULL && sms_parts_needed(t) <= sc->max_parts;

		free(t);
		if (ok)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static char *compose_alert(const struct sms_conf *sc,
    const struct channel_msg *m);

/* A notice (the alert was cancelled): marks, the alert id, the subject
 * while it fits (never for RED and AMBER+STRICT), no code. */
static char *
compose_notice(const struct sms_conf *sc, const struct channel_msg *m)
{
	int ja = strcmp(sc->lang, "en") != 0;
	char *subject = channel_tlp_restricted(m->tlp) ? strdup("") :
	    clean_text(m->subject);
	size_t keep = subject != NULL ? utf8_chars(subject) : 0;
	char *t = NULL;

	for (;;) {
		struct mail_buf b = { 0 };
		size_t sl = subject != NULL ? utf8_prefix(subject, keep) : 0;

		if (m->drill)
			mail_buf_str(&b, ja ? "【訓練】" : "[DRILL] ");
		mail_buf_fmt(&b, ja ? "【取消】通知番号 %s は取り消されました。"
		    "対応・返信は不要です。" : "[Cancelled] Alert %s has been "
		    "cancelled. No action or reply is needed.", m->alert);
		if (sl > 0) {
			mail_buf_str(&b, ja ? "\n件名: " : "\nSubject: ");
			mail_buf_add(&b, subject, sl);
			if (subject[sl] != '\0')
				mail_buf_str(&b, ja ? "…" : "...");
		}
		mail_buf_fmt(&b, "\n[TLP:%s] %s", queue_tlp_name(m->tlp),
		    sc->relay);
		mail_buf_add(&b, "", 1);
		if (b.oom) {
			free(b.p);
			break;
		}
		if (sms_parts_needed(b.p) <= sc->max_parts || keep == 0) {
			t = sms_parts_needed(b.p) <= sc->max_parts ? b.p : NULL;
			if (t == NULL)
				free(b.p);
			break;
		}
		free(b.p);
		keep = keep > 8 ? keep - 8 : 0;
	}
	free(subject);
	return t;
}

/* The text of m for SMS, fitted to max_parts; NULL if even the code and
 * the alert id alone do not fit. */
static char *
compose(const struct sms_conf *sc, const struct channel_msg *m)
{
	if (m->notice != NULL && strcmp(m->notice, "cancel") == 0)
		return compose_notice(sc, m);
	return compose_alert(sc, m);
}

/* compose() for the alert itself. */
static char *
compose_alert(const struct sms_conf *sc, const struct channel_msg *m)
{
	int ja = strcmp(sc->lang, "en") != 0;
	char *subject, *body, *t = NULL;
	const char *ell;
	size_t sn, bn;

	if (channel_tlp_restricted(m->tlp)) {
		subject = strdup(ja ? "閉域網メールで通知が届いています" :
		    "An alert for you is waiting in closed-network mail");
		body = strdup(ja ? "内容は閉域網（LGWAN）のメールでご確認ください。" :
		    "Please read it there.");
	} else {
		subject = clean_text(m->subject);
		body = clean_text(m->body);
	}
	if (subject == NULL || body == NULL)
		goto out;
	sn = utf8_chars(subject);
	bn = utf8_chars(body);
	for (int tier = 0; tier < 2 && t == NULL; tier++) {
		/* "..." keeps a GSM 7-bit text in 7 bits; "…" would not */
		t = assemble(sc, m, subject, sn, body, bn, tier, "");
		ell = t != NULL && sms_coding_for(t) == SMS_GSM7 ? "..." : "…";
		if (t != NULL && sms_parts_needed(t) <= sc->max_parts)
			break;
		free(t);
		t = NULL;
		/* shorten the body, keeping the whole subject */
		size_t k = longest(sc, m, subject, sn, body, bn, tier, ell, 1);

		t = assemble(sc, m, subject, sn, body, k, tier, ell);
		if (t != NULL && sms_parts_needed(t) <= sc->max_parts &&
		    (k > 0 || bn == 0))
			break;
		free(t);
		t = NULL;
		/* no body at all, and as much of the subject as fits */
		k = longest(sc, m, subject, sn, "", sn, tier, ell, 0);
		t = assemble(sc, m, subject, k, "", 0, tier, ell);
		if (t != NULL && sms_parts_needed(t) <= sc->max_parts)
			break;
		free(t);
		t = NULL;
	}
out:
	free(subject);
	free(body);
	return t;
}

int
sms_encode_msg(const void *state, const struct channel_msg *m,
    struct sms_part *parts, char **text, char *err, size_t errlen)
{
	const struct sms_conf *sc = state;
	char *t;
	int n, vp = 0;

	*text = NULL;
	if (!sms_number_ok(m->address)) {
		snprintf(err, errlen, "\"%s\" is not an E.164 number: not sent",
		    m->address ? m->address : "");
		return -1;
	}
	if ((t = compose(sc, m)) == NULL) {
		snprintf(err, errlen, "the code and alert id do not fit in "
		    "max_parts = %d", sc->max_parts);
		return -1;
	}
	/* the network keeps trying until the alert expires (at most a
	 * week: an SMS days late helps nobody) */
	if (m->expires > 0) {
		int64_t left = (m->expires - queue_now()) / 60000;

		vp = left < 5 ? 5 : left > 7 * 24 * 60 ? 7 * 24 * 60 : (int)left;
	}
	n = sms_encode_submit(m->address, t, (int)(m->attempt & 0xff),
	    sc->max_parts, 1, vp, parts, err, errlen);
	if (n < 0) {
		free(t);
		return -1;
	}
	*text = t;
	return n;
}

static int
sms_render(void *state, const struct channel_msg *m, char **out, size_t *len,
    char *err, size_t errlen)
{
	const struct sms_conf *sc = state;
	struct sms_part *parts = calloc(SMS_MAX_PARTS, sizeof(*parts));
	struct mail_buf b = { 0 };
	char *text = NULL;
	int n;

	if (parts == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((n = sms_encode_msg(state, m, parts, &text, err, errlen)) < 0) {
		free(parts);
		return -1;
	}
	mail_buf_fmt(&b, "To: %s\nCoding: %s, %d part%s (max_parts = %d)\n\n",
	    m->address, sms_coding_for(text) == SMS_GSM7 ? "GSM 7-bit" :
	    "UCS2", n, n == 1 ? "" : "s", sc->max_parts);
	mail_buf_str(&b, text);
	mail_buf_str(&b, "\n");
	for (int i = 0; i < n; i++) {
		mail_buf_fmt(&b, "\n--- part %d/%d ---\n", parts[i].seq,
		    parts[i].total);
		mail_buf_str(&b, parts[i].text);
		mail_buf_fmt(&b, "\nPDU (AT+CMGS=%d): ", parts[i].tpdu_len);
		mail_buf_str(&b, parts[i].hex);
		mail_buf_str(&b, "\n");
	}
	free(text);
	free(parts);
	if (b.oom) {
		free(b.p);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* Sending happens in the daemon's modem children (relay/modem.c), never in
 * a per-session worker: a modem must stay with the process that owns it. */
static int
sms_send(void *state, const struct channel_msg *msgs, size_t n,
    channel_report_fn report, void *arg, char *err, size_t errlen)
{
	snprintf(err, errlen, "sms is sent by the modem processes");
	return -1;
}

const struct channel_driver channel_sms = {
	.type = "sms",
	.max_batch = 1,
	.configure = sms_configure,
	.render = sms_render,
	.send = sms_send,
	.release = sms_release,
};

/* ---- modems ---------------------------------------------------------------------- */

/* An inbound part waiting for its siblings. */
struct pending {
	char	 from[48];
	int	 ref, total, seq, index;
	int64_t	 seen;		/* ms, monotonic-ish (queue_now) */
	int64_t	 scts;
	char	 text[SMS_TEXT_MAX];
	char	 pdu[400];
};

struct sms_modem {
	const struct sms_conf	*sc;
	size_t			 dev;
	const char		*name;
	struct serial		*port;
	struct at_modem		*at;
	struct sms_modem_cb	 cb;
	int64_t			 last_list;
	int			 list_due;	/* +CMTI/+CDSI came */
	int			 cds_ds;	/* AT+CNMI ds that was accepted */
};

/* A status report as +CDS gives it: with the SMSC octet, or - some
 * modems - without it (then "00" in front makes it decodable). */
static int
decode_report(const char *pdu, struct sms_decoded *d, char *err,
    size_t errlen)
{
	char with[SMS_PDU_HEX_MAX + 4];

	if (sms_decode(pdu, d, err, errlen) == 0 &&
	    d->type == SMS_PDU_STATUS_REPORT)
		return 0;
	if (strlen(pdu) + 3 > sizeof(with))
		return -1;
	snprintf(with, sizeof(with), "00%s", pdu);
	return sms_decode(with, d, err, errlen) == 0 &&
	    d->type == SMS_PDU_STATUS_REPORT ? 0 : -1;
}

/* A URC, straight from the parser (possibly in the middle of a command:
 * only note it, or record a +CDS, which needs no modem command). */
static void
on_urc(enum at_urc kind, const char *mem, int index, const char *pdu,
    void *arg)
{
	struct sms_modem *mm = arg;
	struct sms_decoded d;
	char err[128];

	switch (kind) {
	case AT_URC_CMTI:
	case AT_URC_CDSI:
		mm->list_due = 1;
		break;
	case AT_URC_CDS:
		if (pdu != NULL && decode_report(pdu, &d, err, sizeof(err)) == 0)
			mm->cb.report(&d, pdu, mm->cb.arg);
		else
			log_warnx("sms %s: status report not understood: %s",
			    mm->name, err);
		break;
	case AT_URC_CMT:
		/* we ask for +CMTI (stored), so an inline message means the
		 * modem ignored AT+CNMI: it is read from the SIM anyway */
		mm->list_due = 1;
		break;
	}
}

static int
pin_read(const char *path, char pin[16], char *err, size_t errlen)
{
	char *s = NULL;
	int ok;

	if (channel_read_secret(path, 15, &s, err, errlen) == -1)
		return -1;
	ok = strlen(s) >= 4 && strlen(s) <= 8 && strspn(s, "0123456789") ==
	    strlen(s);
	if (ok)
		snprintf(pin, 16, "%s", s);
	explicit_bzero(s, strlen(s));
	free(s);
	if (!ok)
		snprintf(err, errlen, "%s: a PIN is 4 to 8 digits", path);
	return ok ? 0 : -1;
}

/* The SIM: ready, or unlocked with the PIN once. */
static int
sim_unlock(struct sms_modem *mm, char *err, size_t errlen, int *fatal)
{
	struct at_reply *r = malloc(sizeof(*r));
	const char *pin_file = mm->sc->pins[mm->dev];
	char pin[16], cmd[32];
	int rc = -1;

	if (r == NULL)
		return -1;
	for (int round = 0; round < 2; round++) {
		if (at_cmd(mm->at, "AT+CPIN?", AT_TIMEOUT_MS, r) != AT_OK) {
			snprintf(err, errlen, "AT+CPIN?: %s", r->status ==
			    AT_ERROR ? r->final : r->error);
			/* +CME ERROR 10: no SIM */
			break;
		}
		if (strstr(r->lines, "READY") != NULL) {
			rc = 0;
			break;
		}
		if (strstr(r->lines, "PUK") != NULL) {
			snprintf(err, errlen, "the SIM asks for its PUK (blocked "
			    "after wrong PINs): unblock it by hand");
			*fatal = 1;
			break;
		}
		if (strstr(r->lines, "SIM PIN") == NULL) {
			snprintf(err, errlen, "SIM not ready: %s", r->lines);
			break;
		}
		if (round > 0) {
			snprintf(err, errlen, "the SIM still asks for its PIN");
			break;
		}
		if (pin_file == NULL) {
			snprintf(err, errlen, "the SIM needs a PIN and pin_files "
			    "has none for this device");
			*fatal = 1;
			break;
		}
		if (pin_read(pin_file, pin, err, errlen) == -1) {
			*fatal = 1;
			break;
		}
		snprintf(cmd, sizeof(cmd), "AT+CPIN=\"%s\"", pin);
		explicit_bzero(pin, sizeof(pin));
		if (at_cmd(mm->at, cmd, AT_TIMEOUT_MS, r) != AT_OK) {
			explicit_bzero(cmd, sizeof(cmd));
			/* never again: three wrong PINs lock the SIM */
			snprintf(err, errlen, "the SIM refused the PIN in %s "
			    "(%s): not tried again, fix the file and reload",
			    pin_file, r->status == AT_ERROR ? r->final :
			    r->error);
			*fatal = r->status == AT_ERROR;
			break;
		}
		explicit_bzero(cmd, sizeof(cmd));
		sleep(1);	/* the SIM takes a moment after its PIN */
	}
	explicit_bzero(r, sizeof(*r));
	free(r);
	return rc;
}

/* Everything from "AT" to AT+CNMI; status gets signal and registration. */
static int
modem_init(struct sms_modem *mm, char *status, size_t statuslen, char *err,
    size_t errlen, int *fatal)
{
	static const char *cnmi[] = { "AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,2,0",
	    "AT+CNMI=1,1,0,1,0", "AT+CNMI=1,1,0,2,0" };
	struct at_reply *r = malloc(sizeof(*r));
	int64_t until;
	int rc = -1, csq, reg = -1;

	if (r == NULL)
		return -1;
	/* a half-typed PDU from a process that died is cancelled by ESC */
	serial_write(mm->port, "\x1b\r", 2, 1000, err, errlen);
	for (int i = 0; i < SMS_INIT_TRIES; i++)
		if (at_cmd(mm->at, "AT", 2000, r) == AT_OK || r->status == AT_GONE)
			break;
	if (r->status != AT_OK) {
		snprintf(err, errlen, "no answer to AT (%s)", r->status ==
		    AT_GONE ? r->error : r->status == AT_ERROR ? r->final :
		    "silent");
		goto out;
	}
	if (at_cmd(mm->at, "ATE0", AT_TIMEOUT_MS, r) != AT_OK ||
	    at_cmd(mm->at, "AT+CMEE=1", AT_TIMEOUT_MS, r) != AT_OK) {
		snprintf(err, errlen, "ATE0/AT+CMEE=1: %s", r->final[0] ?
		    r->final : r->error);
		goto out;
	}
	if (sim_unlock(mm, err, errlen, fatal) == -1)
		goto out;
	csq = at_cmd(mm->at, "AT+CSQ", AT_TIMEOUT_MS, r) == AT_OK ?
	    at_parse_int(r->lines, "+CSQ:", 0) : -1;
	/* registered: 1 home, 5 roaming; on 2G/3G (CREG) or LTE (CEREG) */
	until = queue_now() + SMS_REG_WAIT_MS;
	while (reg != 1 && reg != 5) {
		if (at_cmd(mm->at, "AT+CREG?", AT_TIMEOUT_MS, r) == AT_OK)
			reg = at_parse_int(r->lines, "+CREG:", 1);
		if (reg != 1 && reg != 5 && at_cmd(mm->at, "AT+CEREG?",
		    AT_TIMEOUT_MS, r) == AT_OK)
			reg = at_parse_int(r->lines, "+CEREG:", 1);
		if (reg == 1 || reg == 5 || r->status == AT_GONE ||
		    queue_now() >= until)
			break;
		sleep(2);
	}
	if (reg != 1 && reg != 5) {
		snprintf(err, errlen, "not registered on a network (status %d%s)",
		    reg, reg == 3 ? ": registration denied" : "");
		goto out;
	}
	if (at_cmd(mm->at, "AT+CMGF=0", AT_TIMEOUT_MS, r) != AT_OK) {
		snprintf(err, errlen, "AT+CMGF=0 (PDU mode): %s", r->final[0] ?
		    r->final : r->error);
		goto out;
	}
	/* the SIM's storage for reading, writing and receiving: optional */
	if (at_cmd(mm->at, "AT+CPMS=\"SM\",\"SM\",\"SM\"", AT_TIMEOUT_MS, r) ==
	    AT_GONE) {
		snprintf(err, errlen, "%s", r->error);
		goto out;
	}
	mm->cds_ds = 0;
	for (size_t i = 0; i < sizeof(cnmi) / sizeof(cnmi[0]); i++) {
		if (at_cmd(mm->at, cnmi[i], AT_TIMEOUT_MS, r) == AT_OK) {
			mm->cds_ds = cnmi[i][strlen(cnmi[i]) - 3] - '0';
			break;
		}
		if (r->status == AT_GONE)
			break;
	}
	if (mm->cds_ds == 0)
		log_warnx("sms %s: AT+CNMI refused: no status reports or "
		    "indications; the SIM is read every %ds", mm->name,
		    SMS_LIST_EVERY_MS / 1000);
	snprintf(status, statuslen, "signal %s%d/31, registered (%s)",
	    csq < 0 || csq == 99 ? "unknown " : "", csq < 0 || csq == 99 ? 0 :
	    csq, reg == 1 ? "home" : "roaming");
	mm->list_due = 1;
	rc = 0;
out:
	free(r);
	return rc;
}

struct sms_modem *
sms_modem_open(const void *state, size_t i, const struct sms_modem_cb *cb,
    char *status, size_t statuslen, char *err, size_t errlen, int *fatal)
{
	const struct sms_conf *sc = state;
	struct sms_modem *mm;

	*fatal = 0;
	status[0] = '\0';
	if (i >= sc->n || (mm = calloc(1, sizeof(*mm))) == NULL) {
		snprintf(err, errlen, "no device %zu", i);
		return NULL;
	}
	mm->sc = sc;
	mm->dev = i;
	mm->name = sc->devices[i];
	mm->cb = *cb;
	if ((mm->port = serial_open(mm->name, sc->baud, sc->flow, 10000, err,
	    errlen)) == NULL || (mm->at = at_new(mm->port, mm->name, on_urc,
	    mm)) == NULL || modem_init(mm, status, statuslen, err, errlen,
	    fatal) == -1) {
		sms_modem_close(mm);
		return NULL;
	}
	return mm;
}

void
sms_modem_close(struct sms_modem *mm)
{
	if (mm == NULL)
		return;
	at_free(mm->at);
	serial_close(mm->port);
	free(mm);
}

int
sms_modem_fd(const struct sms_modem *mm)
{
	return serial_fd(mm->port);
}

int
sms_modem_send(struct sms_modem *mm, const struct sms_part *parts, int n,
    struct channel_result *r)
{
	struct at_reply *ar = malloc(sizeof(*ar));
	size_t el = 0;
	int mr, rc = 0;

	r->outcome = CHANNEL_TEMPFAIL;
	r->evidence[0] = r->error[0] = '\0';
	if (ar == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		enum at_status st = at_submit(mm->at, parts[i].hex,
		    parts[i].tpdu_len, AT_CMGS_TIMEOUT_MS, ar, &mr);

		if (st == AT_OK) {
			mm->cb.part_sent(parts[i].seq, parts[i].total, mr,
			    mm->cb.arg);
			el += (size_t)snprintf(r->evidence + el,
			    sizeof(r->evidence) - el, "%s%d", i == 0 ?
			    "+CMGS: " : ",", mr);
			if (el >= sizeof(r->evidence))
				el = sizeof(r->evidence) - 1;
			continue;
		}
		if (st == AT_ERROR && ar->cms && ar->code >= 0) {
			/* the network's verdict on this number */
			snprintf(r->error, sizeof(r->error), "part %d/%d: +CMS "
			    "ERROR: %d (%s)", i + 1, n, ar->code,
			    at_cms_text(ar->code));
			if (at_cms_permanent(ar->code)) {
				r->outcome = CHANNEL_PERMFAIL;
				break;
			}
			rc = ar->code >= 300 ? -1 : 0;	/* 3xx, 500: the ME */
			break;
		}
		snprintf(r->error, sizeof(r->error), "part %d/%d: %.200s", i + 1, n,
		    st == AT_ERROR ? ar->final : ar->error);
		rc = -1;
		break;
	}
	if (r->error[0] == '\0') {
		r->outcome = CHANNEL_OK;
		el += (size_t)snprintf(r->evidence + el, sizeof(r->evidence) -
		    el, " (%d part%s via %s)", n, n == 1 ? "" : "s", mm->name);
	}
	free(ar);
	return rc;
}

/* ---- what comes back ------------------------------------------------------------ */

struct listing {
	struct sms_modem	*mm;
	struct pending		*p;
	size_t			 np;
	int			*reports;	/* indexes of stored reports */
	size_t			 nreports;
	int			 bad;		/* undecodable: deleted */
	int			*junk;
	size_t			 njunk;
};

/* E.164 for a sender: "+81..." as is, a national "090..." with the
 * country code, anything else (short codes, names) as sent. */
static void
sender_e164(const struct sms_conf *sc, const struct sms_decoded *d,
    char *out, size_t outlen)
{
	if (d->number_international || d->number[0] == '+')
		snprintf(out, outlen, "%s%.30s", d->number[0] == '+' ? "" :
		    "+", d->number);
	else if (d->number[0] == '0' && isdigit((unsigned char)d->number[1]))
		snprintf(out, outlen, "+%s%.28s", sc->country, d->number + 1);
	else
		snprintf(out, outlen, "%.31s", d->number);
}

static void
on_entry(int index, int stat, const char *pdu, void *arg)
{
	struct listing *l = arg;
	struct sms_decoded d;
	struct pending *v;
	char err[128];
	int *iv;

	if (sms_decode(pdu, &d, err, sizeof(err)) == -1 ||
	    d.type == SMS_PDU_SUBMIT) {
		/* nothing we can act on: an outbox copy, or broken */
		log_warnx("sms %s: message %d in the SIM not understood (%s): "
		    "deleted", l->mm->name, index, d.type == SMS_PDU_SUBMIT ?
		    "an outgoing copy" : err);
		if ((iv = realloc(l->junk, (l->njunk + 1) * sizeof(*iv))) != NULL) {
			l->junk = iv;
			l->junk[l->njunk++] = index;
		}
		return;
	}
	if (d.type == SMS_PDU_STATUS_REPORT) {
		if (l->mm->cb.report(&d, pdu, l->mm->cb.arg) == 1 &&
		    (iv = realloc(l->reports, (l->nreports + 1) *
		    sizeof(*iv))) != NULL) {
			l->reports = iv;
			l->reports[l->nreports++] = index;
		}
		return;
	}
	if (l->np >= SMS_PENDING_MAX ||
	    (v = realloc(l->p, (l->np + 1) * sizeof(*v))) == NULL)
		return;
	l->p = v;
	v = &l->p[l->np++];
	memset(v, 0, sizeof(*v));
	sender_e164(l->mm->sc, &d, v->from, sizeof(v->from));
	v->ref = d.concat_ref;
	v->total = d.concat_total > 0 ? d.concat_total : 1;
	v->seq = d.concat_total > 0 ? d.concat_seq : 1;
	v->index = index;
	v->scts = d.scts;
	snprintf(v->text, sizeof(v->text), "%s", d.text);
	snprintf(v->pdu, sizeof(v->pdu), "%s", pdu);
}

static void
delete_index(struct sms_modem *mm, int index)
{
	struct at_reply *r = malloc(sizeof(*r));
	char cmd[32];

	if (r == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "AT+CMGD=%d", index);
	if (at_cmd(mm->at, cmd, AT_TIMEOUT_MS, r) != AT_OK)
		log_warnx("sms %s: %s: %s", mm->name, cmd, r->final[0] ?
		    r->final : r->error);
	free(r);
}

/* Hand over the messages whose parts are all there (or whose missing part
 * is given up on), then delete what was recorded. */
static void
deliver_complete(struct listing *l)
{
	struct sms_modem *mm = l->mm;
	int64_t now = queue_now();

	for (size_t i = 0; i < l->np; i++) {
		struct pending *a = &l->p[i];
		struct mail_buf text = { 0 }, raw = { 0 };
		size_t have = 0, idx[SMS_MAX_PARTS * 3];
		int64_t oldest = a->scts;
		char key[128];

		if (a->seq == 0)
			continue;	/* taken with an earlier one */
		/* the siblings: same sender, reference and total */
		for (int seq = 1; seq <= a->total && a->total <=
		    (int)(sizeof(idx) / sizeof(idx[0])); seq++)
			for (size_t k = i; k < l->np; k++) {
				struct pending *b = &l->p[k];

				if (b->seq == seq && b->total == a->total &&
				    b->ref == a->ref &&
				    strcmp(b->from, a->from) == 0) {
					idx[have++] = k;
					if (b->scts < oldest)
						oldest = b->scts;
					break;
				}
			}
		if ((int)have < a->total && now - oldest < SMS_PART_WAIT_MS)
			continue;	/* wait for the rest */
		for (size_t k = 0; k < have; k++) {
			mail_buf_str(&text, l->p[idx[k]].text);
			if (k > 0)
				mail_buf_str(&raw, " ");
			mail_buf_str(&raw, l->p[idx[k]].pdu);
		}
		if ((int)have < a->total)
			mail_buf_str(&text, " [parts missing]");
		mail_buf_add(&text, "", 1);
		mail_buf_add(&raw, "", 1);
		snprintf(key, sizeof(key), "sms:%s:%lld:%d:%d", a->from,
		    (long long)oldest, a->ref, a->total);
		struct sms_inbound in = {
			.from = a->from, .text = text.p ? text.p : "",
			.scts = oldest, .key = key, .raw = raw.p ? raw.p : "",
			.complete = (int)have == a->total,
		};
		if (!text.oom && !raw.oom && mm->cb.inbound(&in, mm->cb.arg) == 1)
			for (size_t k = 0; k < have; k++)
				delete_index(mm, l->p[idx[k]].index);
		for (size_t k = 0; k < have; k++)
			l->p[idx[k]].seq = 0;
		free(text.p);
		free(raw.p);
	}
}

/* List the SIM's messages (AT+CMGL=4: all) and act on each. */
static int
list_sim(struct sms_modem *mm, char *err, size_t errlen)
{
	struct at_reply *r = malloc(sizeof(*r));
	struct listing l = { .mm = mm };
	int rc = 0;

	if (r == NULL)
		return 0;
	mm->list_due = 0;
	mm->last_list = queue_now();
	if (at_cmd(mm->at, "AT+CMGL=4", AT_TIMEOUT_MS * 2, r) != AT_OK) {
		if (r->status != AT_ERROR) {
			snprintf(err, errlen, "AT+CMGL=4: %s", r->error);
			rc = -1;
		}
		free(r);
		return rc;
	}
	at_parse_list(r->lines, on_entry, &l);
	free(r);
	deliver_complete(&l);
	for (size_t i = 0; i < l.nreports; i++)
		delete_index(mm, l.reports[i]);
	for (size_t i = 0; i < l.njunk; i++)
		delete_index(mm, l.junk[i]);
	free(l.p);
	free(l.reports);
	free(l.junk);
	return rc;
}

int
sms_modem_poll(struct sms_modem *mm, int timeout_ms, char *err,
    size_t errlen)
{
	int64_t left = mm->last_list + SMS_LIST_EVERY_MS - queue_now();

	if (mm->list_due || left <= 0)
		return list_sim(mm, err, errlen);
	if (timeout_ms > left)
		timeout_ms = (int)left;
	if (at_poll(mm->at, timeout_ms, err, errlen) == -1)
		return -1;
	if (mm->list_due)
		return list_sim(mm, err, errlen);
	return 0;
}

int
sms_modem_reset(struct sms_modem *mm, char *err, size_t errlen)
{
	struct at_reply *r = malloc(sizeof(*r));
	char status[128];
	int fatal = 0, rc;

	if (r == NULL)
		return -1;
	/* a full functionality reset; a modem that does not know it gets
	 * the radio switched off and on.  A hung modem may obey without
	 * answering: the start-up that follows tells. */
	if (at_cmd(mm->at, "AT+CFUN=1,1", 10000, r) == AT_ERROR) {
		at_cmd(mm->at, "AT+CFUN=0", 15000, r);
		at_cmd(mm->at, "AT+CFUN=1", 15000, r);
	}
	if (r->status == AT_GONE) {
		snprintf(err, errlen, "reset: %s", r->error);
		free(r);
		return -1;
	}
	free(r);
	sleep(1);
	rc = modem_init(mm, status, sizeof(status), err, errlen, &fatal);
	if (rc == 0)
		log_info("sms %s: reset: %s", mm->name, status);
	return rc;
}
