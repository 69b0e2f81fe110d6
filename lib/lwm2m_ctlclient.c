#define _GNU_SOURCE
#include "lwm2m_ctlclient.h"

#include "jsonl.h"
#include "linereader.h"
#include "log.h"
#include "outq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define OUT_MAX (64u << 20) /* commands queued for a control socket that is not reading */

struct ctlclient {
	char *path;
	int fd;
	struct linereader lr;
	double next_id;
	long long retry_at; /* monotonic ms of the next connect attempt */
	int backoff;
	int last_errno; /* of the last failed attempt, so a failure is logged once */
	int ever;       /* connected at least once */
	/* Commands not yet taken by the socket. Writes never block: lwm2m-listen may itself be
	 * blocked writing events to our standard input, which we must keep reading. */
	struct outq out;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ctlclient *ctl_new(const char *path)
{
	struct ctlclient *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->path = strdup(path);
	if (!c->path) {
		free(c);
		return NULL;
	}
	c->fd = -1;
	c->backoff = RETRY_MIN_MS;
	c->out.sock = 1;
	lr_init(&c->lr, -1, 0);
	return c;
}

static void drop(struct ctlclient *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->out.len = 0;
	c->retry_at = now_ms() + RETRY_MIN_MS;
	c->backoff = RETRY_MIN_MS;
}

void ctl_free(struct ctlclient *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	lr_free(&c->lr);
	outq_free(&c->out);
	free(c->path);
	free(c);
}

int ctl_connected(const struct ctlclient *c)
{
	return c->fd >= 0;
}

int ctl_connect(struct ctlclient *c)
{
	if (c->fd >= 0)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(c->path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	strcpy(sa.sun_path, c->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	/* non-blocking reads: ctl_read_more takes what is waiting without waiting for more */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	c->fd = fd;
	lr_free(&c->lr);
	lr_init(&c->lr, fd, 0);
	c->backoff = RETRY_MIN_MS;
	c->last_errno = 0;
	if (c->ever)
		log_info("reconnected to lwm2m-listen at %s", c->path);
	else
		log_debug("connected to lwm2m-listen at %s", c->path);
	c->ever = 1;
	return 1;
fail:
	if (errno != c->last_errno)
		log_warn("unable to connect to lwm2m-listen at %s: %s (retrying)", c->path, strerror(errno));
	c->last_errno = errno;
	c->retry_at = now_ms() + c->backoff;
	c->backoff = c->backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->backoff * 2;
	return -1;
}

/* Send what is queued, without blocking. 0, or -1 when the connection failed (dropped). */
static int flush_out(struct ctlclient *c)
{
	if (outq_flush(&c->out, c->fd) == 0)
		return 0;
	log_warn("lost the connection to lwm2m-listen at %s: %s", c->path, strerror(errno));
	drop(c);
	return -1;
}

double ctl_send(struct ctlclient *c, jv cmd)
{
	if (c->fd < 0) {
		jv_free(cmd);
		return 0;
	}
	double id = ++c->next_id;
	cmd = jv_object_set(cmd, jv_string("id"), jv_number(id));
	jv s = jv_dump_string(cmd, 0);
	s = jv_string_append_str(s, "\n");
	const char *p = jv_string_value(s);
	size_t len = (size_t)jv_string_length_bytes(jv_copy(s));
	log_debug("-> %.*s", (int)(len - 1), p);
	if (c->out.len + len > OUT_MAX) {
		log_warn("lwm2m-listen at %s takes no commands (%u MiB queued): reconnecting", c->path, OUT_MAX >> 20);
		drop(c);
		jv_free(s);
		return 0;
	}
	if (outq_put(&c->out, p, len) < 0)
		die(EXIT_TEMPORARY, "out of memory");
	jv_free(s);
	return flush_out(c) < 0 ? 0 : id;
}

int ctl_poll_setup(struct ctlclient *c, struct pollfd *p)
{
	p->fd = c->fd;
	p->events = POLLIN | (c->out.len ? POLLOUT : 0);
	p->revents = 0;
	if (c->fd >= 0)
		return -1;
	long long wait = c->retry_at - now_ms();
	return wait < 0 ? 0 : (int)wait;
}

int ctl_poll_done(struct ctlclient *c, const struct pollfd *p)
{
	if (c->fd < 0) {
		if (now_ms() < c->retry_at)
			return 0;
		return ctl_connect(c) == 1 ? 1 : 0;
	}
	if (p->fd != c->fd)
		return 0;
	if ((p->revents & POLLOUT) && c->out.len && flush_out(c) < 0)
		return -1;
	if (!(p->revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	ssize_t n = lr_fill(&c->lr);
	if (n > 0)
		return 0;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	log_warn("lost the connection to lwm2m-listen at %s: %s", c->path,
	         n == 0 ? "closed by lwm2m-listen" : strerror(errno));
	/* keep what was buffered for ctl_next; a new connection starts a new reader */
	c->lr.eof = 1;
	drop(c);
	return -1;
}

int ctl_read_more(struct ctlclient *c)
{
	if (c->fd < 0 || c->lr.eof)
		return 0;
	return lr_fill(&c->lr) > 0; /* an error or the end: the next poll round reports it */
}

jv ctl_next(struct ctlclient *c)
{
	for (;;) {
		char *line;
		size_t len;
		int k = lr_next(&c->lr, &line, &len);
		if (k == LR_NEED_MORE)
			return jv_invalid();
		if (k == LR_TOOLONG) {
			log_warn("control socket line %lu: too long, skipped", c->lr.lineno);
			continue;
		}
		log_debug("<- %.*s", (int)len, line);
		jv v = jsonl_parse_object(line, len);
		if (jv_is_valid(v))
			return v;
		jv msg = jv_invalid_get_msg(v);
		log_warn("control socket line %lu: %s", c->lr.lineno,
		         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unreadable");
		jv_free(msg);
	}
}
