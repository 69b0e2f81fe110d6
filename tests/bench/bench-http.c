#define _GNU_SOURCE
/* bench-http: load for ljs-join over HTTP/1.1 (plain, or TLS with an optional client certificate).
 *
 * C connections, one thread each, each sending POSTs back to back over a keep-alive connection
 * (or, with -N, a new connection and a new full TLS handshake per request). The bodies are
 * LoRaWAN Backend Interfaces JoinReq messages built here from a device registry in ljs-join's
 * format: every request carries a fresh DevNonce and a MIC made with the device's AppKey
 * (nettle AES-CMAC), so each one is a real join the server must verify, derive keys for and
 * persist. A device belongs to one connection, so its nonces arrive in order. With -b a fixed
 * body is sent instead (e.g. a HomeNSReq). Prints one JSON line of figures. */
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_BUCKETS 256

struct device {
	uint8_t dev_eui[8], join_eui[8], key[16];
	char mac[16];
	char dev_eui_hex[17], join_eui_hex[17];
	uint16_t nonce;
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
} opt = {.path = "/", .conns = 16, .seconds = 5, .sender = "000013"};

static struct device *devs;
static size_t ndevs;
static gnutls_certificate_credentials_t xcred;
static volatile sig_atomic_t stop_flag;
static uint64_t t_end;

struct result {
	uint64_t requests, ok, failed, http_errors, io_errors, connects, handshakes, resumed;
	uint64_t hist[HIST_BUCKETS];
	uint64_t hs_hist[HIST_BUCKETS];
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void hist_add(uint64_t *h, uint64_t us)
{
	unsigned b = (unsigned)(8.0 * log2((double)us + 1.0));
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
			return (exp2((b + 1) / 8.0) - 1.0) / 1000.0;
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

/* Read one response. 1 = HTTP 200 with a Success result (or any 200 for a fixed body),
 * 0 = another answer, -1 = I/O error. *keep = the connection can be used again. */
static int read_response(struct conn *c, bool *keep)
{
	char *hend;
	for (;;) {
		c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = 0;
		if ((hend = strstr(c->buf, "\r\n\r\n")))
			break;
		if (conn_recv(c) <= 0)
			return -1;
	}
	size_t hlen = (size_t)(hend - c->buf) + 4;
	int status = 0;
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	long clen = 0;
	const char *cl = strcasestr(c->buf, "\r\ncontent-length:");
	if (cl && cl < hend)
		clen = strtol(cl + 17, NULL, 10);
	const char *cn = strcasestr(c->buf, "\r\nconnection: close");
	*keep = !(cn && cn < hend);
	if (clen < 0 || hlen + (size_t)clen >= sizeof c->buf)
		return -1;
	while (c->len < hlen + (size_t)clen)
		if (conn_recv(c) <= 0)
			return -1;
	char saved = c->buf[hlen + (size_t)clen];
	c->buf[hlen + (size_t)clen] = 0;
	int ok = status == 200 && (opt.body || strstr(c->buf + hlen, "\"Success\""));
	if (status == 200 && !ok)
		log_debug("answer: %.300s", c->buf + hlen);
	c->buf[hlen + (size_t)clen] = saved;
	/* keep any pipelined bytes (there should be none) */
	memmove(c->buf, c->buf + hlen + clen, c->len - hlen - (size_t)clen);
	c->len -= hlen + (size_t)clen;
	return status == 200 ? ok : (status ? 0 : -1);
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
		hist_add(w->r.hist, mono_us() - t0);
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
	while ((c = getopt(argc, argv, "a:p:D:b:s:S:c:t:n:NRTA:C:K:P:vqh")) != -1) {
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
	if (!addr || (!devfile && !opt.body) || opt.conns == 0 || opt.seconds <= 0)
		usage(EXIT_USAGE);
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
		t.requests += w[i].r.requests;
		t.ok += w[i].r.ok;
		t.failed += w[i].r.failed;
		t.io_errors += w[i].r.io_errors;
		t.connects += w[i].r.connects;
		t.handshakes += w[i].r.handshakes;
		t.resumed += w[i].r.resumed;
		for (int b = 0; b < HIST_BUCKETS; b++) {
			t.hist[b] += w[i].r.hist[b];
			t.hs_hist[b] += w[i].r.hs_hist[b];
		}
	}
	double secs = (double)(mono_us() - t0) / 1e6;
	printf("{\"tool\":\"bench-http\",\"connections\":%u,\"new_connection_each\":%s,\"tls\":%s,"
	       "\"requests\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"io_errors\":%" PRIu64 ","
	       "\"seconds\":%.3f,\"requests_per_s\":%.0f,\"ok_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
	       "\"connects\":%" PRIu64 ",\"handshakes\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"handshakes_per_s\":%.0f,"
	       "\"handshake_p50_ms\":%.3f,\"handshake_p99_ms\":%.3f}\n",
	       opt.conns, opt.new_conn ? "true" : "false", opt.tls ? "true" : "false", t.requests, t.ok,
	       t.failed, t.io_errors, secs, (double)t.requests / secs, (double)t.ok / secs,
	       hist_q(t.hist, 0.5), hist_q(t.hist, 0.99), t.connects, t.handshakes,
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
