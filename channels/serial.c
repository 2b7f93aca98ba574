/*
 * serial.c - the byte stream to a modem: libserialport for serial ports,
 * a plain descriptor for ptys and tcp: serial servers (serial.h).
 *
 * Owns the descriptor (or the sp_port) of one open device.  Promises: no
 * call blocks longer than its timeout; a device that has gone is an error
 * the caller sees (never a read that returns 0 forever).
 */
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "channels/serial.h"

struct serial {
	int		 fd;		/* for poll(), every transport */
	struct sp_port	*port;		/* libserialport, or NULL */
	char		 name[128];
};

/* Unix98 pty slaves are majors 136-143 (Documentation/admin-guide/
 * devices.txt); /dev/pts/ names them too. */
static int
is_pty(const char *device)
{
	struct stat st;

	if (strncmp(device, "/dev/pts/", 9) == 0)
		return 1;
	if (stat(device, &st) == -1 || !S_ISCHR(st.st_mode))
		return 0;
	return major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143;
}

static int
tcp_open(struct serial *s, const char *device, int timeout_ms, char *err,
    size_t errlen)
{
	char host[256], *colon;
	const char *h = device + 4;
	struct addrinfo hints, *res = NULL, *ai;
	int rc, fd = -1, one = 1;

	/* tcp:HOST:PORT or tcp:[V6]:PORT (checked by conf/) */
	snprintf(host, sizeof(host), "%s", *h == '[' ? h + 1 : h);
	if ((colon = strrchr(host, ':')) == NULL) {
		snprintf(err, errlen, "%s: not tcp:HOST:PORT", device);
		return -1;
	}
	*colon = '\0';
	if (colon > host && colon[-1] == ']')
		colon[-1] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", device, gai_strerror(rc));
		return -1;
	}
	snprintf(err, errlen, "%s: no address", device);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(rc);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			rc = 0;
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &len) == 0 &&
			    rc == 0)
				break;
			errno = rc != 0 ? rc : ETIMEDOUT;
		}
		snprintf(err, errlen, "%s: cannot connect: %s", device,
		    strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;
	/* AT commands are small: no Nagle delay on them */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	s->fd = fd;
	return 0;
}

static int
pty_open(struct serial *s, const char *device, char *err, size_t errlen)
{
	struct termios t;
	int fd;

	if ((fd = open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", device, strerror(errno));
		return -1;
	}
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		t.c_cflag |= CLOCAL | CREAD;
		tcsetattr(fd, TCSANOW, &t);
	}
	s->fd = fd;
	return 0;
}

/* libserialport's message for the last failure, with errno's meaning. */
static void
sp_error(char *err, size_t errlen, const char *device, const char *what)
{
	char *m = sp_last_error_message();

	snprintf(err, errlen, "%s: %s: %s", device, what, m ? m : "failed");
	sp_free_error_message(m);
}

static int
sp_device_open(struct serial *s, const char *device, int baud,
    const char *flow, char *err, size_t errlen)
{
	enum sp_flowcontrol fc = SP_FLOWCONTROL_NONE;

	if (flow != NULL && strcmp(flow, "rtscts") == 0)
		fc = SP_FLOWCONTROL_RTSCTS;
	else if (flow != NULL && strcmp(flow, "xonxoff") == 0)
		fc = SP_FLOWCONTROL_XONXOFF;
	if (access(device, F_OK) == -1) {
		/* say it plainly: the modem is unplugged or renamed */
		snprintf(err, errlen, "%s: no such device (is the modem "
		    "plugged in?)", device);
		return -1;
	}
	if (sp_get_port_by_name(device, &s->port) != SP_OK) {
		sp_error(err, errlen, device, "not a serial port");
		s->port = NULL;
		return -1;
	}
	if (sp_open(s->port, SP_MODE_READ_WRITE) != SP_OK) {
		if (errno == EACCES || errno == EPERM)
			snprintf(err, errlen, "%s: permission denied (the "
			    "daemon's user needs to be in the device's group, "
			    "usually dialout)", device);
		else
			sp_error(err, errlen, device, "cannot open");
		return -1;
	}
	if (sp_set_baudrate(s->port, baud) != SP_OK ||
	    sp_set_bits(s->port, 8) != SP_OK ||
	    sp_set_parity(s->port, SP_PARITY_NONE) != SP_OK ||
	    sp_set_stopbits(s->port, 1) != SP_OK ||
	    sp_set_flowcontrol(s->port, fc) != SP_OK) {
		sp_error(err, errlen, device, "cannot set 8N1 and the speed");
		return -1;
	}
	if (sp_get_port_handle(s->port, &s->fd) != SP_OK) {
		sp_error(err, errlen, device, "no descriptor");
		return -1;
	}
	return 0;
}

struct serial *
serial_open(const char *device, int baud, const char *flow, int timeout_ms,
    char *err, size_t errlen)
{
	struct serial *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		snprintf(err, errlen, "%s: out of memory", device);
		return NULL;
	}
	s->fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", device);
	if (strncmp(device, "tcp:", 4) == 0)
		rc = tcp_open(s, device, timeout_ms, err, errlen);
	else if (is_pty(device))
		rc = pty_open(s, device, err, errlen);
	else
		rc = sp_device_open(s, device, baud, flow, err, errlen);
	if (rc == -1) {
		serial_close(s);
		return NULL;
	}
	/* One process per modem: a second one (an old modem process still
	 * finishing after a restart) is refused, never interleaved. */
	if (strncmp(device, "tcp:", 4) != 0 && flock(s->fd, LOCK_EX | LOCK_NB)
	    == -1) {
		snprintf(err, errlen, "%s: in use by another process", device);
		serial_close(s);
		return NULL;
	}
	return s;
}

void
serial_close(struct serial *s)
{
	if (s == NULL)
		return;
	if (s->port != NULL) {
		sp_close(s->port);	/* fails harmlessly if not open */
		sp_free_port(s->port);
	} else if (s->fd >= 0)
		close(s->fd);
	free(s);
}

int
serial_fd(const struct serial *s)
{
	return s->fd;
}

ssize_t
serial_read(struct serial *s, void *buf, size_t len, int timeout_ms,
    char *err, size_t errlen)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	ssize_t n;
	int rc;

	while ((rc = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
		;
	if (rc == 0)
		return 0;
	if (rc == -1) {
		snprintf(err, errlen, "%s: poll: %s", s->name, strerror(errno));
		return -1;
	}
	if (s->port != NULL) {
		enum sp_return r = sp_nonblocking_read(s->port, buf, len);

		if (r > 0)
			return r;
		if (r == 0 && !(pfd.revents & (POLLHUP | POLLERR)))
			return 0;
		snprintf(err, errlen, "%s: the device has gone", s->name);
		return -1;
	}
	n = read(s->fd, buf, len);
	if (n > 0)
		return n;
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	snprintf(err, errlen, "%s: the device has gone (%s)", s->name,
	    n == 0 ? "end of stream" : strerror(errno));
	return -1;
}

int
serial_write(struct serial *s, const void *buf, size_t len, int timeout_ms,
    char *err, size_t errlen)
{
	const unsigned char *p = buf;
	struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };

	while (len > 0) {
		ssize_t n;
		int rc;

		while ((rc = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
			;
		if (rc == 0) {
			snprintf(err, errlen, "%s: write timed out (flow "
			    "control holding?)", s->name);
			return -1;
		}
		if (rc == -1 || (pfd.revents & (POLLHUP | POLLERR))) {
			snprintf(err, errlen, "%s: the device has gone",
			    s->name);
			return -1;
		}
		if (s->port != NULL)
			n = sp_nonblocking_write(s->port, p, len);
		else
			n = write(s->fd, p, len);
		if (n < 0 && (s->port != NULL || (errno != EAGAIN &&
		    errno != EINTR))) {
			snprintf(err, errlen, "%s: write: %s", s->name,
			    s->port != NULL ? "failed" : strerror(errno));
			return -1;
		}
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	return 0;
}

int
serial_ports(struct serial_port_info **out, size_t *n, char *err,
    size_t errlen)
{
	struct sp_port **list = NULL;
	struct serial_port_info *v;
	size_t count = 0;

	*out = NULL;
	*n = 0;
	if (sp_list_ports(&list) != SP_OK) {
		sp_error(err, errlen, "serial ports", "cannot list");
		return -1;
	}
	while (list[count] != NULL)
		count++;
	if ((v = calloc(count + 1, sizeof(*v))) == NULL) {
		sp_free_port_list(list);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		const char *d = sp_get_port_description(list[i]);
		enum sp_transport t = sp_get_port_transport(list[i]);

		snprintf(v[i].name, sizeof(v[i].name), "%s",
		    sp_get_port_name(list[i]));
		snprintf(v[i].description, sizeof(v[i].description), "%s",
		    d ? d : "");
		snprintf(v[i].transport, sizeof(v[i].transport), "%s",
		    t == SP_TRANSPORT_USB ? "usb" : t == SP_TRANSPORT_BLUETOOTH ?
		    "bluetooth" : "native");
		if (t == SP_TRANSPORT_USB)
			sp_get_port_usb_vid_pid(list[i], &v[i].usb_vid,
			    &v[i].usb_pid);
	}
	sp_free_port_list(list);
	*out = v;
	*n = count;
	return 0;
}
