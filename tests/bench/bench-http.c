#define _GNU_SOURCE
/* bench-http: load for ljs-join over HTTP/1.1 (plain, or TLS with an optional client certificate).
 *
 * C connections, one thread each, each sending POSTs back to back over a keep-alive connection
 * (or, with -N, a new connection and a new full TLS handshake per request). The bodies are
 * LoRaWAN Backend Interfaces JoinReq messages built here from a device registry in ljs-join's
 * format: every request carries a fresh DevNonce and a MIC made with the device's AppKey
 * (nettle AES-CMAC), so each one is a real join the server must verify, derive keys for and
 * persist. A device belongs to one connection, so its nonces arrive in order. With -b a fixed
 * body is sent instead (e.g. a HomeNSReq). Prints one JSON line of figures.
 *
 * With -r RATE the load is open-loop instead: requests are due at a fixed rate whatever the
 * answers do, sent by a few event threads (-j) over a pool of keep-alive connections (-c), and
 * each one's latency runs from the time it was due, not the time it went out: a stall of the
 * server (or of this generator) shows in the figures as the requests that waited behind it
 * (no coordinated omission). A request due while every connection waits for an answer waits
 * for a free one, and that wait counts. */
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <inttypes.h>
#include <jv.h>
#include <math.h>
#include <nettle/cmac.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* latency histogram in microseconds: 32 buckets per octave (quantiles within 2.2%), to ~16 s */
#define HIST_SUB 32
#define HIST_BUCKETS (HIST_SUB * 24)

struct device {
	uint8_t dev_eui[8], join_eui[8], key[16];
	char mac[16];
	char dev_eui_hex[17], join_eui_hex[17];
	uint16_t nonce;
	bool busy; /* -r: a request of this device awaits its answer */
};

static struct {
	struct sockaddr_in addr;
	const char *path;
	unsigned conns;
	double seconds;
	unsigned long long max_req;
	bool new_conn;
	bool resume;
	bool tls;
	const char *ca, *cert, *key;
	const char *sender;
	const char *body;
	size_t body_len;
	unsigned nonce_start;
	double rate;      /* -r: open loop, requests due per second in all */
	unsigned threads; /* -j: event threads of the open loop */
	double warmup;    /* -w: seconds of the open loop not counted */
} opt = {.path = "/", .conns = 16, .seconds = 5, .sender = "000013", .threads = 1};

static struct device *devs;
static size_t ndevs;
static gnutls_certificate_credentials_t xcred;
static volatile sig_atomic_t stop_flag;
static uint64_t t_end;

struct result {
	uint64_t requests, ok, failed, http_errors, io_errors, connects, handshakes, resumed;
	uint64_t hist[HIST_BUCKETS];
	uint64_t hs_hist[HIST_BUCKETS];
	uint64_t max_us;
	/* -r: due -> sent (a late generator or no free connection), sent -> answered */
	uint64_t late_hist[HIST_BUCKETS], svc_hist[HIST_BUCKETS];
	uint64_t due, unsent, unanswered, max_queue;
	uint64_t ok_all; /* -r: Success answers, warm-up included */
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void hist_add(uint64_t *h, uint64_t us)
{
	unsigned b = (unsigned)(HIST_SUB * log2((double)us + 1.0));
	h[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
}

static double hist_q(const uint64_t *h, double q)
{
	uint64_t total = 0, acc = 0;
	for (int b = 0; b < HIST_BUCKETS; b++)
		total += h[b];
	if (!total)
		return 0;
	for (int b = 0; b < HIST_BUCKETS; b++) {
		acc += h[b];
		if ((double)acc >= q * (double)total)
			return (exp2((b + 1) / (double)HIST_SUB) - 1.0) / 1000.0; /* the bucket's upper end */
	}
	return 0;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* Devices with an AppKey in clear from ljs-join's JSON-lines registry. */
static void load_devices(const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f)
		die_sys(EXIT_USAGE, "unable to open %s", file);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	size_t have = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		jv o = jv_parse_sized(line, (int)len);
		if (jv_get_kind(o) != JV_KIND_OBJECT) {
			jv_free(o);
			continue;
		}
		jv de = jv_object_get(jv_copy(o), jv_string("dev_eui"));
		jv je = jv_object_get(jv_copy(o), jv_string("join_eui"));
		jv ak = jv_object_get(jv_copy(o), jv_string("app_key"));
		jv mv = jv_object_get(o, jv_string("mac_version"));
		if (jv_get_kind(de) == JV_KIND_STRING && jv_get_kind(je) == JV_KIND_STRING &&
		    jv_get_kind(ak) == JV_KIND_STRING && jv_get_kind(mv) == JV_KIND_STRING) {
			if (ndevs == have) {
				have = have ? have * 2 : 1024;
				devs = realloc(devs, have * sizeof *devs);
				if (!devs)
					die(EXIT_TEMPORARY, "out of memory");
			}
			struct device *d = &devs[ndevs];
			memset(d, 0, sizeof *d);
			if (unhex(jv_string_value(de), d->dev_eui, 8) == 0 &&
			    unhex(jv_string_value(je), d->join_eui, 8) == 0 &&
			    unhex(jv_string_value(ak), d->key, 16) == 0) {
				snprintf(d->mac, sizeof d->mac, "%s", jv_string_value(mv));
				tohex(d->dev_eui, 8, d->dev_eui_hex);
				tohex(d->join_eui, 8, d->join_eui_hex);
				d->nonce = (uint16_t)opt.nonce_start;
				ndevs++;
			}
		}
		jv_free(de);
		jv_free(je);
		jv_free(ak);
		jv_free(mv);
	}
	free(line);
	fclose(f);
	if (!ndevs)
		die(EXIT_USAGE, "no device with dev_eui, join_eui, app_key and mac_version in %s", file);
}

/* A Backend Interfaces 1.0 JoinReq for device d with its next DevNonce. */
static int make_joinreq(char *out, size_t cap, struct device *d, uint32_t txid)
{
	uint8_t phy[23];
	phy[0] = 0x00; /* MHDR: join-request */
	for (int i = 0; i < 8; i++) {
		phy[1 + i] = d->join_eui[7 - i]; /* little-endian on air */
		phy[9 + i] = d->dev_eui[7 - i];
	}
	uint16_t nonce = d->nonce++;
	phy[17] = (uint8_t)nonce;
	phy[18] = (uint8_t)(nonce >> 8);
	struct cmac_aes128_ctx ctx;
	cmac_aes128_set_key(&ctx, d->key);
	cmac_aes128_update(&ctx, 19, phy);
	cmac_aes128_digest(&ctx, 4, phy + 19);
	char phyhex[47];
	tohex(phy, 23, phyhex);
	return snprintf(out, cap,
	                "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"%s\",\"ReceiverID\":\"%s\","
	                "\"TransactionID\":%" PRIu32 ",\"MessageType\":\"JoinReq\",\"MACVersion\":\"%s\","
	                "\"PHYPayload\":\"%s\",\"DevEUI\":\"%s\",\"DevAddr\":\"%08" PRIX32 "\","
	                "\"DLSettings\":\"00\",\"RxDelay\":1}",
	                opt.sender, d->join_eui_hex, txid, d->mac, phyhex, d->dev_eui_hex,
	                (uint32_t)(0x26000000u | (txid & 0xffffff)));
}

struct conn {
	int fd;
	gnutls_session_t s;
	gnutls_datum_t sess; /* -R: the session to resume on the next connection */
	char buf[16384];
	size_t len;
};

static void conn_close(struct conn *c)
{
	if (c->s) {
		/* TLS 1.3: the ticket came after the handshake, with the answer */
		if (opt.resume) {
			gnutls_free(c->sess.data);
			c->sess.data = NULL;
			if (gnutls_session_get_data2(c->s, &c->sess) < 0)
				c->sess = (gnutls_datum_t){0};
		}
		gnutls_bye(c->s, GNUTLS_SHUT_WR);
		gnutls_deinit(c->s);
		c->s = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static int conn_open(struct conn *c, struct result *r)
{
	uint64_t t0 = mono_us();
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	r->connects++;
	c->len = 0;
	if (!opt.tls)
		return 0;
	if (gnutls_init(&c->s, GNUTLS_CLIENT) < 0 ||
	    gnutls_set_default_priority(c->s) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, xcred) < 0) {
		conn_close(c);
		return -1;
	}
	gnutls_transport_set_int(c->s, c->fd);
	gnutls_handshake_set_timeout(c->s, 10000);
	if (opt.resume && c->sess.data && gnutls_session_set_data(c->s, c->sess.data, c->sess.size) < 0)
		log_debug("unable to offer the last session");
	int rc;
	do {
		rc = gnutls_handshake(c->s);
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0) {
		log_debug("handshake: %s", gnutls_strerror(rc));
		conn_close(c);
		return -1;
	}
	r->handshakes++;
	if (gnutls_session_is_resumed(c->s))
		r->resumed++;
	hist_add(r->hs_hist, mono_us() - t0);
	return 0;
}

static int conn_send(struct conn *c, const char *p, size_t n)
{
	while (n) {
		ssize_t w = c->s ? gnutls_record_send(c->s, p, n) : send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (c->s ? (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) : errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t conn_recv(struct conn *c)
{
	if (c->len >= sizeof c->buf)
		return -1;
	ssize_t r;
	do {
		r = c->s ? gnutls_record_recv(c->s, c->buf + c->len, sizeof c->buf - c->len)
		         : recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
	} while (c->s ? (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) : (r < 0 && errno == EINTR));
	if (r > 0)
		c->len += (size_t)r;
	return r;
}

/* Take one whole response from c->buf if it holds one: 1 with *res = 1 for HTTP 200 with a
 * Success result (or any 200 for a fixed body), 0 for another answer, -1 when unreadable, and
 * *keep = the connection can be used again; 0 when more bytes are needed. */
static int take_response(struct conn *c, bool *keep, int *res)
{
	c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = 0;
	char *hend = strstr(c->buf, "\r\n\r\n");
	if (!hend) {
		if (c->len >= sizeof c->buf - 1)
			goto bad;
		return 0;
	}
	size_t hlen = (size_t)(hend - c->buf) + 4;
	int status = 0;
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
		goto bad;
	long clen = 0;
	const char *cl = strcasestr(c->buf, "\r\ncontent-length:");
	if (cl && cl < hend)
		clen = strtol(cl + 17, NULL, 10);
	const char *cn = strcasestr(c->buf, "\r\nconnection: close");
	*keep = !(cn && cn < hend);
	if (clen < 0 || hlen + (size_t)clen >= sizeof c->buf)
		goto bad;
	if (c->len < hlen + (size_t)clen)
		return 0;
	char saved = c->buf[hlen + (size_t)clen];
	c->buf[hlen + (size_t)clen] = 0;
	int ok = status == 200 && (opt.body || strstr(c->buf + hlen, "\"Success\""));
	if (status == 200 && !ok)
		log_debug("answer: %.300s", c->buf + hlen);
	c->buf[hlen + (size_t)clen] = saved;
	/* keep any pipelined bytes (there should be none) */
	memmove(c->buf, c->buf + hlen + clen, c->len - hlen - (size_t)clen);
	c->len -= hlen + (size_t)clen;
	*res = status == 200 ? ok : (status ? 0 : -1);
	return 1;
bad:
	*keep = false;
	*res = -1;
	return 1;
}

/* Read one response (blocking): as take_response's *res, or -1 on an I/O error. */
static int read_response(struct conn *c, bool *keep)
{
	int res;
	while (take_response(c, keep, &res) == 0)
		if (conn_recv(c) <= 0)
			return -1;
	return res;
}

struct worker {
	pthread_t th;
	unsigned id;
	unsigned long long quota;
	struct result r;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn c = {.fd = -1};
	char req[4096];
	char body[2048];
	size_t next_dev = w->id;
	uint32_t txid = w->id * 100000000u;
	while (!stop_flag && mono_us() < t_end && (!w->quota || w->r.requests < w->quota)) {
		if (c.fd < 0 && conn_open(&c, &w->r) < 0) {
			w->r.io_errors++;
			usleep(1000);
			continue;
		}
		const char *b = opt.body;
		size_t blen = opt.body_len;
		if (!b) {
			if (next_dev >= ndevs)
				next_dev = w->id % ndevs;
			int n = make_joinreq(body, sizeof body, &devs[next_dev], ++txid);
			next_dev += opt.conns;
			b = body;
			blen = (size_t)n;
		}
		int hl = snprintf(req, sizeof req,
		                  "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		                  "Content-Length: %zu\r\n%s\r\n",
		                  opt.path, blen, opt.new_conn ? "Connection: close\r\n" : "");
		if ((size_t)hl + blen >= sizeof req)
			die(EXIT_USAGE, "request too large");
		memcpy(req + hl, b, blen);
		uint64_t t0 = mono_us();
		bool keep = false;
		int rc = conn_send(&c, req, (size_t)hl + blen) < 0 ? -1 : read_response(&c, &keep);
		w->r.requests++;
		if (rc < 0) {
			w->r.io_errors++;
			conn_close(&c);
			continue;
		}
		uint64_t us = mono_us() - t0;
		hist_add(w->r.hist, us);
		if (us > w->r.max_us)
			w->r.max_us = us;
		if (rc == 1)
			w->r.ok++;
		else
			w->r.failed++;
		if (opt.new_conn || !keep)
			conn_close(&c);
	}
	conn_close(&c);
	gnutls_free(c.sess.data);
	return NULL;
}

/* ---- open loop (-r) ---- */

struct oconn {
	struct conn c;
	bool busy;
	struct device *dev;
	uint64_t due, sent;
	char out[4096];
};

struct oloop {
	pthread_t th;
	unsigned id, nthreads;
	struct oconn *conns;
	unsigned nconns;
	unsigned *idle, nidle; /* a stack of free connections */
	uint64_t *queue;       /* due times of requests waiting for a connection (ring) */
	size_t qhead, qlen, qcap;
	size_t next_dev;
	uint32_t txid;
	uint64_t t0, t_count, t_stop;
	struct result r;
};

static int oconn_open(struct oconn *o, struct result *r)
{
	if (conn_open(&o->c, r) < 0)
		return -1;
	struct timeval tv = {0}; /* non-blocking use: no timeouts */
	setsockopt(o->c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(o->c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return 0;
}

static void queue_push(struct oloop *l, uint64_t due)
{
	if (l->qlen == l->qcap) {
		size_t ncap = l->qcap ? l->qcap * 2 : 1024;
		uint64_t *nq = malloc(ncap * sizeof *nq);
		if (!nq)
			die(EXIT_TEMPORARY, "out of memory");
		for (size_t i = 0; i < l->qlen; i++)
			nq[i] = l->queue[(l->qhead + i) % l->qcap];
		free(l->queue);
		l->queue = nq;
		l->qcap = ncap;
		l->qhead = 0;
	}
	l->queue[(l->qhead + l->qlen++) % l->qcap] = due;
	if (l->qlen > l->r.max_queue)
		l->r.max_queue = l->qlen;
}

/* The next device of this thread with no request in flight (its nonces stay in order), or NULL. */
static struct device *free_device(struct oloop *l)
{
	size_t mine = (ndevs - l->id + l->nthreads - 1) / l->nthreads; /* devices id, id+T, ... */
	for (size_t tries = 0; tries < mine; tries++) {
		size_t i = l->id + l->next_dev * l->nthreads;
		l->next_dev = (l->next_dev + 1) % mine;
		if (!devs[i].busy)
			return &devs[i];
	}
	return NULL;
}

static bool counted(const struct oloop *l, uint64_t due)
{
	return due >= l->t_count;
}

/* Send the oldest waiting request on a free connection: false when none can go now. */
static bool send_next(struct oloop *l, int ep)
{
	if (!l->qlen || !l->nidle)
		return false;
	struct device *d = NULL;
	if (!opt.body && !(d = free_device(l)))
		return false;
	struct oconn *o = &l->conns[l->idle[--l->nidle]];
	uint64_t due = l->queue[l->qhead];
	l->qhead = (l->qhead + 1) % l->qcap;
	l->qlen--;
	char body[2048];
	const char *b = opt.body;
	size_t blen = opt.body_len;
	if (d) {
		blen = (size_t)make_joinreq(body, sizeof body, d, ++l->txid);
		b = body;
	}
	int hl = snprintf(o->out, sizeof o->out,
	                  "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
	                  "Content-Length: %zu\r\n\r\n",
	                  opt.path, blen);
	if ((size_t)hl + blen >= sizeof o->out)
		die(EXIT_USAGE, "request too large");
	memcpy(o->out + hl, b, blen);
	o->busy = true;
	o->dev = d;
	if (d)
		d->busy = true;
	o->due = due;
	o->sent = mono_us();
	if (counted(l, due)) {
		l->r.requests++;
		hist_add(l->r.late_hist, o->sent - due);
	}
	/* a small request on an idle connection: the socket buffer takes it whole */
	if (conn_send(&o->c, o->out, (size_t)hl + blen) < 0) {
		if (counted(l, due))
			l->r.io_errors++;
		o->busy = false;
		if (d)
			d->busy = false;
		epoll_ctl(ep, EPOLL_CTL_DEL, o->c.fd, NULL);
		conn_close(&o->c);
		if (oconn_open(o, &l->r) == 0) {
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(o - l->conns)};
			epoll_ctl(ep, EPOLL_CTL_ADD, o->c.fd, &ev);
			l->idle[l->nidle++] = (unsigned)(o - l->conns);
		}
	}
	return true;
}

/* Answers on connection o: read what is there, take every whole response. */
static void on_readable(struct oloop *l, int ep, struct oconn *o)
{
	for (;;) {
		ssize_t n = o->c.len < sizeof o->c.buf
		                ? recv(o->c.fd, o->c.buf + o->c.len, sizeof o->c.buf - o->c.len, MSG_DONTWAIT)
		                : -1;
		if (n > 0) {
			o->c.len += (size_t)n;
			bool keep = true;
			int res;
			while (o->busy && take_response(&o->c, &keep, &res) == 1) {
				uint64_t now = mono_us();
				o->busy = false;
				if (o->dev)
					o->dev->busy = false;
				if (res == 1)
					l->r.ok_all++;
				if (counted(l, o->due)) {
					if (res < 0) {
						l->r.io_errors++;
					} else {
						uint64_t us = now - o->due;
						hist_add(l->r.hist, us);
						hist_add(l->r.svc_hist, now - o->sent);
						if (us > l->r.max_us)
							l->r.max_us = us;
						if (res == 1)
							l->r.ok++;
						else
							l->r.failed++;
					}
				}
				if (res < 0 || !keep)
					goto reopen;
				l->idle[l->nidle++] = (unsigned)(o - l->conns);
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		/* closed or failed: the request on it (if any) is lost */
		if (o->busy && counted(l, o->due))
			l->r.io_errors++;
		if (o->busy && o->dev)
			o->dev->busy = false;
		o->busy = false;
		goto reopen;
	}
reopen:
	epoll_ctl(ep, EPOLL_CTL_DEL, o->c.fd, NULL);
	conn_close(&o->c);
	if (oconn_open(o, &l->r) == 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(o - l->conns)};
		epoll_ctl(ep, EPOLL_CTL_ADD, o->c.fd, &ev);
		l->idle[l->nidle++] = (unsigned)(o - l->conns);
	} else {
		l->r.io_errors++;
	}
}

static void *oloop_main(void *arg)
{
	struct oloop *l = arg;
	prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the due time, not up to 50 us later */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die_sys(EXIT_TEMPORARY, "epoll_create1");
	for (unsigned i = 0; i < l->nconns; i++) {
		struct oconn *o = &l->conns[i];
		o->c.fd = -1;
		if (oconn_open(o, &l->r) < 0)
			die_sys(EXIT_TEMPORARY, "unable to connect");
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, o->c.fd, &ev) < 0)
			die_sys(EXIT_TEMPORARY, "epoll_ctl");
		l->idle[l->nidle++] = i;
	}
	/* request k of this thread is due at t0 + (k * threads + id) / rate */
	uint64_t k = 0;
	double step = 1e6 / opt.rate;
	uint64_t next = l->t0 + (uint64_t)(l->id * step);
	uint64_t drain_end = l->t_stop + 10000000u; /* answers still awaited 10 s after the last due */
	for (;;) {
		uint64_t now = mono_us();
		while (!stop_flag && next < l->t_stop && next <= now) {
			queue_push(l, next);
			if (counted(l, next))
				l->r.due++;
			k++;
			next = l->t0 + (uint64_t)((double)(k * l->nthreads + l->id) * step);
		}
		while (send_next(l, ep))
			;
		bool scheduling = !stop_flag && next < l->t_stop;
		if (!scheduling && ((l->qlen == 0 && l->nidle == l->nconns) || now >= drain_end || stop_flag))
			break;
		uint64_t wait = scheduling ? (next > now ? next - now : 0) : 100000;
		struct timespec ts = {.tv_sec = (time_t)(wait / 1000000u), .tv_nsec = (long)(wait % 1000000u) * 1000};
		struct epoll_event evs[64];
		int n = epoll_pwait2(ep, evs, 64, &ts, NULL);
		if (n < 0 && errno != EINTR)
			die_sys(EXIT_TEMPORARY, "epoll_pwait2");
		for (int i = 0; i < n; i++)
			on_readable(l, ep, &l->conns[evs[i].data.u32]);
	}
	/* what the end left behind */
	for (size_t i = 0; i < l->qlen; i++)
		if (counted(l, l->queue[(l->qhead + i) % l->qcap]))
			l->r.unsent++;
	for (unsigned i = 0; i < l->nconns; i++) {
		if (l->conns[i].busy && counted(l, l->conns[i].due))
			l->r.unanswered++;
		conn_close(&l->conns[i].c);
	}
	close(ep);
	return NULL;
}

static void result_add(struct result *t, const struct result *r)
{
	t->requests += r->requests;
	t->ok += r->ok;
	t->failed += r->failed;
	t->io_errors += r->io_errors;
	t->connects += r->connects;
	t->handshakes += r->handshakes;
	t->resumed += r->resumed;
	t->due += r->due;
	t->ok_all += r->ok_all;
	t->unsent += r->unsent;
	t->unanswered += r->unanswered;
	t->max_queue += r->max_queue;
	if (r->max_us > t->max_us)
		t->max_us = r->max_us;
	for (int b = 0; b < HIST_BUCKETS; b++) {
		t->hist[b] += r->hist[b];
		t->hs_hist[b] += r->hs_hist[b];
		t->late_hist[b] += r->late_hist[b];
		t->svc_hist[b] += r->svc_hist[b];
	}
}

static int open_loop(void)
{
	if (opt.threads > opt.conns)
		opt.threads = opt.conns;
	if (!opt.body && opt.threads > ndevs)
		opt.threads = (unsigned)ndevs;
	struct oloop *l = calloc(opt.threads, sizeof *l);
	if (!l)
		die(EXIT_TEMPORARY, "out of memory");
	uint64_t t0 = mono_us() + 200000; /* every connection made before the first request is due */
	for (unsigned i = 0; i < opt.threads; i++) {
		l[i].id = i;
		l[i].nthreads = opt.threads;
		l[i].nconns = opt.conns / opt.threads + (i < opt.conns % opt.threads);
		l[i].conns = calloc(l[i].nconns, sizeof *l[i].conns);
		l[i].idle = calloc(l[i].nconns, sizeof *l[i].idle);
		if (!l[i].conns || !l[i].idle)
			die(EXIT_TEMPORARY, "out of memory");
		l[i].txid = i * 100000000u;
		l[i].t0 = t0;
		l[i].t_count = t0 + (uint64_t)(opt.warmup * 1e6);
		l[i].t_stop = l[i].t_count + (uint64_t)(opt.seconds * 1e6);
		if (pthread_create(&l[i].th, NULL, oloop_main, &l[i]) != 0)
			die(EXIT_TEMPORARY, "unable to start a thread");
	}
	struct result t = {0};
	for (unsigned i = 0; i < opt.threads; i++) {
		pthread_join(l[i].th, NULL);
		result_add(&t, &l[i].r);
		free(l[i].conns);
		free(l[i].idle);
		free(l[i].queue);
	}
	free(l);
	printf("{\"tool\":\"bench-http\",\"mode\":\"open\",\"offered_per_s\":%.0f,\"connections\":%u,\"threads\":%u,"
	       "\"seconds\":%.3f,\"warmup_s\":%.3f,\"due\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"ok\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"io_errors\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"unanswered\":%" PRIu64 ","
	       "\"ok_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
	       "\"service_p50_ms\":%.3f,\"service_p99_ms\":%.3f,\"late_p50_ms\":%.3f,\"late_p99_ms\":%.3f,"
	       "\"max_queue\":%" PRIu64 ",\"connects\":%" PRIu64 ",\"ok_all\":%" PRIu64 "}\n",
	       opt.rate, opt.conns, opt.threads, opt.seconds, opt.warmup, t.due, t.requests, t.ok, t.failed,
	       t.io_errors, t.unsent, t.unanswered, (double)t.ok / opt.seconds, hist_q(t.hist, 0.5),
	       hist_q(t.hist, 0.99), hist_q(t.hist, 0.999), (double)t.max_us / 1000.0, hist_q(t.svc_hist, 0.5),
	       hist_q(t.svc_hist, 0.99), hist_q(t.late_hist, 0.5), hist_q(t.late_hist, 0.99), t.max_queue,
	       t.connects, t.ok_all);
	stdout_flush_or_die();
	return t.ok > 0 ? 0 : 1;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
	        "Usage: bench-http -a ADDR:PORT (-D DEVICES | -b BODYFILE) [options]\n"
	        "POST LoRaWAN Backend Interfaces messages to ljs-join and measure them.\n"
	        "  -a ADDR:PORT   the server\n"
	        "  -p PATH        request path (/)\n"
	        "  -D FILE        device registry (ljs-join JSON lines, app_key in clear): send JoinReqs\n"
	        "  -b FILE        send this body instead, again and again\n"
	        "  -s NETID       SenderID of the JoinReqs (000013)\n"
	        "  -S N           first DevNonce of every device (0)\n"
	        "  -c N           connections, one thread each (16)\n"
	        "  -t SECONDS     run for SECONDS (5)\n"
	        "  -n N           stop after N requests in all (0: no bound but the time)\n"
	        "  -N             a new connection (and TLS handshake) for every request\n"
	        "  -T             TLS; with -A CA, -C CERT, -K KEY for the server check and a client certificate\n"
	        "  -R             with -N -T: resume the connection's last TLS session (ticket) when the server lets it\n"
	        "  -r RATE        open loop: RATE requests/s due in all, latency from the due time (keep-alive, no TLS)\n"
	        "  -j N           with -r: event threads sharing the rate and the connections (1)\n"
	        "  -w SECONDS     with -r: a warm-up before the -t SECONDS that count (0)\n"
	        "  -P N           print N JoinReq bodies (one per line, round-robin over devices) and exit\n"
	        "  -v, -q         more, less logging\n");
	exit(code);
}

static char *slurp(const char *file, size_t *len)
{
	FILE *f = fopen(file, "r");
	if (!f)
		die_sys(EXIT_USAGE, "unable to open %s", file);
	char *p = malloc(65536);
	if (!p)
		die(EXIT_TEMPORARY, "out of memory");
	*len = fread(p, 1, 65535, f);
	fclose(f);
	while (*len && (p[*len - 1] == '\n' || p[*len - 1] == '\r'))
		(*len)--;
	p[*len] = 0;
	return p;
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	const char *addr = NULL, *devfile = NULL;
	unsigned long long print_n = 0;
	int c;
	while ((c = getopt(argc, argv, "a:p:D:b:s:S:c:t:n:NRTA:C:K:P:r:j:w:vqh")) != -1) {
		switch (c) {
		case 'a': addr = optarg; break;
		case 'p': opt.path = optarg; break;
		case 'D': devfile = optarg; break;
		case 'b': opt.body = slurp(optarg, &opt.body_len); break;
		case 's': opt.sender = optarg; break;
		case 'S': opt.nonce_start = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'c': opt.conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': opt.seconds = atof(optarg); break;
		case 'n': opt.max_req = strtoull(optarg, NULL, 10); break;
		case 'N': opt.new_conn = true; break;
		case 'R': opt.resume = true; break;
		case 'T': opt.tls = true; break;
		case 'A': opt.ca = optarg; break;
		case 'C': opt.cert = optarg; break;
		case 'K': opt.key = optarg; break;
		case 'P': print_n = strtoull(optarg, NULL, 10); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'j': opt.threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'v': log_more(); break;
		case 'q': log_less(); break;
		case 'h': usage(0);
		default: usage(EXIT_USAGE);
		}
	}
	if (print_n && devfile) {
		char body[2048];
		load_devices(devfile);
		for (unsigned long long i = 0; i < print_n; i++) {
			make_joinreq(body, sizeof body, &devs[i % ndevs], (uint32_t)i + 1);
			puts(body);
		}
		stdout_flush_or_die();
		free(devs);
		return 0;
	}
	if (!addr || (!devfile && !opt.body) || opt.conns == 0 || opt.seconds <= 0 || opt.rate < 0 ||
	    opt.threads == 0 || opt.warmup < 0)
		usage(EXIT_USAGE);
	if (opt.rate > 0 && (opt.new_conn || opt.tls || opt.max_req))
		die(EXIT_USAGE, "-r (open loop) runs over plain keep-alive connections for -t seconds: no -N, -T or -n");
	char host[64];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof host)
		die(EXIT_USAGE, "bad address %s", addr);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	opt.addr.sin_family = AF_INET;
	opt.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1)
		die(EXIT_USAGE, "bad address %s", addr);
	if (devfile)
		load_devices(devfile);
	if (opt.tls) {
		if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&xcred) < 0)
			die(EXIT_TEMPORARY, "unable to set up gnutls");
		if (opt.ca && gnutls_certificate_set_x509_trust_file(xcred, opt.ca, GNUTLS_X509_FMT_PEM) < 0)
			die(EXIT_USAGE, "unable to load CA %s", opt.ca);
		if (opt.cert && gnutls_certificate_set_x509_key_file(xcred, opt.cert, opt.key ? opt.key : opt.cert,
		                                                       GNUTLS_X509_FMT_PEM) < 0)
			die(EXIT_USAGE, "unable to load client certificate %s", opt.cert);
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (opt.rate > 0) {
		int rc = open_loop();
		free(devs);
		return rc;
	}

	struct worker *w = calloc(opt.conns, sizeof *w);
	if (!w)
		die(EXIT_TEMPORARY, "out of memory");
	uint64_t t0 = mono_us();
	t_end = t0 + (uint64_t)(opt.seconds * 1e6);
	for (unsigned i = 0; i < opt.conns; i++) {
		w[i].id = i;
		w[i].quota = opt.max_req ? (opt.max_req + opt.conns - 1) / opt.conns : 0;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
			die(EXIT_TEMPORARY, "unable to start a thread");
	}
	struct result t = {0};
	for (unsigned i = 0; i < opt.conns; i++) {
		pthread_join(w[i].th, NULL);
		result_add(&t, &w[i].r);
	}
	double secs = (double)(mono_us() - t0) / 1e6;
	printf("{\"tool\":\"bench-http\",\"connections\":%u,\"new_connection_each\":%s,\"tls\":%s,"
	       "\"requests\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"io_errors\":%" PRIu64 ","
	       "\"seconds\":%.3f,\"requests_per_s\":%.0f,\"ok_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
	       "\"p999_ms\":%.3f,\"max_ms\":%.3f,"
	       "\"connects\":%" PRIu64 ",\"handshakes\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"handshakes_per_s\":%.0f,"
	       "\"handshake_p50_ms\":%.3f,\"handshake_p99_ms\":%.3f}\n",
	       opt.conns, opt.new_conn ? "true" : "false", opt.tls ? "true" : "false", t.requests, t.ok,
	       t.failed, t.io_errors, secs, (double)t.requests / secs, (double)t.ok / secs,
	       hist_q(t.hist, 0.5), hist_q(t.hist, 0.99), hist_q(t.hist, 0.999), (double)t.max_us / 1000.0, t.connects, t.handshakes,
	       t.resumed, (double)t.handshakes / secs, hist_q(t.hs_hist, 0.5), hist_q(t.hs_hist, 0.99));
	stdout_flush_or_die();
	free(w);
	free(devs);
	if (opt.tls) {
		gnutls_certificate_free_credentials(xcred);
		gnutls_global_deinit();
	}
	return t.ok > 0 ? 0 : 1;
}
