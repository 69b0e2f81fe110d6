#include "js_http.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "fsutil.h"
#include "js_jwt.h"
#include "json_out.h"
#include "jsonl.h"
#include "log.h"

#define MAX_BODY (64 * 1024)
#define CONNECTION_LIMIT 4096
#define POOL_SIZE (8 * 1024) /* per connection: request line, headers, read and write buffers */
#define VCACHE 64      /* client certificate chains known good, per server generation */
#define VCACHE_TTL 300 /* seconds, or less when a certificate expires sooner */

/* ---- the client-CA map ---- */

struct ca_entry {
	char *id;
	gnutls_x509_trust_list_t tl;
};

struct js_ca_map {
	struct ca_entry *v;
	size_t n;
	char *pem; /* every CA, concatenated */
	size_t pem_len;
};

void js_ca_map_free(struct js_ca_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].id);
		gnutls_x509_trust_list_deinit(m->v[i].tl, 1);
	}
	free(m->v);
	free(m->pem);
	free(m);
}

char *js_ca_map_pem(const struct js_ca_map *m, size_t *len)
{
	char *p = malloc(m->pem_len + 1);
	if (!p)
		return NULL;
	if (m->pem_len)
		memcpy(p, m->pem, m->pem_len);
	p[m->pem_len] = 0;
	*len = m->pem_len;
	return p;
}

static int ca_add(struct js_ca_map *m, const char *dir, const char *id, const char *file, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int pn = file[0] == '/' ? snprintf(path, sizeof path, "%s", file)
	                        : snprintf(path, sizeof path, "%s/%s", dir, file);
	if (pn < 0 || (size_t)pn >= sizeof path) {
		snprintf(err, errlen, "CA file name of %s too long", id);
		return -1;
	}
	char *pem;
	size_t len;
	if (fs_read_file(path, &pem, &len, 1 << 20) != 0) {
		snprintf(err, errlen, "unable to read %s (CA of %s): %s", path, id, strerror(errno));
		return -1;
	}
	gnutls_x509_trust_list_t tl;
	gnutls_datum_t d = {.data = (unsigned char *)pem, .size = (unsigned)len};
	gnutls_x509_trust_list_init(&tl, 0);
	int n = gnutls_x509_trust_list_add_trust_mem(tl, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (n <= 0) {
		gnutls_x509_trust_list_deinit(tl, 1);
		free(pem);
		snprintf(err, errlen, "%s (CA of %s): no certificate in it", path, id);
		return -1;
	}
	m->v = realloc(m->v, (m->n + 1) * sizeof *m->v);
	m->v[m->n].id = strdup(id);
	m->v[m->n].tl = tl;
	m->n++;
	m->pem = realloc(m->pem, m->pem_len + len + 2);
	memcpy(m->pem + m->pem_len, pem, len);
	m->pem_len += len;
	if (len && pem[len - 1] != '\n')
		m->pem[m->pem_len++] = '\n';
	free(pem);
	return 0;
}

struct js_ca_map *js_ca_map_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "unable to open %s: %s", path, strerror(errno));
		return NULL;
	}
	char dir[PATH_MAX];
	fs_dir_of(path, dir, sizeof dir);
	struct js_ca_map *m = calloc(1, sizeof *m);
	yaml_parser_t p;
	yaml_event_t ev;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	int depth = 0, ok = 0;
	char *key = NULL;
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			snprintf(err, errlen, "%s:%zu: %s", path, p.problem_mark.line + 1, p.problem ? p.problem : "bad YAML");
			break;
		}
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			ok = 1;
			break;
		}
		if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
			depth++;
			if (depth > 1 || t == YAML_SEQUENCE_START_EVENT) {
				snprintf(err, errlen, "%s:%zu: expected \"sender: ca-file.pem\" lines", path,
				         ev.start_mark.line + 1);
				yaml_event_delete(&ev);
				break;
			}
		} else if (t == YAML_MAPPING_END_EVENT) {
			depth--;
		} else if (t == YAML_SCALAR_EVENT && depth == 1) {
			const char *v = (const char *)ev.data.scalar.value;
			if (!key) {
				key = strdup(v);
			} else {
				int rc = ca_add(m, dir, key, v, err, errlen);
				free(key);
				key = NULL;
				if (rc != 0) {
					yaml_event_delete(&ev);
					break;
				}
			}
		}
		yaml_event_delete(&ev);
	}
	free(key);
	yaml_parser_delete(&p);
	fclose(f);
	if (ok && m->n == 0) {
		/* a scalar or an empty file: no client could ever connect */
		snprintf(err, errlen, "%s: names no sender (expected \"sender: ca-file.pem\" lines)", path);
		ok = 0;
	}
	if (!ok) {
		js_ca_map_free(m);
		return NULL;
	}
	return m;
}

static gnutls_x509_trust_list_t ca_find(const struct js_ca_map *m, const char *id)
{
	for (size_t i = 0; m && i < m->n; i++)
		if (strcasecmp(m->v[i].id, id) == 0)
			return m->v[i].tl;
	return NULL;
}

/* ---- one server generation: an MHD daemon with its credentials ---- */

struct gen {
	struct js_http *h;
	struct MHD_Daemon *d;
	int fd; /* its own dup of the listening socket */
	char *cert, *key, *trust;
	struct js_ca_map *cas;
	time_t retired;
	struct gen *next;
	/* chains verified lately, by SHA-256 of sender and certificates: a client that connects
	 * again with the same chain costs no signature check (its handshake still proves the key) */
	pthread_mutex_t vmu;
	struct {
		uint8_t key[32];
		time_t until;
	} vc[VCACHE];
	unsigned vc_next;
	/* MHD_stop_daemon must not find a suspended connection: it waits for held == 0 */
	pthread_mutex_t mu;
	pthread_cond_t idle;
	unsigned held; /* requests that may be (or are) suspended, awaiting their commit */
	bool stopping;
};

struct js_http {
	struct js_server *srv;
	struct js_http_opts o;
	int lfd;
	struct gen *cur, *old;
	struct js_jwt *jwt;
	gnutls_datum_t ticket_key; /* TLS session tickets: clients may resume */
};

struct body {
	char *buf;
	size_t len;
	bool too_big;
	/* a JoinReq waiting for its record to be on disk, the connection suspended meanwhile */
	struct gen *g;
	struct MHD_Connection *c;
	struct js_pending *pend;
	pthread_mutex_t mu; /* ready, suspended: the handler against the state writer's wake */
	bool ready, suspended;
};

/* Per TLS connection: the sender last authorized, so keep-alive requests skip re-verifying. */
struct conn_ctx {
	char sender[64];
	bool requested; /* a request came: a TLS connection closed without one counts as a failure */
};

struct auth_ctx {
	struct gen *g;
	struct MHD_Connection *c;
	struct conn_ctx *cc;
	int jwt; /* 1: valid token, -1: bad token, 0: none */
	char jwt_err[160];
};

/* 0 when the peer's chain holds in tl, with *expires the first expiry in it. */
static int verify_chain(const gnutls_datum_t *raw, unsigned n, gnutls_x509_trust_list_t tl, time_t *expires,
                        char *err, size_t errlen)
{
	if (n > 16)
		n = 16;
	gnutls_x509_crt_t crts[16];
	unsigned k = 0;
	int rc = -1;
	for (; k < n; k++) {
		gnutls_x509_crt_init(&crts[k]);
		if (gnutls_x509_crt_import(crts[k], &raw[k], GNUTLS_X509_FMT_DER) < 0) {
			snprintf(err, errlen, "unreadable client certificate");
			k++;
			goto out;
		}
	}
	unsigned status = 0;
	*expires = (time_t)-1;
	for (unsigned i = 0; i < n; i++) {
		time_t t = gnutls_x509_crt_get_expiration_time(crts[i]);
		if (t != (time_t)-1 && (*expires == (time_t)-1 || t < *expires))
			*expires = t;
	}
	if (gnutls_x509_trust_list_verify_crt2(tl, crts, n, NULL, 0, 0, &status, NULL) < 0 || status != 0) {
		gnutls_datum_t txt = {0};
		if (status && gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0) == 0) {
			snprintf(err, errlen, "client certificate rejected: %.*s", (int)strcspn((char *)txt.data, "\n") , txt.data);
			gnutls_free(txt.data);
		} else {
			snprintf(err, errlen, "client certificate rejected");
		}
		goto out;
	}
	rc = 0;
out:
	for (unsigned i = 0; i < k; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return rc;
}

static int verify_cached(struct gen *g, gnutls_session_t s, const char *sender, gnutls_x509_trust_list_t tl,
                         char *err, size_t errlen)
{
	unsigned n = 0;
	const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &n);
	if (!raw || n == 0) {
		snprintf(err, errlen, "no client certificate");
		return -1;
	}
	uint8_t key[32];
	gnutls_hash_hd_t hh;
	bool keyed = gnutls_hash_init(&hh, GNUTLS_DIG_SHA256) == 0;
	if (keyed) {
		gnutls_hash(hh, sender, strlen(sender) + 1);
		for (unsigned i = 0; i < n; i++) {
			uint32_t len = raw[i].size;
			gnutls_hash(hh, &len, sizeof len);
			gnutls_hash(hh, raw[i].data, raw[i].size);
		}
		gnutls_hash_deinit(hh, key);
	}
	time_t now = time(NULL), expires;
	bool hit = false;
	if (keyed) {
		pthread_mutex_lock(&g->vmu);
		for (unsigned i = 0; i < VCACHE && !hit; i++)
			hit = g->vc[i].until > now && memcmp(g->vc[i].key, key, sizeof key) == 0;
		pthread_mutex_unlock(&g->vmu);
	}
	if (hit)
		return 0;
	if (verify_chain(raw, n, tl, &expires, err, errlen) != 0)
		return -1;
	if (keyed) {
		pthread_mutex_lock(&g->vmu);
		unsigned i = g->vc_next++ % VCACHE;
		memcpy(g->vc[i].key, key, sizeof key);
		g->vc[i].until = expires != (time_t)-1 && expires < now + VCACHE_TTL ? expires : now + VCACHE_TTL;
		pthread_mutex_unlock(&g->vmu);
	}
	return 0;
}

static int authorize(void *ctx, const char *sender, char *err, size_t errlen)
{
	struct auth_ctx *a = ctx;
	if (a->jwt) {
		if (a->jwt < 0) {
			snprintf(err, errlen, "bearer token rejected: %s", a->jwt_err);
			return -1;
		}
		if (strcmp(sender, "000000") != 0) {
			snprintf(err, errlen, "a Packet Broker token speaks for NetID 000000, not %s", sender);
			return -1;
		}
		return 0;
	}
	if (a->g->h->o.tls != JS_TLS_MUTUAL)
		return 0;
	if (a->cc && strcasecmp(a->cc->sender, sender) == 0)
		return 0;
	gnutls_x509_trust_list_t tl = ca_find(a->g->cas, sender);
	if (!tl) {
		snprintf(err, errlen, "no CA configured for sender %s", sender);
		return -1;
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(a->c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session) {
		snprintf(err, errlen, "not a TLS connection");
		return -1;
	}
	if (verify_cached(a->g, (gnutls_session_t)ci->tls_session, sender, tl, err, errlen) != 0)
		return -1;
	if (a->cc && strlen(sender) < sizeof a->cc->sender)
		strcpy(a->cc->sender, sender);
	return 0;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *type, const char *text,
                               size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static bool gen_hold(struct gen *g)
{
	pthread_mutex_lock(&g->mu);
	bool ok = !g->stopping;
	if (ok)
		g->held++;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

static void gen_release(struct gen *g)
{
	pthread_mutex_lock(&g->mu);
	if (--g->held == 0 && g->stopping)
		pthread_cond_broadcast(&g->idle);
	pthread_mutex_unlock(&g->mu);
}

/* A state writer thread: the join's record is on disk (or failed); resume its connection. */
static void on_stored(void *arg)
{
	struct body *b = arg;
	struct gen *g = b->g;
	pthread_mutex_lock(&b->mu);
	b->ready = true;
	bool resume = b->suspended;
	if (resume)
		MHD_resume_connection(b->c);
	pthread_mutex_unlock(&b->mu);
	if (resume)
		gen_release(g); /* b may be gone from here on */
}

static enum MHD_Result answer(struct MHD_Connection *c, struct jbuf *ans)
{
	enum MHD_Result rc;
	if (ans->failed) {
		static const char m[] = "out of memory\n";
		rc = respond(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", m, sizeof m - 1);
	} else {
		rc = respond(c, MHD_HTTP_OK, "application/json", ans->p, ans->len);
	}
	if (!ans->borrowed)
		free(ans->p);
	return rc;
}

static enum MHD_Result answer_pending(struct body *b)
{
	struct jbuf ans;
	js_server_finish(b->pend, &ans);
	b->pend = NULL;
	return answer(b->c, &ans);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct gen *g = cls;
	struct body *b = *con_cls;
	(void)url;
	(void)version;
	if (!b) {
		b = calloc(1, sizeof *b);
		if (!b)
			return MHD_NO;
		pthread_mutex_init(&b->mu, NULL);
		*con_cls = b;
		const union MHD_ConnectionInfo *sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (sc && sc->socket_context)
			((struct conn_ctx *)sc->socket_context)->requested = true;
		return MHD_YES;
	}
	if (b->pend) { /* resumed: the record is on disk, or could not be stored */
		pthread_mutex_lock(&b->mu); /* on_stored is done with b once it lets go */
		pthread_mutex_unlock(&b->mu);
		return answer_pending(b);
	}
	if (*upload_size) {
		if (!b->too_big) {
			if (b->len + *upload_size > MAX_BODY) {
				b->too_big = true;
			} else {
				char *nb = realloc(b->buf, b->len + *upload_size + 1);
				if (!nb)
					return MHD_NO;
				b->buf = nb;
				memcpy(b->buf + b->len, upload, *upload_size);
				b->len += *upload_size;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0) {
		static const char m[] = "POST a Backend Interfaces message\n";
		return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", m, sizeof m - 1);
	}
	if (b->too_big) {
		static const char m[] = "body too large\n";
		return respond(c, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain", m, sizeof m - 1);
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct auth_ctx a = {.g = g, .c = c, .cc = ci ? ci->socket_context : NULL};
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (g->h->jwt && auth && strncasecmp(auth, "Bearer ", 7) == 0)
		a.jwt = js_jwt_verify(g->h->jwt, auth + 7, a.jwt_err, sizeof a.jwt_err) == 0 ? 1 : -1;
	struct js_peer peer = {.authorize = authorize, .ctx = &a};
	char empty[1] = "", stack[1024];
	char *text = b->buf ? b->buf : empty;
	struct jbuf ans = {.p = stack, .cap = sizeof stack, .borrowed = 1};
	bool ok;
	int rc;
	if (!gen_hold(g)) { /* this server is being stopped: wait here, never suspended */
		rc = js_server_answer(g->h->srv, text, b->len, &peer, &ans, &ok);
	} else {
		b->g = g;
		b->c = c;
		rc = js_server_answer_async(g->h->srv, text, b->len, &peer, on_stored, b, &b->pend, &ans, &ok);
		if (rc == 1) {
			/* the state writer wakes this connection once the join is stored */
			pthread_mutex_lock(&b->mu);
			bool ready = b->ready;
			if (!ready) {
				MHD_suspend_connection(c);
				b->suspended = true;
			}
			pthread_mutex_unlock(&b->mu);
			if (!ready)
				return MHD_YES;
			gen_release(g);
			return answer_pending(b);
		}
		gen_release(g);
	}
	if (rc < 0) {
		char m[300];
		int n = snprintf(m, sizeof m, "%.*s\n", (int)(ans.len < 280 ? ans.len : 280), ans.p ? ans.p : "");
		if (!ans.borrowed)
			free(ans.p);
		log_debug("HTTP 400: %s", m);
		js_stats_count(&g->h->srv->stats.http_errors);
		return respond(c, MHD_HTTP_BAD_REQUEST, "text/plain", m, (size_t)n < sizeof m ? (size_t)n : sizeof m - 1);
	}
	return answer(c, &ans);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)c;
	(void)t;
	struct body *b = *con_cls;
	if (b) {
		if (b->pend) { /* closed while its answer was on its way (the daemon stopping) */
			struct jbuf ans;
			js_server_finish(b->pend, &ans);
			free(ans.p);
		}
		pthread_mutex_destroy(&b->mu);
		free(b->buf);
		free(b);
		*con_cls = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct gen *g = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct conn_ctx));
		/* before the handshake: offer session tickets, so a client may resume */
		const union MHD_ConnectionInfo *ci =
			g->h->ticket_key.data ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION) : NULL;
		if (ci && ci->tls_session &&
		    gnutls_session_ticket_enable_server((gnutls_session_t)ci->tls_session, &g->h->ticket_key) < 0)
			log_debug("unable to offer a TLS session ticket");
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct conn_ctx *cc = *socket_context;
		if (g->h->o.tls != JS_TLS_NONE && cc && !cc->requested)
			js_stats_count(&g->h->srv->stats.tls_failures);
		free(*socket_context);
		*socket_context = NULL;
	}
}

/* No request may be suspended from now on; wait until none is. */
static void gen_drain(struct gen *g)
{
	pthread_mutex_lock(&g->mu);
	g->stopping = true;
	while (g->held)
		pthread_cond_wait(&g->idle, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gen_free(struct gen *g)
{
	if (!g)
		return;
	gen_drain(g);
	if (g->d) {
		MHD_socket fd = MHD_quiesce_daemon(g->d);
		MHD_stop_daemon(g->d);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	} else if (g->fd >= 0) {
		close(g->fd);
	}
	free(g->cert);
	free(g->key);
	free(g->trust);
	js_ca_map_free(g->cas);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->idle);
	pthread_mutex_destroy(&g->vmu);
	free(g);
}

static struct gen *gen_start(struct js_http *h, char *err, size_t errlen)
{
	struct gen *g = calloc(1, sizeof *g);
	size_t len;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->idle, NULL);
	pthread_mutex_init(&g->vmu, NULL);
	g->h = h;
	g->fd = dup(h->lfd);
	if (g->fd < 0) {
		snprintf(err, errlen, "unable to dup the listening socket: %s", strerror(errno));
		goto fail;
	}
	/* a few event threads (epoll) instead of one per connection; a JoinReq waiting for its commit
	 * is suspended, not a blocked thread */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
	if (h->o.tls != JS_TLS_NONE) {
		flags |= MHD_USE_TLS;
		if (fs_read_file(h->o.cert, &g->cert, &len, 1 << 20) != 0) {
			snprintf(err, errlen, "unable to read %s: %s", h->o.cert, strerror(errno));
			goto fail;
		}
		if (fs_read_file(h->o.key, &g->key, &len, 1 << 20) != 0) {
			snprintf(err, errlen, "unable to read %s: %s", h->o.key, strerror(errno));
			goto fail;
		}
	}
	if (h->o.tls == JS_TLS_MUTUAL) {
		g->cas = js_ca_map_load(h->o.client_cas, err, errlen);
		if (!g->cas)
			goto fail;
		g->trust = js_ca_map_pem(g->cas, &len);
	}
	struct MHD_OptionItem opts[16];
	int n = 0;
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, g->fd, NULL};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = h->o.threads ? h->o.threads : ncpu > 0 ? (unsigned)ncpu : 1;
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, g};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_STACK_SIZE, 256 * 1024, NULL};
	/* libmicrohttpd zeroes a connection's whole memory pool after every request (48 KiB of memset
	 * a request with the default 32 KiB pool, more than all our own work): headers and the read
	 * buffer fit in far less; the body goes into our own buffer */
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, POOL_SIZE, NULL};
	if (g->cert) {
		/* X25519 first: the cheapest key exchange, so more handshakes per core; AES-128-GCM first:
		 * SHA-256 for the TLS 1.3 key schedule instead of SHA-384 */
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
		                                    "NORMAL:%SERVER_PRECEDENCE:-CIPHER-ALL:+AES-128-GCM:"
		                                    "+CHACHA20-POLY1305:+AES-256-GCM:+AES-128-CCM:+AES-256-CCM:"
		                                    "+AES-128-CBC:+AES-256-CBC:-GROUP-ALL:+GROUP-X25519:"
		                                    "+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-X448"};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, g->cert};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, g->key};
	}
	if (g->trust && *g->trust)
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, g->trust};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	g->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, g, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!g->d) {
		snprintf(err, errlen, "unable to start the HTTP server (certificate or key unusable?)");
		goto fail;
	}
	return g;
fail:
	gen_free(g);
	return NULL;
}

static int listen_on(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (!colon || !colon[1]) {
		snprintf(err, errlen, "--listen: expected ADDR:PORT, not %s", spec);
		return -1;
	}
	size_t hl = (size_t)(colon - spec);
	if (hl >= sizeof host)
		hl = sizeof host - 1;
	memcpy(host, spec, hl);
	host[hl] = 0;
	char *h = host;
	if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	int e = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &res);
	if (e) {
		snprintf(err, errlen, "--listen %s: %s", spec, gai_strerror(e));
		return -1;
	}
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		snprintf(err, errlen, "unable to listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct js_http *js_http_start(struct js_server *srv, const struct js_http_opts *o, char *err, size_t errlen)
{
	struct js_http *h = calloc(1, sizeof *h);
	h->srv = srv;
	h->o = *o;
	if (o->jwt_issuer) {
		h->jwt = js_jwt_new(o->jwt_issuer, o->jwt_audience, o->jwks, err, errlen);
		if (!h->jwt)
			goto fail;
	}
	if (o->tls != JS_TLS_NONE && gnutls_session_ticket_key_generate(&h->ticket_key) < 0) {
		snprintf(err, errlen, "unable to make a TLS session ticket key");
		goto fail;
	}
	h->lfd = listen_on(o->listen, err, errlen);
	if (h->lfd < 0)
		goto fail;
	h->cur = gen_start(h, err, errlen);
	if (!h->cur)
		goto fail;
	return h;
fail:
	if (h->lfd > 0)
		close(h->lfd);
	js_jwt_free(h->jwt);
	if (h->ticket_key.data) {
		gnutls_memset(h->ticket_key.data, 0, h->ticket_key.size);
		gnutls_free(h->ticket_key.data);
	}
	free(h);
	return NULL;
}

int js_http_reload(struct js_http *h, char *err, size_t errlen)
{
	if (h->jwt)
		js_jwt_reload(h->jwt);
	if (h->o.tls == JS_TLS_NONE)
		return 0;
	/* check the new files before touching the running server */
	char *probe;
	size_t len;
	if (fs_read_file(h->o.cert, &probe, &len, 1 << 20) != 0) {
		snprintf(err, errlen, "unable to read %s: %s", h->o.cert, strerror(errno));
		return -1;
	}
	free(probe);
	if (h->o.tls == JS_TLS_MUTUAL) {
		struct js_ca_map *m = js_ca_map_load(h->o.client_cas, err, errlen);
		if (!m)
			return -1;
		js_ca_map_free(m);
	}
	/* a new daemon on the same socket; then the old one stops accepting and drains */
	struct gen *g = gen_start(h, err, errlen);
	if (!g)
		return -1;
	MHD_socket ofd = MHD_quiesce_daemon(h->cur->d);
	if (ofd != MHD_INVALID_SOCKET)
		close(ofd);
	h->cur->fd = -1;
	h->cur->retired = time(NULL);
	h->cur->next = h->old;
	h->old = h->cur;
	h->cur = g;
	return 0;
}

void js_http_tick(struct js_http *h)
{
	struct gen **pp = &h->old;
	while (*pp) {
		struct gen *g = *pp;
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(g->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if ((di && di->num_connections == 0) || time(NULL) - g->retired > 30) {
			*pp = g->next;
			gen_drain(g);
			MHD_stop_daemon(g->d);
			g->d = NULL;
			gen_free(g);
		} else {
			pp = &g->next;
		}
	}
}

void js_http_stop(struct js_http *h)
{
	if (!h)
		return;
	while (h->old) {
		struct gen *g = h->old;
		h->old = g->next;
		gen_free(g);
	}
	gen_free(h->cur);
	close(h->lfd);
	js_jwt_free(h->jwt);
	if (h->ticket_key.data) {
		gnutls_memset(h->ticket_key.data, 0, h->ticket_key.size);
		gnutls_free(h->ticket_key.data);
	}
	free(h);
}
