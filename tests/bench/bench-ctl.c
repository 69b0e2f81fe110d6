#define _GNU_SOURCE
/* bench-ctl: a load source in place of lwm2m-listen's control socket, to measure the client
 * filters (lwm2m-observe, lwm2m-write) alone. It speaks the command/response records of
 * CONTRACT.md on a Unix stream socket: every command is answered at once as a device would
 * (observe/read 2.05 with a value, write/execute 2.04, others 2.05). Once the observations are
 * in (-E of them, or no new one for a second), it sends COUNT notification lines as fast as the
 * client takes them, round-robin over the observations, each value the send time in
 * microseconds. Ends at SIGTERM, when every client has gone after the notifications, or at
 * the time bound. Prints its figures as one JSON line to stderr at the end. */
#include "jsonl.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAXC 16

struct client {
	int fd;
	char in[65536];
	size_t inlen;
	char *out;
	size_t outlen, outcap;
};

struct obsrec {
	int client;
	char *id;   /* the command id as JSON text */
	char *ep, *path;
};

static struct client cl[MAXC];
static int ncl;
static struct obsrec *obs;
static size_t nobs, capobs;
static volatile sig_atomic_t stop_flag;
static uint64_t commands, observes, writes, sent_notify;
static unsigned long nreg; /* devices dev0.. that "list" and "subscribe" report as registered */

static void out_append(struct client *c, const char *p, size_t n);

static int reg_event(char *buf, size_t cap, unsigned long i)
{
	return snprintf(buf, cap,
	                "{\"event\":\"register\",\"ep\":\"dev%lu\",\"reg\":\"r%lu\",\"lt\":86400,\"lwm2m\":\"1.1\","
	                "\"b\":\"U\",\"queue\":false,\"objects\":[\"/1/0\",\"/3/0\",\"/3303/0\",\"/3311/0\"],"
	                "\"addr\":\"127.0.0.1:%lu\",\"sec\":\"nosec\",\"time\":1763850000}",
	                i, i, 20000 + i % 40000);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void out_append(struct client *c, const char *p, size_t n)
{
	if (c->outlen + n > c->outcap) {
		size_t nc = c->outcap ? c->outcap : 65536;
		while (nc < c->outlen + n)
			nc *= 2;
		char *b = realloc(c->out, nc);
		if (!b)
			die(EXIT_TEMPORARY, "out of memory");
		c->out = b;
		c->outcap = nc;
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

/* Write what is queued; blocking, so a slow client slows the notifications (backpressure). */
static int out_flush(struct client *c)
{
	size_t off = 0;
	while (off < c->outlen) {
		ssize_t w = write(c->fd, c->out + off, c->outlen - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)w;
	}
	c->outlen = 0;
	return 0;
}

static char *dup_json(jv v)
{
	jv s = jv_dump_string(v, 0);
	char *r = strdup(jv_string_value(s));
	jv_free(s);
	if (!r)
		die(EXIT_TEMPORARY, "out of memory");
	return r;
}

static void handle_line(int ci, const char *line, size_t len)
{
	struct client *c = &cl[ci];
	jv o = jsonl_parse_object(line, len);
	commands++;
	if (!jv_is_valid(o)) {
		jv_free(o);
		static const char bad[] = "{\"id\":null,\"code\":\"bad-command\",\"error\":\"malformed\"}\n";
		out_append(c, bad, sizeof bad - 1);
		return;
	}
	const char *op = jl_str(o, "op");
	const char *ep = jl_str(o, "ep");
	const char *path = jl_str(o, "path");
	char *id = dup_json(jl_get(o, "id"));
	if (!op)
		op = "?";
	char buf[1024];
	int n;
	uint64_t v = real_us();
	if (!strcmp(op, "observe") || !strcmp(op, "read")) {
		n = snprintf(buf, sizeof buf,
		             "{\"id\":%s,\"op\":\"%s\",\"ep\":\"%s\",\"path\":\"%s\",\"code\":\"2.05\",\"ct\":0,"
		             "\"values\":{\"%s\":%" PRIu64 "},\"value\":%" PRIu64 "}\n",
		             id, op, ep ? ep : "", path ? path : "", path ? path : "", v, v);
		if (!strcmp(op, "observe") && ep && path) {
			if (nobs == capobs) {
				capobs = capobs ? capobs * 2 : 1024;
				obs = realloc(obs, capobs * sizeof *obs);
				if (!obs)
					die(EXIT_TEMPORARY, "out of memory");
			}
			obs[nobs++] = (struct obsrec){ci, strdup(id), strdup(ep), strdup(path)};
			observes++;
		}
	} else if (!strcmp(op, "write") || !strcmp(op, "execute") || !strcmp(op, "write-attributes")) {
		n = snprintf(buf, sizeof buf, "{\"id\":%s,\"op\":\"%s\",\"ep\":\"%s\",\"path\":\"%s\",\"code\":\"2.04\"}\n",
		             id, op, ep ? ep : "", path ? path : "");
		writes++;
	} else if (!strcmp(op, "list")) {
		n = snprintf(buf, sizeof buf, "{\"id\":%s,\"op\":\"list\",\"code\":\"2.05\",\"registrations\":[", id);
		out_append(c, buf, (size_t)n);
		for (unsigned long i = 0; i < nreg; i++) {
			if (i)
				out_append(c, ",", 1);
			n = reg_event(buf, sizeof buf, i);
			out_append(c, buf, (size_t)n);
		}
		n = snprintf(buf, sizeof buf, "]}\n");
	} else if (!strcmp(op, "subscribe")) {
		n = snprintf(buf, sizeof buf, "{\"id\":%s,\"op\":\"subscribe\",\"code\":\"2.05\"}\n", id);
		out_append(c, buf, (size_t)n);
		for (unsigned long i = 0; i < nreg; i++) {
			n = reg_event(buf, sizeof buf - 1, i);
			buf[n++] = '\n';
			out_append(c, buf, (size_t)n);
		}
		n = 0;
	} else {
		n = snprintf(buf, sizeof buf, "{\"id\":%s,\"op\":\"%s\",\"code\":\"2.05\"}\n", id, op);
	}
	free(id);
	jv_free(o);
	if (n > 0 && (size_t)n < sizeof buf)
		out_append(c, buf, (size_t)n);
}

static void read_client(int ci)
{
	struct client *c = &cl[ci];
	ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
	if (r <= 0) {
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->inlen += (size_t)r;
	size_t start = 0;
	for (;;) {
		char *nl = memchr(c->in + start, '\n', c->inlen - start);
		if (!nl)
			break;
		*nl = 0;
		handle_line(ci, c->in + start, (size_t)(nl - (c->in + start)));
		start = (size_t)(nl - c->in) + 1;
	}
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->inlen == sizeof c->in)
		c->inlen = 0; /* an absurd line: drop it */
	if (c->outlen && out_flush(c) < 0) {
		close(c->fd);
		c->fd = -1;
	}
}

static noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
	        "Usage: bench-ctl -C PATH [-n COUNT] [-E OBSERVATIONS] [-R DEVICES] [-T SECONDS] [-d FD]\n"
	        "Answer lwm2m-listen control commands as a device would, then send COUNT notifications.\n");
	exit(code);
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	const char *path = NULL;
	unsigned long long count = 0;
	unsigned long expect = 0;
	double bound = 300;
	int ready_fd = -1, c;
	while ((c = getopt(argc, argv, "C:n:E:R:T:d:h")) != -1) {
		switch (c) {
		case 'C': path = optarg; break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'R': nreg = strtoul(optarg, NULL, 10); break;
		case 'E': expect = strtoul(optarg, NULL, 10); break;
		case 'T': bound = atof(optarg); break;
		case 'd': ready_fd = atoi(optarg); break;
		case 'h': usage(0);
		default: usage(EXIT_USAGE);
		}
	}
	if (!path)
		usage(EXIT_USAGE);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (ls < 0 || strlen(path) >= sizeof sun.sun_path)
		die(EXIT_USAGE, "bad socket path %s", path);
	strcpy(sun.sun_path, path);
	unlink(path);
	if (bind(ls, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(ls, 16) < 0)
		die_sys(EXIT_TEMPORARY, "unable to listen on %s", path);
	if (ready_fd >= 0) {
		if (write(ready_fd, "\n", 1) != 1)
			log_warn("unable to write readiness");
		close(ready_fd);
	}
	uint64_t t0 = real_us(), end = t0 + (uint64_t)(bound * 1e6), last_obs_t = 0, nstart = 0, nend = 0;
	size_t last_nobs = 0, cursor = 0;
	int blasting = 0, done = 0;
	while (!stop_flag && !done && real_us() < end) {
		struct pollfd p[MAXC + 1];
		int np = 0;
		p[np++] = (struct pollfd){.fd = ls, .events = POLLIN};
		for (int i = 0; i < ncl; i++)
			p[np++] = (struct pollfd){.fd = cl[i].fd, .events = POLLIN};
		int timeout = blasting ? 0 : 50;
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR)
			die_sys(EXIT_TEMPORARY, "poll");
		if (p[0].revents & POLLIN) {
			int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0 && ncl < MAXC)
				cl[ncl++] = (struct client){.fd = fd};
			else if (fd >= 0)
				close(fd);
		}
		for (int i = 1; i < np; i++)
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
				read_client(i - 1);
		uint64_t now = real_us();
		if (nobs != last_nobs) {
			last_nobs = nobs;
			last_obs_t = now;
		}
		if (!blasting && count && sent_notify < count && nobs &&
		    (expect ? nobs >= expect : now - last_obs_t > 1000000u)) {
			blasting = 1;
			nstart = now;
		}
		if (blasting) {
			/* a batch per pass, so commands still get answered in between */
			char buf[1024];
			for (int k = 0; k < 256 && sent_notify < count; k++) {
				struct obsrec *o = &obs[cursor];
				cursor = cursor + 1 < nobs ? cursor + 1 : 0;
				if (cl[o->client].fd < 0)
					continue;
				uint64_t v = real_us();
				int n = snprintf(buf, sizeof buf,
				                 "{\"id\":%s,\"op\":\"notify\",\"ep\":\"%s\",\"path\":\"%s\",\"code\":\"2.05\","
				                 "\"ct\":0,\"values\":{\"%s\":%" PRIu64 "},\"value\":%" PRIu64 "}\n",
				                 o->id, o->ep, o->path, o->path, v, v);
				out_append(&cl[o->client], buf, (size_t)n);
				sent_notify++;
			}
			for (int i = 0; i < ncl; i++)
				if (cl[i].fd >= 0 && cl[i].outlen && out_flush(&cl[i]) < 0) {
					close(cl[i].fd);
					cl[i].fd = -1;
				}
			if (sent_notify >= count) {
				blasting = 0;
				nend = real_us();
			}
		}
		/* forget clients that left */
		int alive = 0;
		for (int i = 0; i < ncl; i++)
			alive += cl[i].fd >= 0;
		if (nend && !alive)
			done = 1;
	}
	double secs = nend > nstart ? (double)(nend - nstart) / 1e6 : 0;
	fprintf(stderr,
	        "{\"tool\":\"bench-ctl\",\"commands\":%" PRIu64 ",\"observes\":%" PRIu64 ",\"writes\":%" PRIu64
	        ",\"notify_sent\":%" PRIu64 ",\"notify_seconds\":%.3f}\n",
	        commands, observes, writes, sent_notify, secs);
	for (int i = 0; i < ncl; i++) {
		if (cl[i].fd >= 0)
			close(cl[i].fd);
		free(cl[i].out);
	}
	for (size_t i = 0; i < nobs; i++) {
		free(obs[i].id);
		free(obs[i].ep);
		free(obs[i].path);
	}
	free(obs);
	unlink(path);
	return 0;
}
