/*
 * MMIO round trips over a vfio-user unix socket from C, and the floor they are measured
 * against. Written from the protocol facts in docs (16-byte header: id u16, command u16,
 * msg_size u32, flags u32, error u32; REGION_READ = 9 with offset u64, region u32,
 * count u32; the reply repeats those 16 bytes and appends count data bytes).
 *
 *   vfu_bench client SOCKET N   VERSION, then N 4-byte REGION_READs of region 0 offset 0;
 *                               prints the mean round trip in microseconds
 *   vfu_bench echo SOCKET       the floor: answers every message with a reply of the size a
 *                               server sends (REGION_READ: 16 + 16 + count), one write each;
 *                               one connection after the other, until killed
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct hdr {
	uint16_t id, command;
	uint32_t size, flags, error;
};

enum { HDR = 16, CMD_VERSION = 1, CMD_REGION_READ = 9, TYPE_REPLY = 1, FLAG_ERROR = 0x20 };

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* 0 once all of it is read, -1 if the peer closed first. */
static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r == 0)
			return -1;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		p += r;
		n -= r;
	}
	return 0;
}

static void write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += w;
		n -= w;
	}
}

static void serve_echo(int fd, char *buf, size_t cap);

static struct sockaddr_un address(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "socket path too long\n");
		exit(1);
	}
	strcpy(sa.sun_path, path);
	return sa;
}

/* Per message: header and payload read, the reply written at once; connections one by one. */
static int echo(const char *path)
{
	struct sockaddr_un sa = address(path);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1))
		die("listen");
	static char buf[1 << 16];
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			die("accept");
		serve_echo(fd, buf, sizeof buf);
		close(fd);
	}
	return 0;
}

static void serve_echo(int fd, char *buf, size_t cap)
{
	for (;;) {
		struct hdr h;
		if (read_full(fd, &h, HDR))
			return;
		if (h.size < HDR || h.size - HDR > cap - HDR - 4096)
			exit(2);
		uint32_t len = h.size - HDR;
		if (read_full(fd, buf + HDR, len))
			return;
		if (h.command == CMD_REGION_READ && len == 16) {
			uint32_t count;
			memcpy(&count, buf + HDR + 12, 4);
			if (count > 4096)
				exit(2);
			memset(buf + HDR + len, 0, count);
			len += count;
		}
		h.size = HDR + len;
		h.flags = TYPE_REPLY;
		memcpy(buf, &h, HDR);
		write_full(fd, buf, h.size);
	}
}

static uint16_t next_id;

/* Send one request, wait for its reply; returns the reply's payload length. */
static uint32_t transact(int fd, uint16_t command, const void *payload, uint32_t len, char *reply, size_t cap)
{
	char msg[256];
	struct hdr h = { next_id++, command, HDR + len, 0, 0 };
	memcpy(msg, &h, HDR);
	memcpy(msg + HDR, payload, len);
	write_full(fd, msg, HDR + len);
	struct hdr r;
	if (read_full(fd, &r, HDR)) {
		fprintf(stderr, "server closed the connection\n");
		exit(3);
	}
	if (r.id != h.id || (r.flags & 0xF) != TYPE_REPLY || r.flags & FLAG_ERROR || r.size < HDR
	    || r.size - HDR > cap) {
		fprintf(stderr, "bad reply: id %u flags 0x%x error %u size %u\n", r.id, r.flags, r.error, r.size);
		exit(3);
	}
	if (read_full(fd, reply, r.size - HDR))
		exit(3);
	return r.size - HDR;
}

static int client(const char *path, long n)
{
	struct sockaddr_un sa = address(path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa))
		die("connect");
	char reply[4096];
	static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":8}}";
	char version[4 + sizeof caps] = { 0, 0, 0, 0 }; /* major 0, minor 0, JSON with its NUL */
	memcpy(version + 4, caps, sizeof caps);
	transact(fd, CMD_VERSION, version, sizeof version, reply, sizeof reply);
	struct {
		uint64_t offset;
		uint32_t region, count;
	} rd = { 0, 0, 4 };
	for (int i = 0; i < 2000; i++) /* warm up */
		transact(fd, CMD_REGION_READ, &rd, sizeof rd, reply, sizeof reply);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
		if (transact(fd, CMD_REGION_READ, &rd, sizeof rd, reply, sizeof reply) != 20)
			exit(4);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / n;
	printf("%.3f\n", us);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "echo"))
		return echo(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "client"))
		return client(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: %s echo SOCKET | client SOCKET N\n", argv[0]);
	return 1;
}
