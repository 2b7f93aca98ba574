/*
 * serial.h - a byte stream to a modem, whatever it hangs off (private to
 * channels/).
 *
 * Three transports behind one small interface, chosen by the device name:
 *  - "tcp:HOST:PORT": a serial device server (ser2net, Moxa NPort in TCP
 *    server mode): a plain TCP connection, raw bytes both ways;
 *  - a pty (/dev/pts/N, or a link to one): a plain file descriptor in raw
 *    mode: libserialport cannot open ptys (it looks the device up in
 *    /sys/class/tty and needs modem-control ioctls ptys lack);
 *  - any other /dev/ path: libserialport, 8N1 at the configured speed with
 *    the configured flow control.
 * Every read and write is bounded by a timeout, so a modem that hangs can
 * never hang its reader.
 */
#ifndef DENGON_SERIAL_H
#define DENGON_SERIAL_H

#include <stddef.h>
#include <sys/types.h>

struct serial;

/*
 * Open device at baud (libserialport devices only) with flow control
 * "none", "rtscts" or "xonxoff"; a TCP connection must be up within
 * timeout_ms.  Returns the stream, or NULL with err naming the device and
 * what failed ("permission denied", "no such device" ...).
 */
struct serial *serial_open(const char *device, int baud, const char *flow,
    int timeout_ms, char *err, size_t errlen);

/* Close and free (NULL is fine). */
void serial_close(struct serial *s);

/* The descriptor to poll() for input. */
int serial_fd(const struct serial *s);

/*
 * Read what is there, waiting up to timeout_ms for the first byte: the
 * count, 0 on timeout, -1 with err when the device has gone (EOF, hang-up,
 * I/O error).
 */
ssize_t serial_read(struct serial *s, void *buf, size_t len, int timeout_ms,
    char *err, size_t errlen);

/* Write all of buf within timeout_ms: 0, or -1 with err. */
int serial_write(struct serial *s, const void *buf, size_t len,
    int timeout_ms, char *err, size_t errlen);

/* One port found by libserialport (`dengon channels --ports`). */
struct serial_port_info {
	char	name[128];		/* "/dev/ttyUSB0" */
	char	description[128];	/* "Huawei E3372" */
	char	transport[16];		/* "usb", "native", "bluetooth" */
	int	usb_vid, usb_pid;	/* 0 when not USB */
};

/* Every serial port on this machine: an allocated array in *out (the
 * caller frees it) with *n entries; 0, or -1 with err. */
int serial_ports(struct serial_port_info **out, size_t *n, char *err,
    size_t errlen);

#endif /* DENGON_SERIAL_H */
