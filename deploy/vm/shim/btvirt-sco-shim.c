/*
 * btvirt-sco-shim: an LD_PRELOAD library for BlueZ 5.66's `btvirt -l2`
 * (exactly two virtual controllers on /dev/vhci), so that SCO (voice) links
 * work between them on the virtual board.
 *
 * BlueZ 5.66's emulated controller (btdev) has two gaps, both fixed upstream
 * in 2024-2025 but not in Debian 12:
 *
 *  1. HCI Read Buffer Size answers SCO MTU 0 and 0 SCO packets; Linux then
 *     refuses every SCO connect() before any HCI command is sent.
 *     We patch the Command Complete event: SCO MTU 64, 8 packets.
 *  2. A new (e)SCO link is reported only to the initiating controller, and
 *     SCO data packets are dropped ("Unsupported packet 0x03"). We
 *     - send the peer controller a Connection Request (link type taken from
 *       the initiator's Synchronous Connection Complete),
 *     - answer the peer's Accept/Reject Synchronous Connection Request
 *       ourselves (Command Status + Synchronous Connection Complete with the
 *       initiator's handle),
 *     - forward H4 SCO data packets of that handle between the two fds,
 *     - mirror the initiator's Disconnection Complete to the peer.
 *
 * A packet we consumed is not hidden by making read() return 0 (that stalls
 * btvirt's main loop): its H4 type byte is rewritten to an unknown type,
 * which btdev logs and ignores.
 *
 * Diagnostics go to $BTVIRT_SHIM_LOG when set, else to stderr. With
 * BTVIRT_SHIM_TRACE=1 every packet read from or written to a /dev/vhci fd
 * is logged too (time, controller, the first bytes), to see which HCI
 * command btvirt got and what it answered.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* H4 packet types */
enum { H4_CMD = 0x01, H4_SCO = 0x03, H4_EVT = 0x04, H4_DROP_CMD = 0xff, H4_DROP_SCO = 0xfe };
/* HCI events */
enum { EV_DISCONN_COMPLETE = 0x05, EV_CMD_COMPLETE = 0x0e, EV_CMD_STATUS = 0x0f,
       EV_CONN_REQUEST = 0x04, EV_SYNC_CONN_COMPLETE = 0x2c };
/* HCI opcodes (little endian on the wire) */
enum { OP_READ_BUFFER_SIZE = 0x1005, OP_READ_BD_ADDR = 0x1009,
       OP_ACCEPT_SYNC = 0x0429, OP_REJECT_SYNC = 0x042a, OP_ENH_ACCEPT_SYNC = 0x043e };

#define MAXPKT 512

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_open)(const char *, int, ...);

static struct {
	int fd[2];            /* the two /dev/vhci fds, in open order */
	int n;
	uint8_t bdaddr[2][6]; /* from Read BD_ADDR, needed in the peer's events */
	int have_bdaddr[2];
	uint8_t sync_tmpl[17];  /* the initiator's Sync Conn Complete parameters */
	uint16_t handle;        /* the SCO handle, the same on both sides */
	int initiator, pending; /* sides; -1 when none */
	int up;
	unsigned long forwarded[2];
} st = { { -1, -1 }, 0, { { 0 } }, { 0 }, { 0 }, 0, -1, -1, 0, { 0 } };

static FILE *logf_;

static void init(void)
{
	if (real_write)
		return;
	real_write = dlsym(RTLD_NEXT, "write");
	real_read = dlsym(RTLD_NEXT, "read");
	real_writev = dlsym(RTLD_NEXT, "writev");
	real_open = dlsym(RTLD_NEXT, "open");
}

static void logmsg(const char *fmt, ...)
{
	va_list ap;
	if (!logf_) {
		const char *p = getenv("BTVIRT_SHIM_LOG");
		logf_ = p ? fopen(p, "a") : NULL;
		if (!logf_)
			logf_ = stderr;
	}
	va_start(ap, fmt);
	fputs("btvirt-sco-shim: ", logf_);
	vfprintf(logf_, fmt, ap);
	va_end(ap);
	fflush(logf_);
}

static int tracing = -1;

static void trace(const char *dir, int s, const uint8_t *p, ssize_t n)
{
	if (tracing < 0)
		tracing = getenv("BTVIRT_SHIM_TRACE") != NULL;
	if (!tracing)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char hex[3 * 8 + 1] = "";
	for (ssize_t i = 0; i < n && i < 8; i++)
		snprintf(hex + 3 * i, 4, " %02x", p[i]);
	logmsg("%ld.%06ld controller %d %s %zd:%s\n", (long)ts.tv_sec, ts.tv_nsec / 1000, s, dir, n, hex);
}

static int side_of(int fd)
{
	for (int i = 0; i < st.n; i++)
		if (st.fd[i] == fd)
			return i;
	return -1;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int open_common(const char *path, int flags, mode_t mode)
{
	init();
	int fd = real_open(path, flags, mode);
	if (fd >= 0 && strcmp(path, "/dev/vhci") == 0 && st.n < 2) {
		st.fd[st.n++] = fd;
		logmsg("controller %d is fd %d\n", st.n - 1, fd);
	}
	return fd;
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return open_common(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return open_common(path, flags, mode);
}

/* Gap 1: a non-zero SCO buffer in Read Buffer Size's Command Complete.
 * 04 | 0e len | ncmd | opcode(2) | status | acl_mtu(2) | sco_mtu(1) | acl_max(2) | sco_max(2) */
static void patch_buffer_size(uint8_t *p, size_t n)
{
	if (n >= 14 && p[0] == H4_EVT && p[1] == EV_CMD_COMPLETE &&
	    le16(p + 4) == OP_READ_BUFFER_SIZE && p[6] == 0) {
		p[9] = 64;
		p[12] = 8;
		p[13] = 0;
	}
}

/* An event btdev has just written to controller s. */
static void saw_event(int s, const uint8_t *p, size_t n)
{
	int peer = 1 - s;
	if (p[1] == EV_CMD_COMPLETE && n >= 13 && le16(p + 4) == OP_READ_BD_ADDR && p[6] == 0) {
		memcpy(st.bdaddr[s], p + 7, 6);
		st.have_bdaddr[s] = 1;
		return;
	}
	if (st.n != 2 || !st.have_bdaddr[0] || !st.have_bdaddr[1])
		return;
	if (p[1] == EV_SYNC_CONN_COMPLETE && n >= 20 && p[3] == 0) {
		/* btdev told only the initiator: ask the peer to accept. */
		memcpy(st.sync_tmpl, p + 3, 17);
		st.handle = le16(p + 4);
		st.initiator = s;
		st.pending = peer;
		uint8_t ev[13] = { H4_EVT, EV_CONN_REQUEST, 10 };
		memcpy(ev + 3, st.bdaddr[s], 6);
		ev[9] = 0x04; /* class of device: audio */
		ev[10] = 0x04;
		ev[11] = 0x20;
		ev[12] = p[12]; /* link type */
		real_write(st.fd[peer], ev, sizeof ev);
		logmsg("SCO handle %u on controller %d: connection request to %d\n", st.handle, s, peer);
		return;
	}
	if (p[1] == EV_DISCONN_COMPLETE && n >= 7 && p[3] == 0 && st.up &&
	    le16(p + 4) == st.handle && s == st.initiator) {
		uint8_t ev[7] = { H4_EVT, EV_DISCONN_COMPLETE, 4, 0, p[4], p[5], 0x13 };
		real_write(st.fd[peer], ev, sizeof ev);
		logmsg("SCO handle %u down, forwarded %lu/%lu packets\n", st.handle,
		       st.forwarded[0], st.forwarded[1]);
		st.up = 0;
		st.pending = -1;
	}
}

ssize_t write(int fd, const void *buf, size_t n)
{
	init();
	int s = side_of(fd);
	if (s >= 0)
		trace("write", s, buf, (ssize_t)n);
	if (s < 0 || n < 3 || n > MAXPKT || ((const uint8_t *)buf)[0] != H4_EVT)
		return real_write(fd, buf, n);
	uint8_t pkt[MAXPKT];
	memcpy(pkt, buf, n);
	patch_buffer_size(pkt, n);
	ssize_t r = real_write(fd, pkt, n);
	saw_event(s, pkt, n);
	return r;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	init();
	int s = side_of(fd);
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (s < 0 || total < 3 || total > MAXPKT)
		return real_writev(fd, iov, cnt);
	uint8_t pkt[MAXPKT];
	size_t off = 0;
	for (int i = 0; i < cnt; i++) {
		memcpy(pkt + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	if (pkt[0] != H4_EVT)
		return real_writev(fd, iov, cnt);
	return write(fd, pkt, total);
}

/* The peer answers our Connection Request: complete the link on its side. */
static void answer_accept(int s, int fd, const uint8_t *p)
{
	uint16_t op = le16(p + 1);
	uint8_t cs[7] = { H4_EVT, EV_CMD_STATUS, 4, 0x00, 0x01, p[1], p[2] };
	real_write(fd, cs, sizeof cs);
	uint8_t ev[20] = { H4_EVT, EV_SYNC_CONN_COMPLETE, 17 };
	memcpy(ev + 3, st.sync_tmpl, 17);
	memcpy(ev + 6, st.bdaddr[1 - s], 6);
	if (op == OP_REJECT_SYNC) {
		ev[3] = p[10] ? p[10] : 0x0f; /* status = the reject reason */
		real_write(fd, ev, sizeof ev);
		uint8_t dc[7] = { H4_EVT, EV_DISCONN_COMPLETE, 4, 0,
				  (uint8_t)(st.handle & 0xff), (uint8_t)(st.handle >> 8), 0x0f };
		real_write(st.fd[1 - s], dc, sizeof dc);
		st.pending = -1;
		logmsg("controller %d rejected SCO handle %u\n", s, st.handle);
		return;
	}
	real_write(fd, ev, sizeof ev);
	st.up = 1;
	st.pending = -1;
	st.forwarded[0] = st.forwarded[1] = 0;
	logmsg("controller %d accepted: SCO handle %u up on both sides\n", s, st.handle);
}

ssize_t read(int fd, void *buf, size_t n)
{
	init();
	ssize_t r = real_read(fd, buf, n);
	int s = side_of(fd);
	if (s >= 0)
		trace("read", s, buf, r);
	if (s < 0 || r < 4)
		return r;
	uint8_t *p = buf;
	if (p[0] == H4_CMD && s == st.pending) {
		uint16_t op = le16(p + 1);
		if (op == OP_ACCEPT_SYNC || op == OP_ENH_ACCEPT_SYNC || op == OP_REJECT_SYNC) {
			answer_accept(s, fd, p);
			p[0] = H4_DROP_CMD;
		}
	} else if (p[0] == H4_SCO && st.up && (le16(p + 1) & 0x0fff) == st.handle) {
		real_write(st.fd[1 - s], p, (size_t)r);
		if (++st.forwarded[s] == 1 || st.forwarded[s] % 500 == 0)
			logmsg("SCO data %d -> %d: %lu packets\n", s, 1 - s, st.forwarded[s]);
		p[0] = H4_DROP_SCO;
	}
	return r;
}
