/* lwm2m-loadgen: simulate many LwM2M devices over CoAP/UDP (NoSec) against one LwM2M server.
 *
 * Each device has its own UDP socket (its own source address, which is how a NoSec server tells
 * devices apart). A device registers (POST /rd, CON with RFC 7252 retransmission), answers the
 * server's reads, observes, writes, executes, creates, deletes and discovers, and sends
 * notifications for its observations at a chosen total rate. Resource values are the device's
 * send time in microseconds since the epoch, so a reader downstream can compute the lag from
 * device to shadow. At the end one JSON line of figures goes to stdout.
 *
 * Why raw sockets and a small hand-rolled CoAP codec rather than libcoap: the generator has to
 * be cheaper per message than the server it measures (a libcoap server), or the figures measure
 * the generator. libcoap's client side costs a session object, a connected socket and a PDU
 * allocation per device and per message, and its I/O loop walks every session on each pass;
 * here a device costs one socket and ~100 bytes, and a message is encoded into a stack buffer.
 * A process can hold only RLIMIT_NOFILE sockets, so large counts are split over forked jobs. */
#include "coapmin.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VERSION "0.1"

/* RFC 7252 4.8 transmission parameters */
#define ACK_TIMEOUT_MS 2000
#define ACK_RANDOM_FACTOR 1.5
#define MAX_RETRANSMIT 4
#define SEPARATE_WAIT_US (30 * 1000000ull) /* for a separate response after an empty ACK */
#define HIST_BUCKETS 256

enum { K_NONE, K_REGISTER, K_NOTIFY, K_DEREGISTER, K_UPDATE };
enum { D_IDLE, D_REGISTERING, D_REGISTERED, D_FAILED, D_DEREGISTERING, D_GONE };
enum { PH_REG, PH_SETTLE, PH_NOTIFY, PH_HOLD, PH_DRAIN, PH_UPDATE, PH_DEREG, PH_END };

static struct {
	struct sockaddr_in server;
	unsigned long ndev;
	double reg_rate;
	unsigned window;
	double notify_rate;
	double duration;
	unsigned long long notify_count;
	const char *links;
	const char *prefix;
	unsigned long lifetime;
	const char *version;
	bool con_notify;
	double hold;
	double timeout;
	double settle;
	double settle_max;
	unsigned expect_obs;
	int ready_fd;
	unsigned jobs;
	bool deregister;
	unsigned long updates; /* Updates per device after the notifications */
	unsigned per_ip;
	unsigned long first; /* global index of this job's first device */
	int release_fd;      /* several jobs: EOF here once every job is registered (PSK jobs hold
	                        their sessions until then) */
	const char *psk;     /* DTLS-PSK key (hex) of every device: PSK devices through libcoap */
	const char *write_log; /* "ENDPOINT PATH TIME_US" per write received */
} opt = {
	.ndev = 100, .window = 256, .duration = 10, .links = "</1/0>,</3/0>,</3303/0>",
	.prefix = "bench-", .lifetime = 86400, .version = "1.1", .timeout = 300, .settle = 1,
	.settle_max = 60, .ready_fd = -1, .per_ip = 20000, .release_fd = -1,
};

struct stats {
	uint64_t reg_sent, registered, reg_failed, observe_reqs, obs_cancels, obs_at_ready;
	uint64_t reads, writes, executes, creates, deletes, discovers, refused;
	uint64_t notify_sent, notify_acked, notify_busy, notify_reset, notify_timeout;
	uint64_t retrans, timeouts, resets_rx, bad_packets, dup_requests, unexpected;
	uint64_t dereg_ok, dereg_failed, upd_ok, upd_failed;
	/* CLOCK_MONOTONIC microseconds: first and last of registrations, notifications, updates */
	uint64_t reg_t0, reg_t1, notify_t0, notify_t1, upd_t0, upd_t1;
	uint64_t reg_hist[HIST_BUCKETS], ack_hist[HIST_BUCKETS], upd_hist[HIST_BUCKETS];
};
static struct stats st;

/* The write log: whole lines only, each job through its own buffer (written out after each pass
 * of its event loop) onto one O_APPEND descriptor, so the jobs' lines never interleave. */
static int wlog_fd = -1;
static char wlog_buf[1 << 16];
static size_t wlog_len;

static void wlog_flush(void)
{
	if (wlog_fd >= 0 && wlog_len && write(wlog_fd, wlog_buf, wlog_len) != (ssize_t)wlog_len)
		log_warn("unable to write the write log: %s", strerror(errno));
	wlog_len = 0;
}

struct obs {
	uint8_t tok[8];
	uint8_t tkl;
	uint8_t depth; /* path segments: 1 object, 2 instance, 3 resource */
	uint16_t o, i, r;
	uint16_t ct;
	uint32_t seq;
};

struct dev {
	int fd;
	uint16_t mid;
	uint8_t state;
	uint8_t nobs;
	uint8_t obs_cap;
	uint8_t out_kind, out_tries, out_empty_acked, has_last;
	uint16_t out_mid, out_len, last_mid, last_len;
	uint32_t out_timeout_ms;
	uint8_t out_tok[4];
	uint64_t out_first_us, out_deadline_us;
	uint8_t *out;  /* the outstanding confirmable message, for retransmission */
	uint8_t *last; /* the last response sent, for a duplicate request (RFC 7252 4.5) */
	struct obs *obs;
	uint32_t nupd; /* Updates answered (or failed) */
	char loc[32];
};

static struct dev *devs;
static unsigned long ndevs; /* this job's devices */

struct lnk { uint16_t o, i; bool has_i; };
static struct lnk links[64];
static unsigned nlinks;

struct hent { uint64_t at; uint32_t dev; uint16_t mid; };
static struct hent *heap;
static size_t nheap, capheap;

static volatile sig_atomic_t stop_flag;
static uint64_t t_start;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void hist_add(uint64_t *h, uint64_t us)
{
	unsigned b = (unsigned)(8.0 * log2((double)us + 1.0));
	h[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
}

/* The upper edge of the bucket holding quantile q, in milliseconds. */
static double hist_q(const uint64_t *h, double q)
{
	uint64_t total = 0, acc = 0;
	for (int b = 0; b < HIST_BUCKETS; b++)
		total += h[b];
	if (total == 0)
		return 0;
	for (int b = 0; b < HIST_BUCKETS; b++) {
		acc += h[b];
		if ((double)acc >= q * (double)total)
			return (exp2((b + 1) / 8.0) - 1.0) / 1000.0;
	}
	return 0;
}

/* --- retransmission timers: a binary min-heap with lazy deletion --- */

static void heap_push(uint64_t at, uint32_t dev, uint16_t mid)
{
	if (nheap == capheap) {
		capheap = capheap ? capheap * 2 : 1024;
		heap = realloc(heap, capheap * sizeof *heap);
		if (!heap)
			die(EXIT_TEMPORARY, "out of memory");
	}
	size_t i = nheap++;
	while (i > 0 && heap[(i - 1) / 2].at > at) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = (struct hent){at, dev, mid};
}

static struct hent heap_pop(void)
{
	struct hent top = heap[0], last = heap[--nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= nheap)
			break;
		if (c + 1 < nheap && heap[c + 1].at < heap[c].at)
			c++;
		if (heap[c].at >= last.at)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (nheap)
		heap[i] = last;
	return top;
}

/* --- sending --- */

static void send_raw(struct dev *d, const uint8_t *buf, size_t len)
{
	if (send(d->fd, buf, len, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED)
		log_debug("send: %s", strerror(errno));
}

/* Updates outstanding, kept here so that the Update phase does not walk every device for each
 * round (at 15,000 devices that walk was the generator's main cost, and the phase's pace). */
static unsigned long upd_inflight;

/* Send a confirmable message and keep it for retransmission (one outstanding per device). */
static void send_con(struct dev *d, uint32_t idx, const uint8_t *buf, size_t len, int kind)
{
	if (d->out && d->out_kind == K_UPDATE)
		upd_inflight--;
	free(d->out);
	d->out = malloc(len);
	if (!d->out)
		die(EXIT_TEMPORARY, "out of memory");
	memcpy(d->out, buf, len);
	d->out_len = (uint16_t)len;
	d->out_mid = (uint16_t)(buf[2] << 8 | buf[3]);
	d->out_kind = (uint8_t)kind;
	upd_inflight += kind == K_UPDATE;
	d->out_tries = 0;
	d->out_empty_acked = 0;
	/* ACK_TIMEOUT * random factor in [1, ACK_RANDOM_FACTOR] */
	d->out_timeout_ms = ACK_TIMEOUT_MS + (uint32_t)(random() % (long)(ACK_TIMEOUT_MS * (ACK_RANDOM_FACTOR - 1)));
	uint64_t now = mono_us();
	d->out_first_us = now;
	d->out_deadline_us = now + d->out_timeout_ms * 1000ull;
	heap_push(d->out_deadline_us, idx, d->out_mid);
	send_raw(d, buf, len);
}

static void out_done(struct dev *d)
{
	if (d->out && d->out_kind == K_UPDATE)
		upd_inflight--;
	free(d->out);
	d->out = NULL;
	d->out_kind = K_NONE;
}

static void reply(struct dev *d, const uint8_t *buf, size_t len, uint16_t req_mid)
{
	uint8_t *c = realloc(d->last, len);
	if (c) {
		memcpy(c, buf, len);
		d->last = c;
		d->last_len = (uint16_t)len;
		d->last_mid = req_mid;
		d->has_last = 1;
	}
	send_raw(d, buf, len);
}

static void send_register(struct dev *d, uint32_t idx)
{
	uint8_t buf[1024], tok[4];
	char q[128];
	struct cm_writer w;
	unsigned long g = opt.first + idx;
	uint32_t t = (uint32_t)random();
	memcpy(tok, &t, 4);
	memcpy(d->out_tok, tok, 4);
	cm_begin(&w, buf, sizeof buf, COAP_CON, CM_POST, d->mid++, tok, 4);
	cm_opt(&w, CO_URI_PATH, "rd", 2);
	cm_opt_uint(&w, CO_CONTENT_FORMAT, 40);
	int n = snprintf(q, sizeof q, "ep=%s%06lu", opt.prefix, g);
	cm_opt(&w, CO_URI_QUERY, q, (size_t)n);
	n = snprintf(q, sizeof q, "lt=%lu", opt.lifetime);
	cm_opt(&w, CO_URI_QUERY, q, (size_t)n);
	n = snprintf(q, sizeof q, "lwm2m=%s", opt.version);
	cm_opt(&w, CO_URI_QUERY, q, (size_t)n);
	cm_opt(&w, CO_URI_QUERY, "b=U", 3);
	cm_payload(&w, opt.links, strlen(opt.links));
	if (w.overflow)
		die(EXIT_USAGE, "registration message too large");
	d->state = D_REGISTERING;
	st.reg_sent++;
	send_con(d, idx, buf, w.len, K_REGISTER);
}

/* De-register (DELETE) or Update (POST, no parameters, no payload: the lifetime refresh devices
 * send most) on the registration's Location-Path. */
static void send_deregister(struct dev *d, uint32_t idx, int update)
{
	uint8_t buf[128], tok[4];
	struct cm_writer w;
	uint32_t t = (uint32_t)random();
	memcpy(tok, &t, 4);
	memcpy(d->out_tok, tok, 4);
	cm_begin(&w, buf, sizeof buf, COAP_CON, update ? CM_POST : CM_DELETE, d->mid++, tok, 4);
	for (char *s = d->loc + 1; *s;) {
		char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		cm_opt(&w, CO_URI_PATH, s, l);
		s += l + (e ? 1 : 0);
	}
	if (update) {
		send_con(d, idx, buf, w.len, K_UPDATE);
		return;
	}
	d->state = D_DEREGISTERING;
	send_con(d, idx, buf, w.len, K_DEREGISTER);
}

/* --- resource values --- */

static bool is_float(uint16_t r)
{
	switch (r) {
	case 5700: case 5601: case 5602: case 5603: case 5604: case 5536: case 5537:
		return true;
	}
	return false;
}

/* Encode the value of resource r (or of an instance/object: its resource 5700, a stand-in) in
 * content format ct. Returns the length, or -1 when ct is not one we speak. */
static int encode_value(uint8_t *p, size_t cap, const struct obs *o, int ct, uint64_t v)
{
	uint16_t r = o->depth >= 3 ? o->r : 5700;
	char base[48];
	if (o->depth >= 3)
		snprintf(base, sizeof base, "/%u/%u/", o->o, o->i);
	else
		snprintf(base, sizeof base, "/%u/%u/", o->o, o->depth >= 2 ? o->i : 0);
	switch (ct) {
	case 0:
		if (o->depth < 3)
			return -1;
		return snprintf((char *)p, cap, "%" PRIu64, v);
	case 110:
		return snprintf((char *)p, cap, "[{\"bn\":\"%s\",\"n\":\"%u\",\"v\":%" PRIu64 "}]", base, r, v);
	case 11543:
		return snprintf((char *)p, cap, "{\"bn\":\"%s\",\"e\":[{\"n\":\"%u\",\"v\":%" PRIu64 "}]}", base, r, v);
	case 11542: {
		size_t n = 0;
		p[n++] = (uint8_t)(0xC8 | (r > 255 ? 0x20 : 0));
		if (r > 255)
			p[n++] = (uint8_t)(r >> 8);
		p[n++] = (uint8_t)r;
		uint64_t bits = v;
		if (is_float(r)) {
			double dv = (double)v;
			memcpy(&bits, &dv, 8);
		}
		for (int k = 7; k >= 0; k--)
			p[n++] = (uint8_t)(bits >> (8 * k));
		return (int)n;
	}
	case 112: {
		/* [{-2: "bn", 0: "n", 2: v}] */
		char name[8];
		size_t n = 0, bl = strlen(base);
		int nl = snprintf(name, sizeof name, "%u", r);
		p[n++] = 0x81;
		p[n++] = 0xA3;
		p[n++] = 0x21;
		p[n++] = (uint8_t)(0x78);
		p[n++] = (uint8_t)bl;
		memcpy(p + n, base, bl);
		n += bl;
		p[n++] = 0x00;
		p[n++] = (uint8_t)(0x60 | nl);
		memcpy(p + n, name, (size_t)nl);
		n += (size_t)nl;
		p[n++] = 0x02;
		uint64_t bits = v;
		if (is_float(r)) {
			double dv = (double)v;
			memcpy(&bits, &dv, 8);
			p[n++] = 0xFB;
		} else {
			p[n++] = 0x1B;
		}
		for (int k = 7; k >= 0; k--)
			p[n++] = (uint8_t)(bits >> (8 * k));
		return (int)n;
	}
	}
	return -1;
}

/* The format to answer in: the Accept option if we speak it, else text for a resource, TLV
 * (1.0) or SenML JSON (1.1) for an instance. -1 when Accept names something we do not speak. */
static int pick_ct(const struct cm_msg *m, int depth)
{
	uint32_t acc = cm_get_uint(m, CO_ACCEPT, 0xffff);
	if (acc == 0xffff)
		return depth >= 3 ? 0 : (strcmp(opt.version, "1.0") == 0 ? 11542 : 110);
	if (acc == 0 && depth < 3)
		return -1;
	if (acc == 0 || acc == 110 || acc == 112 || acc == 11542 || acc == 11543)
		return (int)acc;
	return -1;
}

static bool has_instance(unsigned o, unsigned i, int depth)
{
	for (unsigned k = 0; k < nlinks; k++)
		if (links[k].o == o && (depth < 2 || !links[k].has_i || links[k].i == i))
			return true;
	return false;
}

static void send_notify(struct dev *d, uint32_t idx, struct obs *o)
{
	uint8_t buf[256], pl[160];
	struct cm_writer w;
	int n = encode_value(pl, sizeof pl, o, o->ct, real_us());
	if (n < 0)
		return;
	o->seq = (o->seq + 1) & 0xffffff;
	cm_begin(&w, buf, sizeof buf, opt.con_notify ? COAP_CON : COAP_NON, CM_CONTENT, d->mid++,
	         o->tok, o->tkl);
	cm_opt_uint(&w, CO_OBSERVE, o->seq);
	cm_opt_uint(&w, CO_CONTENT_FORMAT, o->ct);
	cm_payload(&w, pl, (size_t)n);
	st.notify_sent++;
	if (opt.con_notify)
		send_con(d, idx, buf, w.len, K_NOTIFY);
	else
		send_raw(d, buf, w.len);
}

/* --- receiving --- */

static void handle_request(struct dev *d, const struct cm_msg *m)
{
	uint8_t buf[512], pl[400];
	struct cm_writer w;
	char path[128];
	unsigned seg[4] = {0, 0, 0, 0};
	int depth = 0;
	int resp_type = m->type == COAP_CON ? COAP_ACK : COAP_NON;
	uint16_t mid = m->type == COAP_CON ? m->mid : d->mid++;

	if (m->type == COAP_CON && d->has_last && d->last_mid == m->mid) {
		st.dup_requests++;
		send_raw(d, d->last, d->last_len);
		return;
	}
	cm_path(m, CO_URI_PATH, path, sizeof path);
	for (char *s = path + 1; *s && depth < 4;) {
		char *e;
		unsigned long v = strtoul(s, &e, 10);
		if (e == s || v > 65535)
			break;
		seg[depth++] = (unsigned)v;
		s = *e == '/' ? e + 1 : e;
		if (*e && *e != '/')
			break;
	}
	uint8_t code;
	int ct = -1;
	size_t plen = 0;
	bool obs_opt = false;
	uint32_t obs_seq = 0;

	if (depth == 0 || !has_instance(seg[0], seg[1], depth)) {
		code = CM_NOT_FOUND;
		st.refused++;
	} else if (m->code == CM_GET && cm_get_uint(m, CO_ACCEPT, 0xffff) == 40) {
		int n = 0;
		for (unsigned k = 0; k < nlinks; k++)
			if (links[k].o == seg[0])
				n += snprintf((char *)pl + n, sizeof pl - (size_t)n, "%s</%u/%u>", n ? "," : "",
				              links[k].o, links[k].i);
		code = CM_CONTENT;
		ct = 40;
		plen = (size_t)n;
		st.discovers++;
	} else if (m->code == CM_GET) {
		struct obs tmp = {.depth = (uint8_t)depth, .o = (uint16_t)seg[0], .i = (uint16_t)seg[1],
		                  .r = (uint16_t)seg[2]};
		ct = pick_ct(m, depth);
		int n = ct < 0 ? -1 : encode_value(pl, sizeof pl, &tmp, ct, real_us());
		if (n < 0) {
			code = CM_NOT_ACCEPTABLE;
			ct = -1;
			st.refused++;
		} else {
			code = CM_CONTENT;
			plen = (size_t)n;
			uint32_t ov = cm_get_uint(m, CO_OBSERVE, 0xffffffff);
			struct obs *found = NULL;
			for (unsigned k = 0; k < d->nobs; k++)
				if (d->obs[k].tkl == m->tkl && memcmp(d->obs[k].tok, m->tok, m->tkl) == 0)
					found = &d->obs[k];
			if (ov == 0) {
				st.observe_reqs++;
				if (!found && d->nobs < 255) {
					if (d->nobs == d->obs_cap) {
						unsigned nc = d->obs_cap ? d->obs_cap * 2u : 2u;
						if (nc > 255)
							nc = 255;
						struct obs *no = realloc(d->obs, nc * sizeof *no);
						if (!no)
							die(EXIT_TEMPORARY, "out of memory");
						d->obs = no;
						d->obs_cap = (uint8_t)nc;
					}
					found = &d->obs[d->nobs++];
				}
				if (found) {
					*found = tmp;
					memcpy(found->tok, m->tok, m->tkl);
					found->tkl = m->tkl;
					found->ct = (uint16_t)ct;
					found->seq = 2;
					obs_opt = true;
					obs_seq = found->seq;
				}
			} else {
				if (ov == 1 && found) {
					st.obs_cancels++;
					*found = d->obs[--d->nobs];
				} else {
					st.reads++;
				}
			}
		}
	} else if (m->code == CM_PUT || (m->code == CM_POST && depth == 2)) {
		code = CM_CHANGED;
		st.writes++;
		if (wlog_fd >= 0) {
			if (sizeof wlog_buf - wlog_len < 256)
				wlog_flush();
			int n = snprintf(wlog_buf + wlog_len, sizeof wlog_buf - wlog_len, "%s%06lu %s %" PRIu64 "\n", opt.prefix,
			                 opt.first + (unsigned long)(d - devs), path, real_us());
			if (n > 0 && (size_t)n < sizeof wlog_buf - wlog_len)
				wlog_len += (size_t)n;
		}
	} else if (m->code == CM_POST && depth == 3) {
		code = CM_CHANGED;
		st.executes++;
	} else if (m->code == CM_POST && depth == 1) {
		code = CM_CREATED;
		st.creates++;
	} else if (m->code == CM_DELETE && depth == 2) {
		code = CM_DELETED;
		st.deletes++;
	} else {
		code = CM_NOT_ALLOWED;
		st.refused++;
	}
	cm_begin(&w, buf, sizeof buf, resp_type, code, mid, m->tok, m->tkl);
	if (obs_opt)
		cm_opt_uint(&w, CO_OBSERVE, obs_seq);
	if (ct >= 0)
		cm_opt_uint(&w, CO_CONTENT_FORMAT, (uint32_t)ct);
	cm_payload(&w, pl, plen);
	reply(d, buf, w.len, m->mid);
}

/* A response (piggybacked in an ACK, or separate) to our outstanding request. */
static void handle_response(struct dev *d, const struct cm_msg *m)
{
	uint64_t now = mono_us();
	if (d->out_kind == K_REGISTER) {
		if (m->code == CM_CREATED) {
			cm_path(m, CO_LOCATION_PATH, d->loc, sizeof d->loc);
			d->state = D_REGISTERED;
			st.registered++;
			st.reg_t1 = now;
			hist_add(st.reg_hist, now - d->out_first_us);
		} else {
			d->state = D_FAILED;
			st.reg_failed++;
			log_debug("register refused: %u.%02u", m->code >> 5, m->code & 31);
		}
	} else if (d->out_kind == K_DEREGISTER) {
		if (m->code == CM_DELETED)
			st.dereg_ok++;
		else
			st.dereg_failed++;
		d->state = D_GONE;
	} else if (d->out_kind == K_UPDATE) {
		d->nupd++;
		if (m->code == CM_CHANGED) {
			st.upd_ok++;
			st.upd_t1 = now;
			hist_add(st.upd_hist, now - d->out_first_us);
		} else {
			st.upd_failed++;
			log_debug("update refused: %u.%02u", m->code >> 5, m->code & 31);
		}
	}
	out_done(d);
}

static void handle_datagram(struct dev *d, const uint8_t *buf, size_t n)
{
	struct cm_msg m;
	if (cm_parse(&m, buf, n) < 0) {
		st.bad_packets++;
		return;
	}
	int cls = m.code >> 5;
	if (m.type == COAP_ACK || m.type == COAP_RST) {
		if (!d->out || m.mid != d->out_mid) {
			st.unexpected++;
			return;
		}
		if (m.type == COAP_RST) {
			st.resets_rx++;
			if (d->out_kind == K_NOTIFY) {
				/* RFC 7641 3.6: the server lost interest; forget that observation */
				st.notify_reset++;
				const uint8_t *tok = d->out + 4;
				unsigned tkl = d->out[0] & 15;
				for (unsigned k = 0; k < d->nobs; k++)
					if (d->obs[k].tkl == tkl && memcmp(d->obs[k].tok, tok, tkl) == 0) {
						d->obs[k] = d->obs[--d->nobs];
						break;
					}
			} else if (d->out_kind == K_REGISTER) {
				d->state = D_FAILED;
				st.reg_failed++;
			} else if (d->out_kind == K_DEREGISTER) {
				d->state = D_GONE;
				st.dereg_failed++;
			} else if (d->out_kind == K_UPDATE) {
				d->nupd++;
				st.upd_failed++;
			}
			out_done(d);
			return;
		}
		if (d->out_kind == K_NOTIFY) {
			st.notify_acked++;
			hist_add(st.ack_hist, mono_us() - d->out_first_us);
			out_done(d);
			return;
		}
		if (m.code == 0) {
			/* empty ACK: the response comes separately; stop retransmitting, keep waiting */
			d->out_empty_acked = 1;
			d->out_deadline_us = mono_us() + SEPARATE_WAIT_US;
			heap_push(d->out_deadline_us, (uint32_t)(d - devs), d->out_mid);
			return;
		}
		if (m.tkl == 4 && memcmp(m.tok, d->out_tok, 4) == 0)
			handle_response(d, &m);
		else
			st.unexpected++;
		return;
	}
	if (cls == 0 && m.code != 0) {
		handle_request(d, &m);
		return;
	}
	if (cls >= 2) {
		/* a separate response: acknowledge it if confirmable */
		if (m.type == COAP_CON) {
			uint8_t ack[4] = {0x60, 0, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
			send_raw(d, ack, 4);
		}
		if (d->out && d->out_kind != K_NOTIFY && m.tkl == 4 && memcmp(m.tok, d->out_tok, 4) == 0)
			handle_response(d, &m);
		else
			st.unexpected++;
		return;
	}
	if (m.type == COAP_CON && m.code == 0) {
		/* CoAP ping: answer with a reset */
		uint8_t rst[4] = {0x70, 0, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
		send_raw(d, rst, 4);
		return;
	}
	st.unexpected++;
}

static void timers_due(uint64_t now)
{
	while (nheap && heap[0].at <= now) {
		struct hent e = heap_pop();
		struct dev *d = &devs[e.dev];
		if (!d->out || d->out_mid != e.mid || d->out_deadline_us != e.at)
			continue; /* stale: answered or rescheduled */
		if (d->out_empty_acked || d->out_tries >= MAX_RETRANSMIT) {
			st.timeouts++;
			if (d->out_kind == K_REGISTER) {
				d->state = D_FAILED;
				st.reg_failed++;
			} else if (d->out_kind == K_NOTIFY) {
				st.notify_timeout++;
			} else if (d->out_kind == K_DEREGISTER) {
				d->state = D_GONE;
				st.dereg_failed++;
			} else if (d->out_kind == K_UPDATE) {
				d->nupd++;
				st.upd_failed++;
			}
			out_done(d);
			continue;
		}
		d->out_tries++;
		d->out_timeout_ms *= 2;
		d->out_deadline_us = now + d->out_timeout_ms * 1000ull;
		heap_push(d->out_deadline_us, e.dev, d->out_mid);
		st.retrans++;
		send_raw(d, d->out, d->out_len);
	}
}

/* --- set-up --- */

static void parse_links(const char *s)
{
	while (*s && nlinks < 64) {
		unsigned o, i;
		int n = 0;
		if (sscanf(s, " </%u/%u>%n", &o, &i, &n) == 2 && n > 0) {
			links[nlinks++] = (struct lnk){(uint16_t)o, (uint16_t)i, true};
		} else if (sscanf(s, " </%u>%n", &o, &n) == 1 && n > 0) {
			links[nlinks++] = (struct lnk){(uint16_t)o, 0, false};
		} else {
			die(EXIT_USAGE, "bad link list near: %s", s);
		}
		s += n;
		while (*s && *s != ',')
			s++; /* attributes such as ;ver=1.1 */
		if (*s == ',')
			s++;
	}
}

static void open_sockets(int ep)
{
	for (unsigned long k = 0; k < ndevs; k++) {
		unsigned long g = opt.first + k;
		struct sockaddr_in src = {.sin_family = AF_INET};
		/* all of 127/8 is the loopback interface; a new source address every per_ip devices
		 * because one address has only so many ports */
		src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(g / opt.per_ip));
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die_sys(EXIT_TEMPORARY, "unable to open socket %lu", k);
		if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
			die_sys(EXIT_TEMPORARY, "unable to bind a port on %s (device %lu)", inet_ntoa(src.sin_addr), g);
		if (connect(fd, (struct sockaddr *)&opt.server, sizeof opt.server) < 0)
			die_sys(EXIT_TEMPORARY, "unable to connect socket");
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die_sys(EXIT_TEMPORARY, "unable to add socket to epoll");
		devs[k].fd = fd;
		devs[k].mid = (uint16_t)random();
	}
}

/* --- the event loop of one job --- */

static void run_job(int ready_w)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die_sys(EXIT_TEMPORARY, "epoll_create1");
	devs = calloc(ndevs ? ndevs : 1, sizeof *devs);
	if (!devs)
		die(EXIT_TEMPORARY, "out of memory");
	srandom((unsigned)(getpid() ^ mono_us()));
	open_sockets(ep);

	int phase = PH_REG;
	bool was_ready = false;
	uint64_t now = mono_us(), phase_t0 = now, last_obs_seen = now;
	uint64_t deadline = t_start + (uint64_t)(opt.timeout * 1e6);
	unsigned long next_reg = 0, reg_out = 0, cursor = 0, dereg_next = 0, upd_next = 0;
	uint64_t notify_started = 0, prev_obs_reqs = 0;
	double rate_per_job_reg = opt.reg_rate / opt.jobs, rate_per_job_n = opt.notify_rate / opt.jobs;
	unsigned long long count_per_job = opt.notify_count ? (opt.notify_count + opt.jobs - 1) / opt.jobs : 0;
	struct epoll_event evs[512];
	static uint8_t rbuf[2048];
	st.reg_t0 = now;

	while (phase != PH_END) {
		now = mono_us();
		if (now >= deadline) {
			log_warn("time bound reached (%.0f s); stopping", opt.timeout);
			break;
		}
		if (stop_flag && phase < PH_DRAIN) {
			phase = PH_DRAIN;
			phase_t0 = now;
		}

		/* registrations, at a rate or as fast as the window allows */
		reg_out = (unsigned long)(st.reg_sent - st.registered - st.reg_failed);
		while (phase == PH_REG && next_reg < ndevs && reg_out < opt.window &&
		       (rate_per_job_reg <= 0 || (double)next_reg < rate_per_job_reg * (double)(now - phase_t0) / 1e6 + 1)) {
			send_register(&devs[next_reg], (uint32_t)next_reg);
			next_reg++;
			reg_out++;
		}
		if (phase == PH_REG && st.registered + st.reg_failed >= ndevs) {
			phase = PH_SETTLE;
			phase_t0 = now;
			last_obs_seen = now;
			log_info("registered %" PRIu64 " of %lu devices", st.registered, ndevs);
		}
		if (phase == PH_SETTLE) {
			if (st.observe_reqs != prev_obs_reqs) {
				prev_obs_reqs = st.observe_reqs;
				last_obs_seen = now;
			}
			uint64_t have = 0;
			for (unsigned long k = 0; opt.expect_obs && k < ndevs; k++)
				have += devs[k].nobs;
			bool enough = opt.expect_obs ? have >= (uint64_t)opt.expect_obs * st.registered
			                             : now - last_obs_seen >= (uint64_t)(opt.settle * 1e6);
			if (enough || now - phase_t0 >= (uint64_t)(opt.settle_max * 1e6)) {
				if (!enough)
					log_warn("observations still arriving after %.0f s; going on", opt.settle_max);
				for (unsigned long k = 0; k < ndevs; k++)
					st.obs_at_ready += devs[k].nobs;
				was_ready = true;
				if (ready_w >= 0) {
					if (write(ready_w, "r", 1) != 1)
						log_warn("unable to signal readiness: %s", strerror(errno));
					close(ready_w);
					ready_w = -1;
				}
				phase = opt.notify_rate > 0 ? PH_NOTIFY : PH_HOLD;
				/* the harness takes the servers' CPU time from here (set-up excluded) */
				if (phase == PH_NOTIFY)
					log_info("notifying");
				phase_t0 = now;
				notify_started = now;
				st.notify_t0 = now;
			}
		}
		if (phase == PH_NOTIFY) {
			double target = rate_per_job_n * (double)(now - notify_started) / 1e6;
			unsigned long scanned = 0, burst = 0;
			/* a bounded burst per pass, so timers, answers and the duration are looked at */
			while ((double)st.notify_sent + (double)st.notify_busy < target && scanned < ndevs &&
			       burst++ < 4096 &&
			       (!count_per_job || st.notify_sent < count_per_job)) {
				struct dev *d = &devs[cursor];
				uint32_t idx = (uint32_t)cursor;
				cursor = cursor + 1 < ndevs ? cursor + 1 : 0;
				scanned++;
				if (!d->nobs)
					continue;
				scanned = 0;
				if (opt.con_notify && d->out) {
					st.notify_busy++;
					continue;
				}
				send_notify(d, idx, &d->obs[st.notify_sent % d->nobs]);
			}
			st.notify_t1 = now;
			if (now - phase_t0 >= (uint64_t)(opt.duration * 1e6) ||
			    (count_per_job && st.notify_sent >= count_per_job) || scanned >= ndevs) {
				phase = PH_HOLD;
				phase_t0 = now;
			}
		}
		if (phase == PH_HOLD && (stop_flag || now - phase_t0 >= (uint64_t)(opt.hold * 1e6))) {
			phase = PH_DRAIN;
			phase_t0 = now;
		}
		if (phase == PH_DRAIN) {
			bool busy = false;
			for (unsigned long k = 0; k < ndevs && !busy; k++)
				busy = devs[k].out != NULL;
			if (!busy || now - phase_t0 > 5000000u) {
				phase = opt.updates ? PH_UPDATE : opt.deregister ? PH_DEREG : PH_END;
				phase_t0 = now;
				st.upd_t0 = now;
			}
		}
		if (phase == PH_UPDATE) {
			/* round after round over the devices, one Update outstanding per device, at most
			 * a window of them at once */
			unsigned long scanned = 0;
			for (; upd_inflight < opt.window && scanned < ndevs; scanned++) {
				struct dev *d = &devs[upd_next];
				uint32_t idx = (uint32_t)upd_next;
				upd_next = upd_next + 1 < ndevs ? upd_next + 1 : 0;
				if (d->state == D_REGISTERED && !d->out && d->nupd < opt.updates)
					send_deregister(d, idx, 1);
			}
			/* a whole round found none to send and none is outstanding: check once that all
			 * are done */
			bool over = false;
			if (scanned == ndevs && upd_inflight == 0) {
				unsigned long done = 0;
				for (unsigned long k = 0; k < ndevs; k++)
					done += devs[k].state != D_REGISTERED || devs[k].nupd >= opt.updates;
				over = done >= ndevs;
			}
			if (over || stop_flag || now - phase_t0 > 120000000u) {
				phase = opt.deregister ? PH_DEREG : PH_END;
				phase_t0 = now;
			}
		}
		if (phase == PH_DEREG) {
			unsigned long inflight = 0;
			for (unsigned long k = 0; k < dereg_next; k++)
				inflight += devs[k].state == D_DEREGISTERING;
			while (dereg_next < ndevs && inflight < opt.window) {
				struct dev *d = &devs[dereg_next];
				if (d->state == D_REGISTERED && !d->out) {
					send_deregister(d, (uint32_t)dereg_next, 0);
					inflight++;
				}
				dereg_next++;
			}
			if ((dereg_next >= ndevs && inflight == 0) || now - phase_t0 > 30000000u)
				phase = PH_END;
		}
		if (phase == PH_END)
			break;

		int wait_ms = 100;
		if (phase == PH_NOTIFY || (phase == PH_REG && rate_per_job_reg > 0))
			wait_ms = 1;
		if (phase == PH_NOTIFY && (double)st.notify_sent + (double)st.notify_busy <
		                              rate_per_job_n * (double)(mono_us() - notify_started) / 1e6)
			wait_ms = 0; /* behind the rate: no sleeping */
		if (nheap) {
			int64_t dt = (int64_t)(heap[0].at - now) / 1000;
			if (dt < wait_ms)
				wait_ms = dt < 0 ? 0 : (int)dt;
		}
		int n = epoll_wait(ep, evs, 512, wait_ms);
		if (n < 0 && errno != EINTR)
			die_sys(EXIT_TEMPORARY, "epoll_wait");
		for (int k = 0; k < n; k++) {
			struct dev *d = &devs[evs[k].data.u32];
			for (int j = 0; j < 64; j++) {
				ssize_t r = recv(d->fd, rbuf, sizeof rbuf, 0);
				if (r < 0) {
					if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED)
						log_debug("recv: %s", strerror(errno));
					break;
				}
				handle_datagram(d, rbuf, (size_t)r);
			}
		}
		wlog_flush(); /* what arrived in this pass, readable while the run goes on */
		timers_due(mono_us());
	}
	if (ready_w >= 0)
		close(ready_w);
	if (!was_ready) /* the time bound came first: report the observations there are */
		for (unsigned long k = 0; k < ndevs; k++)
			st.obs_at_ready += devs[k].nobs;
	for (unsigned long k = 0; k < ndevs; k++) {
		close(devs[k].fd);
		free(devs[k].out);
		free(devs[k].last);
		free(devs[k].obs);
	}
	free(devs);
	free(heap);
	close(ep);
}

/* --- jobs and results --- */

static void add_stats(struct stats *a, const struct stats *b)
{
	const uint64_t *pb = (const uint64_t *)b;
	uint64_t *pa = (uint64_t *)a;
	/* every field is a uint64_t; the six times combine as min/max, the rest add */
	size_t nf = sizeof *a / sizeof(uint64_t);
	size_t t0 = offsetof(struct stats, reg_t0) / 8;
	for (size_t k = 0; k < nf; k++) {
		if (k == t0 || k == t0 + 2 || k == t0 + 4)
			pa[k] = (pa[k] == 0 || (pb[k] && pb[k] < pa[k])) ? pb[k] : pa[k];
		else if (k == t0 + 1 || k == t0 + 3 || k == t0 + 5)
			pa[k] = pb[k] > pa[k] ? pb[k] : pa[k];
		else
			pa[k] += pb[k];
	}
}

#include "pskdev.h"

static void print_results(const struct stats *s)
{
	double reg_s = s->reg_t1 > s->reg_t0 ? (double)(s->reg_t1 - s->reg_t0) / 1e6 : 0;
	double not_s = s->notify_t1 > s->notify_t0 ? (double)(s->notify_t1 - s->notify_t0) / 1e6 : 0;
	double upd_s = s->upd_t1 > s->upd_t0 ? (double)(s->upd_t1 - s->upd_t0) / 1e6 : 0;
	printf("{\"tool\":\"lwm2m-loadgen\",\"devices\":%lu,\"jobs\":%u,\"sec\":\"%s\","
	       "\"registered\":%" PRIu64 ",\"register_failed\":%" PRIu64 ",\"register_seconds\":%.3f,"
	       "\"registers_per_s\":%.0f,\"register_p50_ms\":%.2f,\"register_p99_ms\":%.2f,"
	       "\"observe_requests\":%" PRIu64 ",\"observations\":%" PRIu64 ",\"observe_cancels\":%" PRIu64 ","
	       "\"notify_sent\":%" PRIu64 ",\"notify_acked\":%" PRIu64 ",\"notify_busy\":%" PRIu64 ","
	       "\"notify_reset\":%" PRIu64 ",\"notify_timeout\":%" PRIu64 ",\"notify_seconds\":%.3f,"
	       "\"notifications_per_s\":%.0f,\"notify_ack_p50_ms\":%.2f,\"notify_ack_p99_ms\":%.2f,"
	       "\"reads\":%" PRIu64 ",\"writes\":%" PRIu64 ",\"executes\":%" PRIu64 ",\"creates\":%" PRIu64 ","
	       "\"deletes\":%" PRIu64 ",\"discovers\":%" PRIu64 ",\"refused\":%" PRIu64 ","
	       "\"retransmissions\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"resets\":%" PRIu64 ","
	       "\"bad_packets\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"unexpected\":%" PRIu64 ","
	       "\"updates\":%" PRIu64 ",\"update_failed\":%" PRIu64 ",\"update_seconds\":%.3f,"
	       "\"updates_per_s\":%.0f,\"update_p50_ms\":%.2f,\"update_p99_ms\":%.2f,"
	       "\"deregistered\":%" PRIu64 ",\"deregister_failed\":%" PRIu64 ",\"errors\":%" PRIu64 "}\n",
	       opt.ndev, opt.jobs, opt.psk ? "psk" : "nosec", s->registered, s->reg_failed, reg_s,
	       reg_s > 0 ? (double)s->registered / reg_s : 0, hist_q(s->reg_hist, 0.5), hist_q(s->reg_hist, 0.99),
	       s->observe_reqs, s->obs_at_ready, s->obs_cancels, s->notify_sent, s->notify_acked,
	       s->notify_busy, s->notify_reset, s->notify_timeout, not_s,
	       not_s > 0 ? (double)s->notify_sent / not_s : 0, hist_q(s->ack_hist, 0.5), hist_q(s->ack_hist, 0.99),
	       s->reads, s->writes, s->executes, s->creates, s->deletes, s->discovers, s->refused,
	       s->retrans, s->timeouts, s->resets_rx, s->bad_packets, s->dup_requests, s->unexpected,
	       s->upd_ok, s->upd_failed, upd_s, upd_s > 0 ? (double)s->upd_ok / upd_s : 0, hist_q(s->upd_hist, 0.5),
	       hist_q(s->upd_hist, 0.99), s->dereg_ok, s->dereg_failed,
	       s->reg_failed + s->notify_timeout + s->notify_reset + s->bad_packets + s->dereg_failed + s->upd_failed);
}

static int read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
	        "Usage: lwm2m-loadgen [options]\n"
	        "Simulate many LwM2M devices (CoAP over UDP, NoSec) against one LwM2M server.\n"
	        "With --psk, DTLS-PSK devices (libcoap clients) that handshake and register, and stay.\n"
	        "  -s, --server ADDR:PORT   the server (127.0.0.1:5683)\n"
	        "  -n, --devices N          number of devices (100)\n"
	        "  -r, --rate R             registrations per second, 0 = as fast as the window allows (0)\n"
	        "  -w, --window W           most registrations outstanding at once, over all jobs (256)\n"
	        "  -N, --notify-rate R      notifications per second over all observations (0 = none)\n"
	        "  -D, --duration S         seconds of notifications (10)\n"
	        "  -c, --count M            stop after M notifications (0 = no bound but the duration)\n"
	        "  -C, --confirmable        send notifications as CON (default NON)\n"
	        "  -o, --objects LINKS      the Register payload (</1/0>,</3/0>,</3303/0>)\n"
	        "  -e, --prefix P           endpoint names P000000, P000001, ... (bench-)\n"
	        "  -l, --lifetime S         registration lifetime (86400)\n"
	        "  -L, --lwm2m VER          LwM2M version to register with: 1.0 or 1.1 (1.1)\n"
	        "  -E, --expect-obs K       ready once every device has K observations (0: once quiet)\n"
	        "      --settle S           ready after S quiet seconds without observe requests (1)\n"
	        "      --settle-max S       ready after S seconds at most (60)\n"
	        "  -H, --hold S             after the notifications, keep answering for S seconds (0)\n"
	        "  -U, --updates K          then K Updates per device (POST /rd/ID, empty), window W\n"
	        "  -x, --deregister         de-register every device at the end\n"
	        "  -j, --jobs P             split devices over P processes (default: as the fd limit needs)\n"
	        "  -a, --per-address K      devices per loopback source address (20000)\n"
	        "  -T, --timeout S          bound on the whole run (300)\n"
	        "  -k, --psk KEYHEX         DTLS-PSK devices, identity = endpoint name, this key\n"
	        "  -W, --write-log FILE     append \"ENDPOINT PATH TIME_US\" (wall clock) per write a NoSec device gets\n"
	        "  -d FD                    write a newline to FD once registered and observed\n"
	        "  -v, -q                   more, less logging\n"
	        "  -h, --help, -V, --version\n");
	exit(code);
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	static const struct option lo[] = {
		{"server", 1, 0, 's'}, {"devices", 1, 0, 'n'}, {"rate", 1, 0, 'r'}, {"window", 1, 0, 'w'},
		{"notify-rate", 1, 0, 'N'}, {"duration", 1, 0, 'D'}, {"count", 1, 0, 'c'},
		{"confirmable", 0, 0, 'C'}, {"objects", 1, 0, 'o'}, {"prefix", 1, 0, 'e'},
		{"lifetime", 1, 0, 'l'}, {"lwm2m", 1, 0, 'L'}, {"expect-obs", 1, 0, 'E'},
		{"settle", 1, 0, 1}, {"settle-max", 1, 0, 2}, {"hold", 1, 0, 'H'},
		{"deregister", 0, 0, 'x'}, {"updates", 1, 0, 'U'}, {"jobs", 1, 0, 'j'}, {"per-address", 1, 0, 'a'},
		{"timeout", 1, 0, 'T'}, {"psk", 1, 0, 'k'}, {"write-log", 1, 0, 'W'}, {"help", 0, 0, 'h'}, {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
	const char *server = "127.0.0.1:5683";
	int c;
	while ((c = getopt_long(argc, argv, "s:n:r:w:N:D:c:Co:e:l:L:E:H:xU:j:a:T:d:k:W:vqhV", lo, NULL)) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'n': opt.ndev = strtoul(optarg, NULL, 10); break;
		case 'r': opt.reg_rate = atof(optarg); break;
		case 'w': opt.window = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'N': opt.notify_rate = atof(optarg); break;
		case 'D': opt.duration = atof(optarg); break;
		case 'c': opt.notify_count = strtoull(optarg, NULL, 10); break;
		case 'C': opt.con_notify = true; break;
		case 'o': opt.links = optarg; break;
		case 'e': opt.prefix = optarg; break;
		case 'l': opt.lifetime = strtoul(optarg, NULL, 10); break;
		case 'L': opt.version = optarg; break;
		case 'E': opt.expect_obs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 1: opt.settle = atof(optarg); break;
		case 2: opt.settle_max = atof(optarg); break;
		case 'H': opt.hold = atof(optarg); break;
		case 'x': opt.deregister = true; break;
		case 'U': opt.updates = strtoul(optarg, NULL, 10); break;
		case 'j': opt.jobs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'a': opt.per_ip = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'T': opt.timeout = atof(optarg); break;
		case 'd': opt.ready_fd = atoi(optarg); break;
		case 'k': opt.psk = optarg; break;
		case 'W': opt.write_log = optarg; break;
		case 'v': log_more(); break;
		case 'q': log_less(); break;
		case 'h': usage(0);
		case 'V': printf("lwm2m-loadgen %s\n", VERSION); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (optind != argc)
		usage(EXIT_USAGE);
	if (strcmp(opt.version, "1.0") && strcmp(opt.version, "1.1"))
		die(EXIT_USAGE, "--lwm2m must be 1.0 or 1.1");
	if (opt.ndev == 0 || opt.window == 0 || opt.per_ip == 0 || opt.timeout <= 0)
		die(EXIT_USAGE, "devices, window, per-address and timeout must be positive");
	{
		char host[64];
		const char *colon = strrchr(server, ':');
		if (!colon || (size_t)(colon - server) >= sizeof host)
			die(EXIT_USAGE, "bad server address: %s (want ADDR:PORT)", server);
		memcpy(host, server, (size_t)(colon - server));
		host[colon - server] = 0;
		opt.server.sin_family = AF_INET;
		opt.server.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &opt.server.sin_addr) != 1)
			die(EXIT_USAGE, "bad server address: %s", server);
	}
	parse_links(opt.links);
	if (opt.psk) {
		size_t n = strlen(opt.psk);
		if (n == 0 || n % 2 || n / 2 > sizeof psk.key)
			die(EXIT_USAGE, "--psk wants 1 to %zu bytes in hex", sizeof psk.key);
		for (size_t i = 0; i < n / 2; i++) {
			unsigned v;
			if (sscanf(opt.psk + 2 * i, "%2x", &v) != 1)
				die(EXIT_USAGE, "--psk: not hex: %s", opt.psk);
			psk.key[i] = (uint8_t)v;
		}
		psk.keylen = n / 2;
	}

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	unsigned long per_job_max = rl.rlim_cur > 128 ? (unsigned long)rl.rlim_cur - 64 : 64;
	/* libcoap 4.3.1's client I/O hits an fd_set (FD_SETSIZE 1024) somewhere: PSK jobs stay below */
	if (opt.psk && per_job_max > 900)
		per_job_max = 900;
	if (opt.jobs == 0)
		opt.jobs = (unsigned)((opt.ndev + per_job_max - 1) / per_job_max);
	if (opt.ndev / opt.jobs + 1 > per_job_max)
		die(EXIT_USAGE, "%lu devices over %u jobs exceed the %lu sockets one process may open",
		    opt.ndev, opt.jobs, per_job_max);

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	t_start = mono_us();
	if (opt.write_log && (wlog_fd = open(opt.write_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		die_sys(EXIT_TEMPORARY, "%s", opt.write_log);

	if (opt.jobs == 1) {
		ndevs = opt.ndev;
		opt.psk ? psk_run(opt.ready_fd) : run_job(opt.ready_fd);
		wlog_flush();
		print_results(&st);
		stdout_flush_or_die();
		return st.registered == opt.ndev ? 0 : 1;
	}

	/* several jobs: each child takes a slice (of the devices and of the window) and sends its
	 * figures back over a pipe */
	if (opt.window < opt.jobs)
		die(EXIT_USAGE, "a window of %u over %u jobs: want at least one each", opt.window, opt.jobs);
	unsigned window = opt.window;
	int ready[2], release[2];
	if (pipe(ready) < 0 || pipe(release) < 0)
		die_sys(EXIT_TEMPORARY, "pipe");
	pid_t *pids = calloc(opt.jobs, sizeof *pids);
	int *res = calloc(opt.jobs, sizeof *res);
	if (!pids || !res)
		die(EXIT_TEMPORARY, "out of memory");
	for (unsigned j = 0; j < opt.jobs; j++) {
		int p[2];
		if (pipe(p) < 0)
			die_sys(EXIT_TEMPORARY, "pipe");
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0)
			die_sys(EXIT_TEMPORARY, "fork");
		if (pid == 0) {
			close(p[0]);
			close(ready[0]);
			close(release[1]);
			opt.release_fd = release[0];
			opt.window = window * (j + 1) / opt.jobs - window * j / opt.jobs;
			if (opt.ready_fd >= 0)
				close(opt.ready_fd);
			opt.first = opt.ndev * j / opt.jobs;
			ndevs = opt.ndev * (j + 1) / opt.jobs - opt.first;
			opt.psk ? psk_run(ready[1]) : run_job(ready[1]);
			wlog_flush();
			if (write(p[1], &st, sizeof st) != (ssize_t)sizeof st)
				_exit(EXIT_TEMPORARY);
			_exit(0);
		}
		close(p[1]);
		pids[j] = pid;
		res[j] = p[0];
	}
	close(ready[1]);
	close(release[0]);
	/* readiness: every job wrote its byte (or ended) */
	unsigned got = 0;
	char b;
	while (got < opt.jobs) {
		ssize_t r = read(ready[0], &b, 1);
		if (r < 0 && errno == EINTR) {
			if (stop_flag)
				for (unsigned j = 0; j < opt.jobs; j++)
					kill(pids[j], SIGTERM);
			continue;
		}
		if (r <= 0)
			break;
		got++;
	}
	/* no job closes its sessions while another is still registering: a job's burst of
	 * close_notify alerts would land in the server's receive queue among the others' handshakes */
	close(release[1]);
	if (got == opt.jobs && opt.ready_fd >= 0) {
		if (write(opt.ready_fd, "\n", 1) != 1)
			log_warn("unable to write readiness: %s", strerror(errno));
		close(opt.ready_fd);
	}
	struct stats total = {0}, one;
	int rc = 0;
	for (unsigned j = 0; j < opt.jobs; j++) {
		while (read_full(res[j], &one, sizeof one) < 0) {
			if (errno == EINTR && stop_flag) {
				for (unsigned k = 0; k < opt.jobs; k++)
					kill(pids[k], SIGTERM);
				stop_flag = 0;
				continue;
			}
			log_error("job %u ended without figures", j);
			rc = EXIT_TEMPORARY;
			memset(&one, 0, sizeof one);
			break;
		}
		add_stats(&total, &one);
		int status;
		waitpid(pids[j], &status, 0);
	}
	print_results(&total);
	stdout_flush_or_die();
	free(pids);
	free(res);
	return rc ? rc : total.registered == opt.ndev ? 0 : 1;
}
