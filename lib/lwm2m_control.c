#define _GNU_SOURCE /* accept4 */
#include "lwm2m_control.h"

#include "cbor.h"
#include "json_out.h"
#include "jsonl.h"
#include "linereader.h"
#include "log.h"
#include "lwm2m_codec.h"

#include "objmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX (8u << 20) /* per connection: beyond this, lines to a reader that does not read are dropped */
#define LINE_MAX_CMD (1u << 20)
#define STOP_FLUSH_MS 2000 /* on stop, how long slow control clients get to take their lines */
/* stdout backlog past which lwm2m-listen stops reading datagrams (devices retransmit) */
#define STDOUT_HIGH (1u << 20)

struct client {
	uint64_t id;
	int fd;
	struct linereader lr;
	char *out;
	size_t outlen, outcap;
	int subscribed;
	int closing; /* read side ended: close once the output is written */
	unsigned long dropped; /* lines not sent to it: it did not read */
	uint64_t queued, written; /* bytes so far: a notification is acknowledged once written */
	struct client *next;
};

struct lwm2m_control {
	struct lwm2m_server *srv;
	int lfd; /* listening socket, -1 none */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int read_stdin;
	struct linereader in;
	struct client *clients;
	size_t nclients;
	uint64_t next_id;
	/* Event and stdin-answer lines not yet taken by the reader of stdout. A pipe is written
	 * without blocking: in `lwm2m-listen | lwm2m-observe -C` the reader also writes to our
	 * control socket, so blocking on stdout while it blocks on us would deadlock both. */
	char *sout;
	size_t soutlen, soutcap;
	int sout_nonblock;
	int sout_stalled;            /* past STDOUT_HIGH: datagrams are left waiting */
	unsigned long sout_stalls;   /* times that happened */
	uint64_t sout_queued, sout_written; /* bytes so far (lines when stdout blocks) */
	struct jbuf jb; /* a reply line being written */
};

static void stdout_flush(struct lwm2m_control *c);
static int client_flush(struct client *cl);

static void count_dropped(struct lwm2m_control *c)
{
	if (c->srv)
		lwm2m_server_counters(c->srv)->dropped_lines++;
}

struct lwm2m_control *lwm2m_control_new(const char *path, int read_stdin)
{
	struct lwm2m_control *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->lfd = -1;
	c->next_id = 1;
	c->read_stdin = read_stdin;
	struct stat so;
	if (fstat(STDOUT_FILENO, &so) == 0 && (S_ISFIFO(so.st_mode) || S_ISSOCK(so.st_mode))) {
		int fl = fcntl(STDOUT_FILENO, F_GETFL);
		c->sout_nonblock = fl >= 0 && fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) == 0;
	}
	if (read_stdin)
		lr_init(&c->in, STDIN_FILENO, LINE_MAX_CMD);
	if (path) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(path) >= sizeof sa.sun_path) {
			log_error("control socket path too long: %s", path);
			free(c);
			return NULL;
		}
		strcpy(sa.sun_path, path);
		strcpy(c->path, path);
		c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->lfd < 0) {
			log_error("unable to create the control socket: %s", strerror(errno));
			free(c);
			return NULL;
		}
		/* a socket left by an earlier run that died: replace it, but never a regular file */
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		if (bind(c->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(c->lfd, 64) < 0) {
			log_error("unable to listen on control socket %s: %s", path, strerror(errno));
			close(c->lfd);
			free(c);
			return NULL;
		}
	}
	return c;
}

void lwm2m_control_set_server(struct lwm2m_control *c, struct lwm2m_server *s)
{
	c->srv = s;
}

static void client_free(struct client *cl)
{
	close(cl->fd);
	lr_free(&cl->lr);
	free(cl->out);
	free(cl);
}

/* On stop: hand every connection what is queued for it, waiting STOP_FLUSH_MS at most for
 * readers that are slower than us. A single write could take part of a line, and the reader
 * would see it cut short at our close. A reader that takes nothing for that long may still
 * get a cut line: the bound keeps a stuck reader from holding up the stop. */
static void flush_at_stop(struct lwm2m_control *c)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd fds[64];
		nfds_t n = 0;
		for (struct client *cl = c->clients; cl && n < 64; cl = cl->next) {
			if (cl->outlen && client_flush(cl) < 0)
				cl->outlen = 0; /* gone: nothing more to hand over */
			if (cl->outlen)
				fds[n++] = (struct pollfd){.fd = cl->fd, .events = POLLOUT};
		}
		if (n == 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = STOP_FLUSH_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			log_warn("stopping: %lu control connection%s did not take all their lines within %d ms",
			         (unsigned long)n, n == 1 ? "" : "s", STOP_FLUSH_MS);
			return;
		}
		if (poll(fds, n, (int)left) < 0 && errno != EINTR)
			return;
	}
}

void lwm2m_control_free(struct lwm2m_control *c)
{
	if (!c)
		return;
	flush_at_stop(c);
	struct client *cl, *next;
	for (cl = c->clients; cl; cl = next) {
		next = cl->next;
		client_free(cl);
	}
	if (c->lfd >= 0) {
		close(c->lfd);
		unlink(c->path);
	}
	if (c->read_stdin)
		lr_free(&c->in);
	if (c->soutlen) {
		int fl = fcntl(STDOUT_FILENO, F_GETFL);
		if (fl >= 0)
			fcntl(STDOUT_FILENO, F_SETFL, fl & ~O_NONBLOCK);
		stdout_flush(c);
	}
	free(c->sout);
	free(c->jb.p);
	free(c);
}

static struct client *find_client(struct lwm2m_control *c, uint64_t id)
{
	for (struct client *cl = c->clients; cl; cl = cl->next)
		if (cl->id == id)
			return cl;
	return NULL;
}

static void client_send(struct lwm2m_control *c, struct client *cl, const char *s, size_t n)
{
	if (cl->outlen + n + 1 > OUT_MAX) {
		if (cl->dropped++ == 0)
			log_warn("control connection %llu does not read its lines: dropping them past %u MiB "
			         "(counted in stats as dropped_lines)",
			         (unsigned long long)cl->id, OUT_MAX >> 20);
		count_dropped(c);
		return;
	}
	/* written by lwm2m_control_flush, once per round of datagrams: one send(2) for many lines */
	if (cl->outlen + n > cl->outcap) {
		size_t cap = cl->outcap ? cl->outcap : 4096;
		while (cap < cl->outlen + n)
			cap *= 2;
		char *nb = realloc(cl->out, cap);
		if (!nb) {
			count_dropped(c);
			return;
		}
		cl->out = nb;
		cl->outcap = cap;
	}
	memcpy(cl->out + cl->outlen, s, n);
	cl->outlen += n;
	cl->queued += n;
}

/* Write what the connection takes now; -1 on an error other than a full socket. */
static int client_flush(struct client *cl)
{
	size_t off = 0;
	int rc = 0;
	while (off < cl->outlen) {
		ssize_t w = send(cl->fd, cl->out + off, cl->outlen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = errno == EAGAIN ? 0 : -1;
			break;
		}
		off += (size_t)w;
	}
	if (off) {
		memmove(cl->out, cl->out + off, cl->outlen - off);
		cl->outlen -= off;
		cl->written += off;
	}
	return rc;
}

/* Write what stdout's reader will take now. Losing stdout (EPIPE) is fatal, as it ends the
 * pipeline's data. */
static void stdout_flush(struct lwm2m_control *c)
{
	size_t off = 0;
	while (off < c->soutlen) {
		ssize_t w = write(STDOUT_FILENO, c->sout + off, c->soutlen - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		}
		off += (size_t)w;
	}
	memmove(c->sout, c->sout + off, c->soutlen - off);
	c->soutlen -= off;
	c->sout_written += off;
	if (c->sout_stalled && c->soutlen <= STDOUT_HIGH / 2) {
		c->sout_stalled = 0;
		log_info("stdout: the reader caught up; reading datagrams again");
	}
}

/* Queue one line (JSON text with its newline) for stdout and write what can be written. Never
 * dropped: past STDOUT_HIGH the server stops reading datagrams instead (lwm2m_control_backlogged). */
static void stdout_text(struct lwm2m_control *c, const char *line, size_t n)
{
	if (!c->sout_nonblock) {
		if (jsonl_put_text(stdout, line, n) < 0 || fflush(stdout) == EOF)
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		c->sout_queued++;
		c->sout_written++;
		return;
	}
	if (c->soutlen + n > c->soutcap) {
		size_t cap = c->soutcap ? c->soutcap : 65536;
		while (cap < c->soutlen + n)
			cap *= 2;
		char *nb = realloc(c->sout, cap);
		if (!nb)
			die(EXIT_TEMPORARY, "out of memory for %zu bytes of stdout backlog", c->soutlen + n);
		c->sout = nb;
		c->soutcap = cap;
	}
	memcpy(c->sout + c->soutlen, line, n);
	c->soutlen += n;
	c->sout_queued += n;
	/* written by lwm2m_control_flush, once per round */
	if (!c->sout_stalled && c->soutlen > STDOUT_HIGH) {
		c->sout_stalled = 1;
		c->sout_stalls++;
		log_warn("stdout: the reader is not reading (%zu bytes queued): datagrams wait, unacknowledged, "
		         "until it does (devices retransmit); nothing is dropped",
		         c->soutlen);
	}
}

/* The same for a record (v consumed). */
static void stdout_line(struct lwm2m_control *c, jv v)
{
	if (!c->sout_nonblock) {
		if (jsonl_write(stdout, v) < 0)
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		c->sout_queued++;
		c->sout_written++;
		return;
	}
	jv s = jv_dump_string(v, 0);
	s = jv_string_append_str(s, "\n");
	stdout_text(c, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
}

void lwm2m_control_flush(void *ud)
{
	struct lwm2m_control *c = ud;
	if (c->soutlen)
		stdout_flush(c);
	for (struct client *cl = c->clients; cl; cl = cl->next)
		if (cl->outlen)
			client_flush(cl); /* an error: poll reports it, and poll_done drops the connection */
}

int lwm2m_control_out_pos(uint64_t client, uint64_t *queued, uint64_t *written, void *ud)
{
	struct lwm2m_control *c = ud;
	if (client == 0) {
		*queued = c->sout_queued;
		*written = c->sout_written;
		return 0;
	}
	struct client *cl = find_client(c, client);
	if (!cl)
		return -1;
	*queued = cl->queued;
	*written = cl->written;
	return 0;
}

int lwm2m_control_backlogged(const struct lwm2m_control *c)
{
	return c->soutlen > STDOUT_HIGH;
}

/* Write v (consumed) as one line to client id (0: stdout). */
static void send_line(struct lwm2m_control *c, uint64_t id, jv v)
{
	if (id == 0) {
		stdout_line(c, v);
		return;
	}
	struct client *cl = find_client(c, id);
	if (!cl) {
		jv_free(v);
		return;
	}
	/* json_out: jq's text byte for byte, without jq's per-character output (one per notification) */
	struct jbuf *b = &c->jb;
	b->len = 0;
	b->failed = 0;
	json_out_append(b, v);
	jbuf_add(b, "\n", 1);
	jv_free(v);
	if (b->failed) {
		count_dropped(c);
		return;
	}
	client_send(c, cl, b->p, b->len);
}

void lwm2m_control_event(const char *line, size_t len, void *ud)
{
	struct lwm2m_control *c = ud;
	for (struct client *cl = c->clients; cl; cl = cl->next)
		if (cl->subscribed)
			client_send(c, cl, line, len);
	stdout_text(c, line, len);
}

/* ---- responses ---- */

static jv response_base(jv cmd, const char *op)
{
	jv r = jv_object();
	jv id = jl_get(cmd, "id");
	r = jv_object_set(r, jv_string("id"), jv_is_valid(id) ? id : jv_null());
	if (!jv_is_valid(id))
		jv_free(id);
	const char *o = op ? op : jl_str(cmd, "op");
	if (o)
		r = jv_object_set(r, jv_string("op"), jv_string(o));
	static const char *const echo[] = {"ep", "path", "paths"};
	for (size_t i = 0; i < sizeof echo / sizeof echo[0]; i++) {
		jv v = jl_get(cmd, echo[i]);
		if (jv_is_valid(v))
			r = jv_object_set(r, jv_string(echo[i]), v);
		else
			jv_free(v);
	}
	return r;
}

static void bad_command(struct lwm2m_control *c, uint64_t client, jv cmd, unsigned long lineno, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));
static void bad_command(struct lwm2m_control *c, uint64_t client, jv cmd, unsigned long lineno, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	jv r = jv_get_kind(cmd) == JV_KIND_OBJECT ? response_base(cmd, NULL)
	                                           : jv_object_set(jv_object(), jv_string("id"), jv_null());
	jv_free(cmd);
	r = jv_object_set(r, jv_string("code"), jv_string("bad-command"));
	r = jv_object_set(r, jv_string("error"), jv_string_fmt("line %lu: %s", lineno, msg));
	log_warn("%s line %lu: %s", client ? "control connection" : "stdin", lineno, msg);
	if (c->srv)
		lwm2m_server_counters(c->srv)->errors++;
	send_line(c, client, r);
}

static int single_resource_path(const struct lwm2m_path *p)
{
	if (p->len == 4)
		return 1;
	if (p->len != 3)
		return 0;
	const struct lwm2m_resource_def *d = objmodel_resource(p->id[0], p->id[2]);
	return !d || !d->multiple;
}

jv lwm2m_control_reply_jv(jv cmd, const struct lwm2m_reply *rep)
{
	const char *op = jl_str(cmd, "op");
	jv r = response_base(cmd, rep->notify ? "notify" : NULL);
	if (rep->code) {
		r = jv_object_set(r, jv_string("code"), jv_string_fmt("%d.%02d", rep->code / 100, rep->code % 100));
		if (rep->ct >= 0)
			r = jv_object_set(r, jv_string("ct"), jv_number(rep->ct));
		if (rep->code >= 400) {
			r = jv_object_set(r, jv_string("error"), jv_string(rep->error ? rep->error : "error"));
			if (rep->len)
				r = jv_object_set(r, jv_string("diagnostic"),
				                  jv_string_sized((const char *)rep->data, (int)rep->len));
		} else if (rep->len && (rep->ct == LWM2M_CT_LINK || (op && strcmp(op, "discover") == 0))) {
			r = jv_object_set(r, jv_string("links"), jv_string_sized((const char *)rep->data, (int)rep->len));
		} else if (rep->len) {
			struct lwm2m_path base = {0};
			const char *ps = jl_str(cmd, "path");
			if (ps)
				lwm2m_path_parse(ps, &base);
			/* no Content-Format: text/plain says the spec */
			jv vals = lwm2m_decode(rep->ct >= 0 ? rep->ct : LWM2M_CT_TEXT, &base, rep->data, rep->len);
			if (jv_is_valid(vals)) {
				char key[LWM2M_PATH_STRLEN];
				lwm2m_path_str(&base, key, sizeof key);
				if (ps && single_resource_path(&base)) {
					jv v = jl_get(vals, key);
					if (jv_is_valid(v))
						r = jv_object_set(r, jv_string("value"), v);
					else
						jv_free(v);
				}
				r = jv_object_set(r, jv_string("values"), vals);
			} else {
				jv msg = jv_invalid_get_msg(vals);
				r = jv_object_set(r, jv_string("error"),
				                  jv_string_fmt("undecodable payload: %s", jv_get_kind(msg) == JV_KIND_STRING
				                                                               ? jv_string_value(msg)
				                                                               : "unknown reason"));
				jv_free(msg);
			}
		}
		if (rep->location[0])
			r = jv_object_set(r, jv_string("location"), jv_string(rep->location));
	} else {
		r = jv_object_set(r, jv_string("code"), jv_string(rep->status ? rep->status : "error"));
		if (rep->error)
			r = jv_object_set(r, jv_string("error"), jv_string(rep->error));
	}
	jv_free(cmd);
	return r;
}

/* Skip one JSON value of well-formed compact text at p (jq's own dump); the end, or NULL. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;
	do {
		if (p >= end)
			return NULL;
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
			if (p >= end)
				return NULL;
			p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			depth--;
			p++;
		} else {
			while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ':')
				p++;
		}
		/* inside a container: step over the separators */
		while (depth > 0 && p < end && (*p == ',' || *p == ':'))
			p++;
	} while (depth > 0);
	return p;
}

int lwm2m_control_notify_text(struct jbuf *b, const char *cmd, size_t len, const struct lwm2m_reply *rep)
{
	if (!rep->notify || rep->code < 200 || rep->code >= 300 || !rep->len || rep->location[0] ||
	    rep->ct == LWM2M_CT_LINK)
		return 0;
	/* the members echoed, as the command's own text: jq's dump of them, as json_out prints */
	static const char *const names[] = {"id", "ep", "path", "paths", "op"};
	const char *at[5] = {0}, *to[5] = {0}, *p = cmd, *end = cmd + len;
	if (p >= end || *p++ != '{')
		return 0;
	while (p < end && *p != '}') {
		if (*p != '"')
			return 0;
		const char *k = p + 1, *kend = memchr(k, '"', (size_t)(end - k));
		if (!kend || memchr(k, '\\', (size_t)(kend - k)) || kend + 1 >= end || kend[1] != ':')
			return 0; /* a key with an escape: the general way */
		const char *v = kend + 2, *vend = skip_value(v, end);
		if (!vend)
			return 0;
		for (int i = 0; i < 5; i++)
			if (strlen(names[i]) == (size_t)(kend - k) && memcmp(names[i], k, (size_t)(kend - k)) == 0) {
				at[i] = v;
				to[i] = vend;
			}
		p = vend;
		if (p < end && *p == ',')
			p++;
	}
	if (at[4] && to[4] - at[4] == 10 && memcmp(at[4], "\"discover\"", 10) == 0)
		return 0; /* links */
	struct lwm2m_path base = {0};
	char ps[LWM2M_PATH_STRLEN + 2];
	int has_path = 0;
	if (at[2]) {
		size_t pl = (size_t)(to[2] - at[2]);
		if (*at[2] != '"' || pl < 2 || pl - 2 >= sizeof ps || memchr(at[2], '\\', pl))
			return 0;
		memcpy(ps, at[2] + 1, pl - 2);
		ps[pl - 2] = 0;
		lwm2m_path_parse(ps, &base);
		has_path = 1;
	}
	jv vals = lwm2m_decode(rep->ct >= 0 ? rep->ct : LWM2M_CT_TEXT, &base, rep->data, rep->len);
	if (!jv_is_valid(vals)) {
		jv_free(vals);
		return 0; /* the error line: the general way */
	}
	size_t start = b->len;
	JBUF_LIT(b, "{\"id\":");
	if (at[0])
		jbuf_add(b, at[0], (size_t)(to[0] - at[0]));
	else
		JBUF_LIT(b, "null");
	JBUF_LIT(b, ",\"op\":\"notify\"");
	for (int i = 1; i < 4; i++)
		if (at[i]) {
			jbuf_add(b, ",\"", 2);
			jbuf_add(b, names[i], strlen(names[i]));
			jbuf_add(b, "\":", 2);
			jbuf_add(b, at[i], (size_t)(to[i] - at[i]));
		}
	char num[48];
	int n = snprintf(num, sizeof num, ",\"code\":\"%d.%02d\"", rep->code / 100, rep->code % 100);
	jbuf_add(b, num, (size_t)n);
	if (rep->ct >= 0) {
		JBUF_LIT(b, ",\"ct\":");
		json_out_number(b, rep->ct);
	}
	if (has_path && single_resource_path(&base)) {
		jv v;
		if (rep->ct == LWM2M_CT_TEXT || rep->ct < 0 || rep->ct == LWM2M_CT_OPAQUE) {
			/* one value, under the base path's own name */
			int it = jv_object_iter(vals);
			v = jv_object_iter_valid(vals, it) ? jv_object_iter_value(vals, it) : jv_invalid();
		} else {
			char key[LWM2M_PATH_STRLEN];
			lwm2m_path_str(&base, key, sizeof key);
			v = jv_object_get(jv_copy(vals), jv_string(key));
		}
		if (jv_is_valid(v)) {
			JBUF_LIT(b, ",\"value\":");
			json_out_append(b, v);
		}
		jv_free(v);
	}
	JBUF_LIT(b, ",\"values\":");
	json_out_append(b, vals);
	jv_free(vals);
	JBUF_LIT(b, "}\n");
	if (b->failed) {
		b->len = start;
		b->failed = 0;
		return 0;
	}
	return 1;
}

void lwm2m_control_reply(struct lwm2m_request *rq, const struct lwm2m_reply *rep, void *ud)
{
	struct lwm2m_control *c = ud;
	if (rq->client == UINT64_MAX)
		return;
	/* a notification (many a second): written from the command's text, no jq object */
	if (rep->notify && rq->client && jv_get_kind(rq->cmd) == JV_KIND_STRING) {
		struct client *cl = find_client(c, rq->client);
		if (!cl)
			return;
		struct jbuf *b = &c->jb;
		b->len = 0;
		b->failed = 0;
		const char *t = jv_string_value(rq->cmd);
		if (lwm2m_control_notify_text(b, t, (size_t)jv_string_length_bytes(jv_copy(rq->cmd)), rep)) {
			client_send(c, cl, b->p, b->len);
			return;
		}
	}
	send_line(c, rq->client, lwm2m_control_reply_jv(lwm2m_request_cmd(rq), rep));
}

/* ---- commands ---- */

static int device_ct(const struct lwm2m_reg *g)
{
	int has_senml = 0, has_tlv = 0;
	for (int i = 0; i < g->nct; i++) {
		has_senml |= g->ct[i] == LWM2M_CT_SENML_JSON;
		has_tlv |= g->ct[i] == LWM2M_CT_TLV;
	}
	if (g->version >= 11 && (has_senml || !has_tlv))
		return LWM2M_CT_SENML_JSON;
	return LWM2M_CT_TLV;
}

/* What to ask a device for when the command names no format: what it announced, SenML JSON
 * first (some 1.1 clients answer an Accept-less read with an error). -1: no Accept option. */
static int device_accept(const struct lwm2m_reg *g)
{
	static const int pref[] = {LWM2M_CT_SENML_JSON, LWM2M_CT_SENML_CBOR, LWM2M_CT_TLV, LWM2M_CT_LWM2M_CBOR};
	if (!g || g->version < 11)
		return -1;
	for (size_t i = 0; i < sizeof pref / sizeof pref[0]; i++)
		for (int k = 0; k < g->nct; k++)
			if (g->ct[k] == pref[i])
				return pref[i];
	return -1;
}

/* values for a write/create/write-composite, as a flat object of path -> value */
static int encode_values(struct lwm2m_request *rq, int ct, const struct lwm2m_path *base, jv values, char **err)
{
	uint8_t *out = NULL;
	size_t len = 0;
	if (lwm2m_encode(ct, base, values, &out, &len, err) < 0)
		return -1;
	rq->payload = out;
	rq->len = len;
	rq->ct = ct;
	return 0;
}

static const char *const attr_names[] = {"pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "edge", "con", "hqmax"};

/* attrs is consumed */
static int add_attributes(struct lwm2m_request *rq, jv attrs, char *err, size_t errlen)
{
	int rc = 0;
	jv_object_foreach(attrs, k, v)
	{
		const char *name = jv_string_value(k);
		int known = 0;
		for (size_t i = 0; i < sizeof attr_names / sizeof attr_names[0]; i++)
			known |= strcmp(name, attr_names[i]) == 0;
		char q[64];
		if (!known) {
			snprintf(err, errlen, "unknown attribute %s", name);
			rc = -1;
		} else if (rq->nqueries == 8) {
			snprintf(err, errlen, "too many attributes");
			rc = -1;
		} else if (jv_get_kind(v) == JV_KIND_NULL) {
			snprintf(q, sizeof q, "%s", name); /* no value: remove the attribute */
			rq->queries[rq->nqueries++] = strdup(q);
		} else if (jv_get_kind(v) == JV_KIND_NUMBER) {
			snprintf(q, sizeof q, "%s=%.17g", name, jv_number_value(v));
			rq->queries[rq->nqueries++] = strdup(q);
		} else {
			snprintf(err, errlen, "attribute %s must be a number or null", name);
			rc = -1;
		}
		jv_free(k);
		jv_free(v);
		if (rc < 0)
			break;
	}
	jv_free(attrs); /* jv_object_foreach only borrows it */
	return rc;
}

/* The paths (consumed) of a Read-Composite or Observe-Composite (FETCH) as SenML records with only
 * a name (RFC 8790 3.1), in SenML JSON or SenML CBOR (label 0 for "n"). */
static int composite_names(struct lwm2m_request *rq, jv paths, int ct, char *err, size_t errlen)
{
	struct obuf o = {0};
	int rc = 0, n = jv_array_length(jv_copy(paths));
	if (ct == LWM2M_CT_SENML_CBOR)
		cbor_put_array(&o, (size_t)n);
	else
		obuf_byte(&o, '[');
	jv_array_foreach(paths, i, p)
	{
		struct lwm2m_path lp;
		char buf[LWM2M_PATH_STRLEN];
		if (rc == 0 && (jv_get_kind(p) != JV_KIND_STRING || lwm2m_path_parse(jv_string_value(p), &lp) < 0)) {
			snprintf(err, errlen, "paths[%d] is not an LwM2M path", i);
			rc = -1;
		} else if (rc == 0) {
			lwm2m_path_str(&lp, buf, sizeof buf);
			if (ct == LWM2M_CT_SENML_CBOR) {
				cbor_put_map(&o, 1);
				cbor_put_uint(&o, 0);
				cbor_put_text(&o, buf, strlen(buf));
			} else {
				/* a path has only digits and slashes: nothing to escape */
				if (i > 0)
					obuf_byte(&o, ',');
				obuf_put(&o, "{\"n\":\"", 6);
				obuf_put(&o, buf, strlen(buf));
				obuf_put(&o, "\"}", 2);
			}
		}
		jv_free(p);
	}
	jv_free(paths);
	if (ct != LWM2M_CT_SENML_CBOR)
		obuf_byte(&o, ']');
	if (rc == 0 && o.err) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	if (rc < 0) {
		free(o.p);
		return -1;
	}
	rq->payload = o.p;
	rq->len = o.len;
	rq->ct = ct;
	return 0;
}

enum { M_GET = 1, M_POST = 2, M_PUT = 3, M_DELETE = 4, M_FETCH = 5, M_IPATCH = 7 };

static void device_command(struct lwm2m_control *c, uint64_t client, jv cmd, const char *op, unsigned long lineno)
{
	const char *ep = jl_str(cmd, "ep");
	const char *ps = jl_str(cmd, "path");
	struct lwm2m_path path = {0};
	char err[256];
	int composite = strstr(op, "-composite") != NULL;
	if (!ep) {
		bad_command(c, client, cmd, lineno, "%s needs \"ep\" (a string)", op);
		return;
	}
	if (!composite || strcmp(op, "cancel-observe") == 0) {
		if (!ps || lwm2m_path_parse(ps, &path) < 0) {
			bad_command(c, client, cmd, lineno, "%s needs \"path\" (an LwM2M path like /3/0/9)", op);
			return;
		}
	}
	const char *fmt = jl_str(cmd, "format");
	int fmt_ct = -1;
	if (fmt && (fmt_ct = lwm2m_ct_parse(fmt)) < 0) {
		bad_command(c, client, cmd, lineno, "unknown format %s", fmt);
		return;
	}
	jv tmo = jl_get(cmd, "timeout");
	double timeout = jv_get_kind(tmo) == JV_KIND_NUMBER ? jv_number_value(tmo) : 0;
	int tmo_bad = jv_is_valid(tmo) && (jv_get_kind(tmo) != JV_KIND_NUMBER || timeout <= 0);
	jv_free(tmo);
	if (tmo_bad) {
		bad_command(c, client, cmd, lineno, "timeout must be a positive number of seconds");
		return;
	}
	if (strcmp(op, "cancel-observe") == 0 || strcmp(op, "cancel-observe-composite") == 0) {
		char key[4096];
		if (composite) {
			jv paths = jl_get(cmd, "paths");
			if (jv_get_kind(paths) != JV_KIND_ARRAY) {
				jv_free(paths);
				bad_command(c, client, cmd, lineno, "%s needs \"paths\" (an array)", op);
				return;
			}
			jv d = jv_dump_string(paths, 0);
			snprintf(key, sizeof key, "%s", jv_string_value(d));
			jv_free(d);
		} else {
			snprintf(key, sizeof key, "%s", ps);
		}
		if (lwm2m_server_cancel_observe(c->srv, ep, key, client, jv_copy(cmd)) < 0) {
			jv r = response_base(cmd, NULL);
			jv_free(cmd);
			r = jv_object_set(r, jv_string("code"), jv_string("not-found"));
			r = jv_object_set(r, jv_string("error"), jv_string("no such observation made on this connection"));
			send_line(c, client, r);
		} else {
			jv_free(cmd);
		}
		return;
	}

	struct lwm2m_reg *g = lwm2m_server_find(c->srv, ep);
	int composite_ct = fmt_ct >= 0 ? fmt_ct : LWM2M_CT_SENML_JSON;
	if (composite && composite_ct != LWM2M_CT_SENML_JSON && composite_ct != LWM2M_CT_SENML_CBOR) {
		bad_command(c, client, cmd, lineno, "%s uses format senml-json or senml-cbor", op);
		return;
	}
	if (composite && g && g->version < 11) {
		/* the 1.0 enabler has no FETCH or iPATCH: say so rather than ask for a 4.05 */
		jv r = response_base(cmd, NULL);
		jv_free(cmd);
		r = jv_object_set(r, jv_string("code"), jv_string("not-supported"));
		r = jv_object_set(r, jv_string("error"),
		                  jv_string_fmt("%s registered with LwM2M %u.%u, which has no composite operations", g->ep,
		                                g->version / 10, g->version % 10));
		send_line(c, client, r);
		return;
	}
	struct lwm2m_request *rq = lwm2m_request_new(jv_copy(cmd), client);
	if (!rq) {
		bad_command(c, client, cmd, lineno, "out of memory");
		return;
	}
	rq->path = path;
	rq->timeout = timeout;
	int wct = fmt_ct >= 0 ? fmt_ct : g ? device_ct(g) : LWM2M_CT_SENML_JSON;
	char *eerr = NULL;
	int bad = 0;
	if (strcmp(op, "read") == 0 || strcmp(op, "observe") == 0) {
		rq->method = M_GET;
		rq->accept = fmt_ct >= 0 ? fmt_ct : device_accept(g);
		if (op[0] == 'o')
			rq->observe = 0;
	} else if (strcmp(op, "discover") == 0) {
		rq->method = M_GET;
		rq->accept = LWM2M_CT_LINK;
	} else if (strcmp(op, "delete") == 0) {
		rq->method = M_DELETE;
	} else if (strcmp(op, "execute") == 0) {
		rq->method = M_POST;
		const char *args = jl_str(cmd, "args");
		if (path.len != 3) {
			snprintf(err, sizeof err, "execute needs a resource path");
			bad = 1;
		} else if (args) {
			rq->payload = (uint8_t *)strdup(args);
			rq->len = strlen(args);
			rq->ct = LWM2M_CT_TEXT;
		}
	} else if (strcmp(op, "write") == 0) {
		jv value = jl_get(cmd, "value"), values = jl_get(cmd, "values");
		jv rep = jl_get(cmd, "replace");
		int replace = jv_get_kind(rep) == JV_KIND_TRUE;
		jv_free(rep);
		char key[LWM2M_PATH_STRLEN];
		lwm2m_path_str(&path, key, sizeof key);
		if (jv_is_valid(value) && path.len >= 3) {
			rq->method = M_PUT;
			jv_free(values);
			values = jv_object_set(jv_object(), jv_string(key), value);
		} else if (jv_get_kind(values) == JV_KIND_OBJECT && path.len >= 2) {
			jv_free(value);
			rq->method = replace || path.len >= 3 ? M_PUT : M_POST;
		} else {
			jv_free(value);
			jv_free(values);
			values = jv_invalid();
			snprintf(err, sizeof err, "write needs \"value\" with a resource path, or \"values\" (an object) "
			                          "with an instance or resource path");
			bad = 1;
		}
		if (!bad && encode_values(rq, wct, &path, values, &eerr) < 0) {
			snprintf(err, sizeof err, "%s", eerr ? eerr : "cannot encode the values");
			bad = 1;
		}
	} else if (strcmp(op, "create") == 0) {
		jv values = jl_get(cmd, "values");
		rq->method = M_POST;
		if (path.len != 1 || jv_get_kind(values) != JV_KIND_OBJECT) {
			jv_free(values);
			snprintf(err, sizeof err, "create needs an object path and \"values\" (an object)");
			bad = 1;
		} else {
			/* "/O/R" keys: the device picks the instance; encode them as instance 0's resources */
			struct lwm2m_path base = path;
			jv fixed = jv_object();
			int short_keys = 0;
			jv_object_foreach(values, k, v)
			{
				struct lwm2m_path kp;
				if (lwm2m_path_parse(jv_string_value(k), &kp) == 0 && kp.len == 2 && kp.id[0] == path.id[0]) {
					char nk[LWM2M_PATH_STRLEN];
					snprintf(nk, sizeof nk, "/%u/0/%u", kp.id[0], kp.id[1]);
					fixed = jv_object_set(fixed, jv_string(nk), v);
					short_keys = 1;
					jv_free(k);
				} else {
					fixed = jv_object_set(fixed, k, v);
				}
			}
			jv_free(values);
			if (short_keys) {
				base.len = 2;
				base.id[1] = 0;
			}
			if (encode_values(rq, wct, &base, fixed, &eerr) < 0) {
				snprintf(err, sizeof err, "%s", eerr ? eerr : "cannot encode the values");
				bad = 1;
			}
		}
	} else if (strcmp(op, "write-attributes") == 0) {
		jv attrs = jl_get(cmd, "attributes");
		rq->method = M_PUT;
		if (jv_get_kind(attrs) != JV_KIND_OBJECT) {
			snprintf(err, sizeof err, "write-attributes needs \"attributes\" (an object)");
			bad = 1;
		} else if (add_attributes(rq, jv_copy(attrs), err, sizeof err) < 0) {
			bad = 1;
		}
		jv_free(attrs);
	} else if (strcmp(op, "read-composite") == 0 || strcmp(op, "observe-composite") == 0) {
		jv paths = jl_get(cmd, "paths");
		rq->method = M_FETCH;
		/* the paths go in the format the answer is asked for, as Leshan does */
		rq->accept = composite_ct;
		if (op[0] == 'o')
			rq->observe = 0;
		if (jv_get_kind(paths) != JV_KIND_ARRAY || jv_array_length(jv_copy(paths)) == 0) {
			snprintf(err, sizeof err, "%s needs \"paths\" (a non-empty array)", op);
			bad = 1;
			jv_free(paths);
		} else if (composite_names(rq, paths, composite_ct, err, sizeof err) < 0) {
			bad = 1;
		}
	} else if (strcmp(op, "write-composite") == 0) {
		jv values = jl_get(cmd, "values");
		rq->method = M_IPATCH;
		struct lwm2m_path root = {0};
		if (jv_get_kind(values) != JV_KIND_OBJECT || jv_object_length(jv_copy(values)) == 0) {
			jv_free(values);
			snprintf(err, sizeof err, "write-composite needs \"values\" (a non-empty object)");
			bad = 1;
		} else if (encode_values(rq, composite_ct, &root, values, &eerr) < 0) {
			snprintf(err, sizeof err, "%s", eerr ? eerr : "cannot encode the values");
			bad = 1;
		}
	} else {
		snprintf(err, sizeof err, "unknown op %s", op);
		bad = 1;
	}
	free(eerr);
	if (bad) {
		lwm2m_request_free(rq);
		bad_command(c, client, cmd, lineno, "%s", err);
		return;
	}
	lwm2m_server_submit(c->srv, ep, rq);
	jv_free(cmd);
}

static void list_command(struct lwm2m_control *c, uint64_t client, jv cmd)
{
	const struct lwm2m_registry *r = lwm2m_server_registry(c->srv);
	const char *ep = jl_str(cmd, "ep");
	jv a = jv_array();
	size_t b;
	for (struct lwm2m_reg *g = lwm2m_reg_first(r, &b); g; g = lwm2m_reg_next(r, g, &b))
		if (!ep || strcmp(ep, g->ep) == 0)
			a = jv_array_append(a, lwm2m_server_reg_json(c->srv, g));
	jv resp = response_base(cmd, NULL);
	jv_free(cmd);
	resp = jv_object_set(resp, jv_string("code"), jv_string("2.05"));
	resp = jv_object_set(resp, jv_string("registrations"), a);
	send_line(c, client, resp);
}

void lwm2m_control_command(struct lwm2m_control *c, uint64_t client, const char *line, size_t len,
                           unsigned long lineno)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i == len)
		return; /* blank lines are allowed between commands */
	jv cmd = jsonl_parse_object(line, len);
	if (!jv_is_valid(cmd)) {
		jv msg = jv_invalid_get_msg(cmd);
		bad_command(c, client, jv_null(), lineno, "%s",
		            jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unreadable");
		jv_free(msg);
		return;
	}
	jv id = jl_get(cmd, "id");
	jv_kind k = jv_get_kind(id);
	jv_free(id);
	if (k == JV_KIND_OBJECT || k == JV_KIND_ARRAY) {
		jv_free(cmd);
		bad_command(c, client, jv_null(), lineno, "id must be a scalar");
		return;
	}
	const char *op = jl_str(cmd, "op");
	if (!op) {
		bad_command(c, client, cmd, lineno, "missing \"op\" (a string)");
		return;
	}
	if (strcmp(op, "list") == 0) {
		list_command(c, client, cmd);
	} else if (strcmp(op, "stats") == 0) {
		jv r = response_base(cmd, NULL);
		jv_free(cmd);
		r = jv_object_set(r, jv_string("code"), jv_string("2.05"));
		jv st = lwm2m_server_stats(c->srv);
		int subs = 0;
		for (struct client *cl = c->clients; cl; cl = cl->next)
			subs += cl->subscribed;
		st = jv_object_set(st, jv_string("connections"), jv_number((double)c->nclients));
		st = jv_object_set(st, jv_string("subscribers"), jv_number(subs));
		st = jv_object_set(st, jv_string("stdout_backlog"), jv_number((double)c->soutlen));
		st = jv_object_set(st, jv_string("stdout_stalls"), jv_number((double)c->sout_stalls));
		jv_object_foreach(st, key, v) r = jv_object_set(r, key, v);
		jv_free(st);
		send_line(c, client, r);
	} else if (strcmp(op, "subscribe") == 0 || strcmp(op, "unsubscribe") == 0) {
		/* stdin's answers and events both go to stdout already */
		struct client *cl = find_client(c, client);
		if (cl)
			cl->subscribed = op[0] == 's';
		jv r = response_base(cmd, NULL);
		jv_free(cmd);
		r = jv_object_set(r, jv_string("code"), jv_string("2.05"));
		send_line(c, client, r);
	} else {
		device_command(c, client, cmd, op, lineno);
	}
}

/* ---- descriptors ---- */

size_t lwm2m_control_npoll(const struct lwm2m_control *c)
{
	return 2 + (c->lfd >= 0) + c->nclients;
}

void lwm2m_control_poll_setup(struct lwm2m_control *c, struct pollfd *fds)
{
	size_t i = 0;
	fds[i].fd = c->read_stdin && !c->in.eof ? STDIN_FILENO : -1;
	fds[i++].events = POLLIN;
	fds[i].fd = c->soutlen ? STDOUT_FILENO : -1;
	fds[i++].events = POLLOUT;
	if (c->lfd >= 0) {
		fds[i].fd = c->lfd;
		fds[i++].events = POLLIN;
	}
	for (struct client *cl = c->clients; cl; cl = cl->next, i++) {
		fds[i].fd = cl->fd;
		fds[i].events = (short)((cl->closing ? 0 : POLLIN) | (cl->outlen ? POLLOUT : 0));
	}
}

static void read_lines(struct lwm2m_control *c, uint64_t id, struct linereader *lr)
{
	char *line;
	size_t len;
	int k;
	while ((k = lr_next(lr, &line, &len)) != LR_NEED_MORE) {
		if (k == LR_TOOLONG)
			bad_command(c, id, jv_null(), lr->lineno, "line longer than %zu bytes", lr->max_line);
		else
			lwm2m_control_command(c, id, line, len, lr->lineno);
		/* a command may have closed this very connection's peer; it is still ours here */
	}
}

static void drop_client(struct lwm2m_control *c, struct client *cl)
{
	struct client **pp;
	for (pp = &c->clients; *pp; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	c->nclients--;
	if (c->srv)
		lwm2m_server_client_gone(c->srv, cl->id);
	client_free(cl);
}

void lwm2m_control_poll_done(struct lwm2m_control *c, const struct pollfd *fds)
{
	size_t i = 0, npolled = lwm2m_control_npoll(c);
	if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = lr_fill(&c->in);
		if (n < 0 && errno != EAGAIN) {
			log_warn("unable to read stdin: %s", strerror(errno));
			c->in.eof = 1;
		}
		read_lines(c, 0, &c->in);
	}
	i++;
	if (fds[i].fd >= 0 && (fds[i].revents & (POLLOUT | POLLERR | POLLHUP)))
		stdout_flush(c);
	i++;
	if (c->lfd >= 0) {
		if (fds[i].revents & POLLIN) {
			for (int k = 0; k < 16; k++) {
				int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd < 0) {
					if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
						log_warn("unable to accept a control connection: %s", strerror(errno));
					break;
				}
				struct client *cl = calloc(1, sizeof *cl);
				if (!cl) {
					close(fd);
					break;
				}
				cl->id = c->next_id++;
				cl->fd = fd;
				lr_init(&cl->lr, fd, LINE_MAX_CMD);
				/* appended: the pollfd order below must match the list order */
				struct client **pp = &c->clients;
				while (*pp)
					pp = &(*pp)->next;
				*pp = cl;
				c->nclients++;
				log_debug("control connection %llu opened", (unsigned long long)cl->id);
			}
		}
		i++;
	}
	/* the clients polled are the first ones of the list (new ones were appended) */
	struct client *cl = c->clients, *next;
	for (; cl && i < npolled; cl = next, i++) {
		next = cl->next;
		if (fds[i].fd != cl->fd)
			break; /* accepted during this round: not polled yet */
		short re = fds[i].revents;
		if (re & POLLOUT && cl->outlen && client_flush(cl) < 0) {
			drop_client(c, cl);
			continue;
		}
		if (re & (POLLIN | POLLHUP | POLLERR) && !cl->closing) {
			ssize_t n = lr_fill(&cl->lr);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				drop_client(c, cl);
				continue;
			}
			read_lines(c, cl->id, &cl->lr);
			if (cl->lr.eof)
				cl->closing = 1;
		}
		/* a peer that only shut down its write side (no POLLHUP) may still wait for answers:
		 * keep it while it has requests pending or observations running */
		if (cl->closing && (re & (POLLHUP | POLLERR) || (!cl->outlen && !lwm2m_server_client_requests(c->srv, cl->id)))) {
			drop_client(c, cl);
			continue;
		}
	}
}
