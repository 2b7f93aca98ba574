/*
 * sms_pdu.c - the SMS PDU codec (channels/sms_pdu.c) by hand, for the tests.
 *
 *   sms_pdu encode [-s] [-v MINUTES] NUMBER MAX_PARTS [REF] < TEXT
 *   sms_pdu decode HEX
 *
 * encode reads UTF-8 text on stdin (all of it, as it is: a final newline
 * is part of the text) and prints one line per part:
 *   SEQ TOTAL TPDU_LEN HEX
 * -s requests a status report (TP-SRR), -v sets a relative validity
 * period; REF is the concatenation reference (default 0).
 *
 * decode prints the fields of one PDU as a JSON object on one line: type
 * (deliver, submit, status-report), smsc, number, international, scts and
 * discharge (ms since the epoch, 0 if absent), coding (gsm7, ucs2, 8bit),
 * concat_ref, concat_total, concat_seq, text, srr, mr, status,
 * status_class (delivered, trying, failed, gave-up) and status_text (the
 * last three for a status report only).
 *
 * Exit status: 0; 1 when the codec refuses (the reason on stderr); 2 on
 * bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/sms_pdu.h"
#include "relay/relay.h"

#define TEXT_MAX	(256 * 1024)

static void
usage(void)
{
	fprintf(stderr, "usage: sms_pdu encode [-s] [-v MINUTES] NUMBER "
	    "MAX_PARTS [REF] < TEXT\n       sms_pdu decode HEX\n");
	exit(2);
}

/* An integer argument, or usage(). */
static int
int_arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < -1000000000L || v > 1000000000L)
		usage();
	return (int)v;
}

static int
encode(int argc, char **argv)
{
	struct sms_part parts[SMS_MAX_PARTS];
	char *text, err[256];
	int c, srr = 0, vp = 0, ref = 0, n;
	size_t len = 0, got;

	optind = 1;
	while ((c = getopt(argc, argv, "sv:")) != -1)
		switch (c) {
		case 's':
			srr = 1;
			break;
		case 'v':
			vp = int_arg(optarg);
			break;
		default:
			usage();
		}
	argc -= optind;
	argv += optind;
	if (argc < 2 || argc > 3)
		usage();
	if (argc == 3)
		ref = int_arg(argv[2]);
	if ((text = malloc(TEXT_MAX + 1)) == NULL) {
		perror("sms_pdu");
		return 1;
	}
	while (len < TEXT_MAX &&
	    (got = fread(text + len, 1, TEXT_MAX - len, stdin)) > 0)
		len += got;
	text[len] = '\0';
	if (strlen(text) != len) {
		fprintf(stderr, "sms_pdu: the text holds a NUL byte\n");
		free(text);
		return 1;
	}
	n = sms_encode_submit(argv[0], text, ref, int_arg(argv[1]), srr, vp,
	    parts, err, sizeof(err));
	free(text);
	if (n < 0) {
		fprintf(stderr, "sms_pdu: %s\n", err);
		return 1;
	}
	for (int i = 0; i < n; i++)
		printf("%d %d %d %s\n", parts[i].seq, parts[i].total,
		    parts[i].tpdu_len, parts[i].hex);
	return 0;
}

static int
decode(const char *hex)
{
	static const char *types[] = { "deliver", "submit", "status-report" };
	static const char *codings[] = { "gsm7", "ucs2", "8bit" };
	static const char *classes[] = { "delivered", "trying", "failed",
	    "gave-up" };
	struct sms_decoded d;
	struct json j;
	char err[256];

	if (sms_decode(hex, &d, err, sizeof(err)) == -1) {
		fprintf(stderr, "sms_pdu: %s\n", err);
		return 1;
	}
	json_init(&j, stdout);
	json_object_begin(&j);
	json_key(&j, "type");
	json_string(&j, types[d.type]);
	json_key(&j, "smsc");
	json_string(&j, d.smsc);
	json_key(&j, "number");
	json_string(&j, d.number);
	json_key(&j, "international");
	json_bool(&j, d.number_international);
	json_key(&j, "scts");
	json_int(&j, d.scts);
	json_key(&j, "coding");
	json_string(&j, codings[d.coding]);
	json_key(&j, "concat_ref");
	json_int(&j, d.concat_ref);
	json_key(&j, "concat_total");
	json_int(&j, d.concat_total);
	json_key(&j, "concat_seq");
	json_int(&j, d.concat_seq);
	json_key(&j, "text");
	json_string(&j, d.text);
	json_key(&j, "srr");
	json_bool(&j, d.srr);
	json_key(&j, "mr");
	json_int(&j, d.mr);
	json_key(&j, "discharge");
	json_int(&j, d.discharge);
	json_key(&j, "status");
	json_int(&j, d.status);
	if (d.type == SMS_PDU_STATUS_REPORT) {
		json_key(&j, "status_class");
		json_string(&j, classes[sms_status_classify(d.status)]);
		json_key(&j, "status_text");
		json_string(&j, sms_status_text(d.status));
	}
	json_object_end(&j);
	json_end(&j);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "encode") == 0)
		return encode(argc - 1, argv + 1);
	if (argc == 3 && strcmp(argv[1], "decode") == 0)
		return decode(argv[2]);
	usage();
	return 2;
}
