#define _GNU_SOURCE
#include "js_cryptod.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmdutil.h"
#include "fsutil.h"
#include "hex.h"
#include "js_devices.h"
#include "json_out.h"
#include "jsonl.h"
#include "linereader.h"
#include "log.h"
#include "outq.h"
#include "lorawan_crypto.h"
#include "lorawan_frame.h"

struct js_crypto {
	bool remote;
	/* local */
	js_root_key_fn lookup;
	void *ctx;
	pthread_rwlock_t lk;
	/* remote: requests are pipelined; a reader thread hands each answer to its caller by id,
	 * and starts the co-process again when it ends, sending it the requests still unanswered */
	char *cmd;
	pthread_mutex_t wmu; /* writing requests; (re)starting the co-process; pid, fds */
	pthread_mutex_t mu;  /* the fields below */
	pid_t pid;
	int in_fd, out_fd; /* we write requests to out_fd, read answers from in_fd */
	struct outq oq;    /* requests out_fd did not take yet (it never blocks): the reader sends them */
	struct linereader lr;
	unsigned long next_id;
	struct pending *head, *tail; /* in the order sent */
	bool alive, stopping, reader_started;
	pthread_t reader;
};

typedef void (*answer_fn)(void *arg, jv ans, const char *err);

struct pending {
	unsigned long id;
	char *line; /* the request with its id and newline, to send again after a restart */
	size_t len;
	int sent;
	time_t deadline;
	answer_fn cb;
	void *arg;
	struct pending *prev, *next;
};

#define ANSWER_TIMEOUT 30 /* seconds */
#define RESEND_MAX 1024   /* unanswered requests sent again to a restarted co-process */

/* ---- the crypto itself, over root keys in this process ---- */

static int core_check_mic(const struct js_root_keys *rk, const struct js_join_in *in)
{
	uint8_t mic[4];
	lw_join_request_mic(in->mac >= LW_MAC_1_1 ? rk->nwk_key : rk->app_key, in->phy, mic);
	return lw_mem_equal(mic, in->phy + 19, 4) ? JS_CRYPTO_OK : JS_CRYPTO_MIC;
}

static void core_derive(const struct js_root_keys *rk, const struct js_join_in *in,
                        struct js_session_keys *k)
{
	memset(k, 0, sizeof *k);
	if (in->mac >= LW_MAC_1_1 && (in->dl_settings & 0x80)) {
		k->v11 = true;
		lw_derive_skey(rk->nwk_key, LW_KT_NWKSKEY, in->join_nonce, in->join_eui, in->dev_nonce, k->nwk_s_key);
		lw_derive_skey(rk->nwk_key, LW_KT_SNWKSINTKEY, in->join_nonce, in->join_eui, in->dev_nonce,
		               k->s_nwk_s_int_key);
		lw_derive_skey(rk->nwk_key, LW_KT_NWKSENCKEY, in->join_nonce, in->join_eui, in->dev_nonce,
		               k->nwk_s_enc_key);
		lw_derive_skey(rk->app_key, LW_KT_APPSKEY, in->join_nonce, in->join_eui, in->dev_nonce, k->app_s_key);
	} else {
		/* 1.0.x, and a 1.1 device joining a 1.0 network: everything from the NwkKey then */
		const uint8_t *key = in->mac >= LW_MAC_1_1 ? rk->nwk_key : rk->app_key;
		lw_derive_legacy(key, LW_KT_NWKSKEY, in->join_nonce, in->net_id, in->dev_nonce, k->nwk_s_key);
		lw_derive_legacy(key, LW_KT_APPSKEY, in->join_nonce, in->net_id, in->dev_nonce, k->app_s_key);
	}
}

static void core_join_accept(const struct js_root_keys *rk, const struct js_join_in *in,
                             struct js_session_keys *k, uint8_t *phy, size_t *phy_len)
{
	struct lw_join_accept ja = {.join_nonce = in->join_nonce, .net_id = in->net_id, .dev_addr = in->dev_addr,
	                            .dl_settings = in->dl_settings, .rx_delay = in->rx_delay,
	                            .has_cflist = in->has_cflist};
	uint8_t msg[33];
	memcpy(ja.cflist, in->cflist, 16);
	size_t n = lw_join_accept_layout(&ja, msg);
	core_derive(rk, in, k);
	const uint8_t *enc_key;
	if (k->v11) {
		uint8_t js_int[16];
		lw_derive_js_key(rk->nwk_key, LW_KT_JSINTKEY, in->dev_eui, js_int);
		lw_join_accept_mic_11(js_int, in->join_req_type, in->join_eui, in->dev_nonce, msg, n, msg + n);
		lw_wipe(js_int, sizeof js_int);
		enc_key = rk->nwk_key;
	} else {
		enc_key = in->mac >= LW_MAC_1_1 ? rk->nwk_key : rk->app_key;
		lw_join_accept_mic_legacy(enc_key, msg, n, msg + n);
	}
	phy[0] = msg[0];
	lw_join_accept_encrypt(enc_key, msg + 1, n + 3, phy + 1);
	*phy_len = n + 4;
}

static int local_lookup(struct js_crypto *c, const struct js_join_in *in, struct js_root_keys *rk,
                        char *err, size_t errlen)
{
	uint8_t d[8], j[8];
	js_put_be64(d, in->dev_eui);
	js_put_be64(j, in->join_eui);
	pthread_rwlock_rdlock(&c->lk);
	int rc = c->lookup ? c->lookup(c->ctx, d, j, rk, err, errlen) : -1;
	pthread_rwlock_unlock(&c->lk);
	if (rc != 0 && !c->lookup)
		snprintf(err, errlen, "no root keys configured");
	return rc == 0 ? 0 : -1;
}

/* ---- the JSON-lines protocol ---- */

static void put_hex(jv *o, const char *key, const uint8_t *b, size_t n)
{
	char h[2 * 64 + 1];
	hex_encode(b, n, h);
	*o = jv_object_set(*o, jv_string(key), jv_string(h));
}

/* "key":"HEX", after a comma unless it opens an object */
static void text_hex(struct jbuf *b, const char *key, const uint8_t *v, size_t n)
{
	char h[2 * 64 + 1];
	if (n > 64)
		n = 64;
	hex_encode(v, n, h);
	if (b->len && b->p[b->len - 1] != '{')
		JBUF_LIT(b, ",");
	JBUF_LIT(b, "\"");
	jbuf_add(b, key, strlen(key));
	JBUF_LIT(b, "\":\"");
	jbuf_add(b, h, 2 * n);
	JBUF_LIT(b, "\"");
}

static void text_hex_uint(struct jbuf *b, const char *key, uint64_t v, size_t n)
{
	uint8_t d[8];
	for (size_t i = 0; i < n; i++)
		d[n - 1 - i] = (uint8_t)(v >> (8 * i));
	text_hex(b, key, d, n);
}

/* A request's text without its closing brace (remote_call_async adds the id), written straight:
 * building it as a jq object and printing that cost ~40k instructions a join. */
static void request_text(struct jbuf *b, const char *op, const struct js_join_in *in, bool accept)
{
	JBUF_LIT(b, "{\"op\":\"");
	jbuf_add(b, op, strlen(op));
	JBUF_LIT(b, "\"");
	text_hex_uint(b, "DevEUI", in->dev_eui, 8);
	text_hex_uint(b, "JoinEUI", in->join_eui, 8);
	const char *mac = lw_mac_name(in->mac); /* "1.0.3" and the like: nothing to escape */
	JBUF_LIT(b, ",\"MACVersion\":\"");
	jbuf_add(b, mac, strlen(mac));
	JBUF_LIT(b, "\"");
	if (strcmp(op, "check-mic") == 0) {
		text_hex(b, "PHYPayload", in->phy, 23);
		return;
	}
	text_hex_uint(b, "DevNonce", in->dev_nonce, 2);
	text_hex_uint(b, "JoinNonce", in->join_nonce, 3);
	text_hex_uint(b, "NetID", in->net_id, 3);
	text_hex_uint(b, "DLSettings", in->dl_settings, 1);
	if (accept) {
		char rx[24];
		text_hex_uint(b, "DevAddr", in->dev_addr, 4);
		int n = snprintf(rx, sizeof rx, ",\"RxDelay\":%u", (unsigned)in->rx_delay);
		jbuf_add(b, rx, (size_t)n);
		if (in->has_cflist)
			text_hex(b, "CFList", in->cflist, 16);
		text_hex_uint(b, "JoinReqType", in->join_req_type, 1);
	}
}

static int get_hex_uint(jv o, const char *key, size_t n, uint64_t *v, char *err, size_t errlen)
{
	if (js_hex_uint(jl_str(o, key), n, v) != 0) {
		snprintf(err, errlen, "%s: missing or not %zu bytes of hex", key, n);
		return -1;
	}
	return 0;
}

/* The fields of a request into *in; 0, or -1 with a reason. */
static int parse_request(jv o, const char *op, struct js_join_in *in, char *err, size_t errlen)
{
	uint64_t v;
	memset(in, 0, sizeof *in);
	in->join_req_type = 0xFF;
	if (get_hex_uint(o, "DevEUI", 8, &in->dev_eui, err, errlen) ||
	    get_hex_uint(o, "JoinEUI", 8, &in->join_eui, err, errlen))
		return -1;
	if (strcmp(op, "root-keys") == 0)
		return 0;
	in->mac = lw_mac_parse(jl_str(o, "MACVersion"));
	if (in->mac < 0) {
		snprintf(err, errlen, "MACVersion: missing or unknown");
		return -1;
	}
	if (strcmp(op, "check-mic") == 0) {
		if (hex_decode_exact(jl_str(o, "PHYPayload") ? jl_str(o, "PHYPayload") : "", in->phy, 23) != 0) {
			snprintf(err, errlen, "PHYPayload: missing or not a 23-byte join-request");
			return -1;
		}
		return 0;
	}
	if (strcmp(op, "join") == 0 &&
	    hex_decode_exact(jl_str(o, "JoinRequest") ? jl_str(o, "JoinRequest") : "", in->phy, 23) != 0) {
		snprintf(err, errlen, "JoinRequest: missing or not a 23-byte join-request");
		return -1;
	}
	if (get_hex_uint(o, "DevNonce", 2, &v, err, errlen))
		return -1;
	in->dev_nonce = (uint16_t)v;
	if (get_hex_uint(o, "JoinNonce", 3, &v, err, errlen))
		return -1;
	in->join_nonce = (uint32_t)v;
	if (get_hex_uint(o, "NetID", 3, &v, err, errlen))
		return -1;
	in->net_id = (uint32_t)v;
	if (get_hex_uint(o, "DLSettings", 1, &v, err, errlen))
		return -1;
	in->dl_settings = (uint8_t)v;
	if (strcmp(op, "join") == 0) {
		struct lw_join_request jr;
		if (lw_parse_join_request(in->phy, 23, &jr, err, errlen) != 0)
			return -1;
		if (jr.dev_eui != in->dev_eui || jr.join_eui != in->join_eui || jr.dev_nonce != in->dev_nonce) {
			snprintf(err, errlen, "JoinRequest: DevEUI, JoinEUI or DevNonce differ from the request's");
			return -1;
		}
	} else if (strcmp(op, "join-accept") != 0) {
		return 0;
	}
	if (get_hex_uint(o, "DevAddr", 4, &v, err, errlen))
		return -1;
	in->dev_addr = (uint32_t)v;
	double rx = jl_num(o, "RxDelay", -1);
	if (rx < 0 || rx > 15 || rx != (int)rx) {
		snprintf(err, errlen, "RxDelay: missing or not 0..15");
		return -1;
	}
	in->rx_delay = (uint8_t)rx;
	const char *cf = jl_str(o, "CFList");
	if (cf && *cf && strcmp(cf, "0x") != 0) {
		if (hex_decode_exact(cf, in->cflist, 16) != 0) {
			snprintf(err, errlen, "CFList: not 16 bytes of hex");
			return -1;
		}
		in->has_cflist = true;
	}
	if (jl_str(o, "JoinReqType")) {
		if (get_hex_uint(o, "JoinReqType", 1, &v, err, errlen))
			return -1;
		in->join_req_type = (uint8_t)v;
	}
	return 0;
}

static int get_keys(jv o, struct js_session_keys *k)
{
	jv keys = jl_get(o, "keys");
	int rc = -1;
	memset(k, 0, sizeof *k);
	if (jv_get_kind(keys) != JV_KIND_OBJECT)
		goto out;
	const char *f = jl_str(keys, "FNwkSIntKey");
	if (f) {
		k->v11 = true;
		if (hex_decode_exact(f, k->nwk_s_key, 16) || !jl_str(keys, "SNwkSIntKey") ||
		    hex_decode_exact(jl_str(keys, "SNwkSIntKey"), k->s_nwk_s_int_key, 16) ||
		    !jl_str(keys, "NwkSEncKey") || hex_decode_exact(jl_str(keys, "NwkSEncKey"), k->nwk_s_enc_key, 16))
			goto out;
	} else if (!jl_str(keys, "NwkSKey") || hex_decode_exact(jl_str(keys, "NwkSKey"), k->nwk_s_key, 16)) {
		goto out;
	}
	if (!jl_str(keys, "AppSKey") || hex_decode_exact(jl_str(keys, "AppSKey"), k->app_s_key, 16))
		goto out;
	rc = 0;
out:
	jv_free(keys);
	return rc;
}

static jv fail(jv id, const char *code, const char *msg)
{
	jv o = jv_object();
	o = jv_object_set(o, jv_string("id"), id);
	o = jv_object_set(o, jv_string("ok"), jv_false());
	o = jv_object_set(o, jv_string("code"), jv_string(code));
	return jv_object_set(o, jv_string("error"), jv_string(msg));
}

/* Answer one request line (the server's side): the answer, or invalid when it is written to out
 * already (the common answers, as text). */
static jv serve_one(const char *line, size_t len, unsigned long lineno, js_root_key_fn lookup, void *ctx,
                    bool expose, struct jbuf *out)
{
	char err[200];
	jv req = jsonl_parse_object(line, len);
	if (!jv_is_valid(req)) {
		jv msg = jv_invalid_get_msg(req);
		snprintf(err, sizeof err, "line %lu: %s", lineno,
		         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unreadable");
		jv_free(msg);
		log_warn("%s", err);
		return fail(jv_null(), "MalformedRequest", err);
	}
	jv id = jl_get(req, "id");
	if (!jv_is_valid(id)) {
		jv_free(id);
		id = jv_null();
	}
	const char *op = jl_str(req, "op");
	struct js_join_in in;
	jv ans;
	if (!op || (strcmp(op, "check-mic") && strcmp(op, "join-accept") && strcmp(op, "join") &&
	            strcmp(op, "derive-keys") && strcmp(op, "root-keys"))) {
		snprintf(err, sizeof err, "line %lu: unknown op \"%s\"", lineno, op ? op : "");
		ans = fail(id, "MalformedRequest", err);
		goto out;
	}
	if (parse_request(req, op, &in, err, sizeof err) != 0) {
		ans = fail(id, "MalformedRequest", err);
		goto out;
	}
	if (strcmp(op, "root-keys") == 0 && !expose) {
		log_warn("line %lu: refused a request for root keys", lineno);
		ans = fail(id, "Refused", "root keys never leave the crypto process");
		goto out;
	}
	struct js_root_keys rk;
	uint8_t d[8], j[8];
	js_put_be64(d, in.dev_eui);
	js_put_be64(j, in.join_eui);
	if (lookup(ctx, d, j, &rk, err, sizeof err) != 0) {
		ans = fail(id, "UnknownDevEUI", err);
		goto out;
	}
	ans = jv_object();
	ans = jv_object_set(ans, jv_string("id"), id);
	if (strcmp(op, "check-mic") == 0) {
		if (core_check_mic(&rk, &in) != JS_CRYPTO_OK) {
			jv i = jl_get(ans, "id"); /* ans holds id's only reference */
			jv_free(ans);
			ans = fail(i, "MICFailed", "MIC mismatch");
		} else {
			ans = jv_object_set(ans, jv_string("ok"), jv_true());
		}
	} else if (strcmp(op, "root-keys") == 0) {
		ans = jv_object_set(ans, jv_string("ok"), jv_true());
		put_hex(&ans, "AppKey", rk.app_key, 16);
		if (rk.has_nwk_key)
			put_hex(&ans, "NwkKey", rk.nwk_key, 16);
	} else if (strcmp(op, "join") == 0 && core_check_mic(&rk, &in) != JS_CRYPTO_OK) {
		jv i = jl_get(ans, "id"); /* ans holds id's only reference */
		jv_free(ans);
		ans = fail(i, "MICFailed", "MIC mismatch");
	} else {
		/* the answer's text straight into out, as json_out prints the object it replaces:
		 * {"id":..,"ok":true[,"PHYPayload":".."],"keys":{..}} */
		struct js_session_keys k;
		jv i = jl_get(ans, "id");
		jv_free(ans);
		ans = jv_invalid();
		JBUF_LIT(out, "{\"id\":");
		json_out_append(out, i);
		jv_free(i);
		JBUF_LIT(out, ",\"ok\":true");
		if (strcmp(op, "join-accept") == 0 || strcmp(op, "join") == 0) {
			uint8_t phy[LW_JOIN_ACCEPT_MAX];
			size_t n;
			core_join_accept(&rk, &in, &k, phy, &n);
			text_hex(out, "PHYPayload", phy, n);
		} else {
			core_derive(&rk, &in, &k);
		}
		JBUF_LIT(out, ",\"keys\":{");
		if (k.v11) {
			text_hex(out, "FNwkSIntKey", k.nwk_s_key, 16);
			text_hex(out, "SNwkSIntKey", k.s_nwk_s_int_key, 16);
			text_hex(out, "NwkSEncKey", k.nwk_s_enc_key, 16);
		} else {
			text_hex(out, "NwkSKey", k.nwk_s_key, 16);
		}
		text_hex(out, "AppSKey", k.app_s_key, 16);
		JBUF_LIT(out, "}}\n");
		lw_wipe(&k, sizeof k);
	}
	lw_wipe(&rk, sizeof rk);
	jv_free(req);
	return ans;
out:
	jv_free(req);
	return ans;
}

int js_cryptod_serve(int in_fd, int out_fd, js_root_key_fn lookup, void *ctx, bool expose_root_keys,
                     const sigset_t *unblocked)
{
	struct linereader r;
	lr_init(&r, in_fd, 64 * 1024);
	char *line;
	size_t len;
	int rc = 0;
	/* the answers to every request already read go out in one write */
	struct jbuf out = {0};
	for (;;) {
		int k = lr_next(&r, &line, &len);
		if (k == LR_NEED_MORE) {
			size_t olen = out.len;
			if (out.failed)
				die(EXIT_TEMPORARY, "out of memory");
			if (olen && fs_write_all(out_fd, out.p, olen) != 0) {
				log_error("unable to write answers: %s", strerror(errno));
				rc = EXIT_TEMPORARY;
				break;
			}
			out.len = 0;
			if (r.eof)
				break;
			int w = unblocked ? cmd_wait_input(in_fd, unblocked) : 1;
			if (w == 0)
				break;
			if (w < 0 || (lr_fill(&r) < 0 && errno != EINTR)) {
				log_error("unable to read requests: %s", strerror(errno));
				rc = EXIT_TEMPORARY;
				break;
			}
			continue;
		}
		jv ans;
		if (k == LR_TOOLONG) {
			log_warn("line %lu: too long", r.lineno);
			ans = fail(jv_null(), "MalformedRequest", "line too long");
		} else {
			ans = serve_one(line, len, r.lineno, lookup, ctx, expose_root_keys, &out);
		}
		if (jv_is_valid(ans) && (json_out_append(&out, ans) != 0 || jbuf_add(&out, "\n", 1) != 0))
			die(EXIT_TEMPORARY, "out of memory");
		jv_free(ans);
	}
	free(out.p);
	lr_free(&r);
	return rc;
}

/* ---- the client side ---- */

struct js_crypto *js_crypto_local(js_root_key_fn lookup, void *ctx)
{
	struct js_crypto *c = calloc(1, sizeof *c);
	if (!c)
		die(EXIT_TEMPORARY, "out of memory");
	c->lookup = lookup;
	c->ctx = ctx;
	pthread_rwlock_init(&c->lk, NULL);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->wmu, NULL);
	c->in_fd = c->out_fd = -1;
	return c;
}

void js_crypto_set_lookup(struct js_crypto *c, js_root_key_fn lookup, void *ctx)
{
	pthread_rwlock_wrlock(&c->lk);
	c->lookup = lookup;
	c->ctx = ctx;
	pthread_rwlock_unlock(&c->lk);
}

/* Close the connection to the co-process and reap it; with wmu held. */
static void conn_close(struct js_crypto *c)
{
	if (c->out_fd >= 0 && c->out_fd != c->in_fd)
		close(c->out_fd);
	if (c->in_fd >= 0) {
		close(c->in_fd);
		lr_free(&c->lr);
	}
	c->in_fd = c->out_fd = -1;
	c->oq.len = 0;
	if (c->pid > 0) {
		int st;
		kill(c->pid, SIGTERM);
		waitpid(c->pid, &st, 0);
		c->pid = 0;
	}
}

/* Start the co-process (or connect to its socket); with wmu held. */
static int conn_open(struct js_crypto *c, char *err, size_t errlen)
{
	if (strncmp(c->cmd, "unix:", 5) == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(c->cmd + 5) >= sizeof sa.sun_path) {
			snprintf(err, errlen, "socket path too long");
			return -1;
		}
		strcpy(sa.sun_path, c->cmd + 5);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
			snprintf(err, errlen, "unable to connect to %s: %s", c->cmd + 5, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		c->in_fd = c->out_fd = fd;
	} else {
		int to[2], from[2];
		if (pipe2(to, O_CLOEXEC) != 0)
			goto syserr;
		if (pipe2(from, O_CLOEXEC) != 0) {
			close(to[0]);
			close(to[1]);
			goto syserr;
		}
		pid_t pid = fork();
		if (pid < 0) {
			close(to[0]);
			close(to[1]);
			close(from[0]);
			close(from[1]);
			goto syserr;
		}
		if (pid == 0) {
			dup2(to[0], 0);
			dup2(from[1], 1);
			signal(SIGPIPE, SIG_DFL);
			execl("/bin/sh", "sh", "-c", c->cmd, (char *)NULL);
			_exit(127);
		}
		close(to[0]);
		close(from[1]);
		c->pid = pid;
		c->out_fd = to[1];
		c->in_fd = from[0];
	}
	int fl = fcntl(c->out_fd, F_GETFL);
	if (fl < 0 || fcntl(c->out_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "unable to set up the crypto process's input: %s", strerror(errno));
		conn_close(c);
		return -1;
	}
	lr_init(&c->lr, c->in_fd, 64 * 1024);
	return 0;
syserr:
	snprintf(err, errlen, "unable to start the crypto process: %s", strerror(errno));
	return -1;
}

/* Write what out_fd takes now; with wmu held. -1 when the co-process is gone. */
static int flush_out(struct js_crypto *c)
{
	return outq_flush(&c->oq, c->out_fd);
}

/* Queue a request line and send what can be sent; with wmu held. A co-process that is gone
 * shows up as the end of its output: the reader then starts it again. */
static void send_line(struct js_crypto *c, const char *line, size_t len)
{
	if (c->out_fd < 0)
		return;
	if (outq_put(&c->oq, line, len) < 0)
		die(EXIT_TEMPORARY, "out of memory");
	if (flush_out(c) != 0)
		c->oq.len = 0;
}

static void pending_unlink(struct js_crypto *c, struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		c->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->tail = p->prev;
	p->prev = p->next = NULL;
}

/* Answer (and free) a list of pendings, linked by next, with an error. */
static void pending_fail(struct pending *list, const char *err)
{
	while (list) {
		struct pending *p = list;
		list = p->next;
		p->cb(p->arg, jv_invalid(), err);
		free(p->line);
		free(p);
	}
}

static void deliver(struct js_crypto *c, const char *line, size_t len)
{
	jv a = jsonl_parse_object(line, len);
	double id = jv_is_valid(a) ? jl_num(a, "id", -1) : -1;
	pthread_mutex_lock(&c->mu);
	struct pending *p = c->head;
	while (p && (double)p->id != id)
		p = p->next;
	if (p)
		pending_unlink(c, p);
	pthread_mutex_unlock(&c->mu);
	if (!p) {
		jv_free(a);
		log_warn("the crypto process gave an answer nobody asked for");
		return;
	}
	p->cb(p->arg, a, NULL);
	free(p->line);
	free(p);
}

static void expire(struct js_crypto *c)
{
	time_t now = time(NULL);
	struct pending *late = NULL, **lp = &late;
	pthread_mutex_lock(&c->mu);
	for (struct pending *p = c->head, *n; p; p = n) {
		n = p->next;
		if (p->deadline <= now) {
			pending_unlink(c, p);
			*lp = p;
			lp = &p->next;
		}
	}
	pthread_mutex_unlock(&c->mu);
	pending_fail(late, "the crypto process did not answer in time");
}

/* The co-process's output ended: start it again and send it what is unanswered. false when it
 * cannot be started (or we are stopping): then everything unanswered fails and the reader ends. */
static bool restart(struct js_crypto *c)
{
	char err[256];
	struct pending *lost = NULL, **lp = &lost;
	pthread_mutex_lock(&c->wmu);
	conn_close(c);
	pthread_mutex_lock(&c->mu);
	bool stopping = c->stopping, waiting = c->head != NULL;
	pthread_mutex_unlock(&c->mu);
	/* with nothing unanswered the next request starts it (a command that fails at once then
	 * costs a start per request, not a loop) */
	bool ok = !stopping && waiting && conn_open(c, err, sizeof err) == 0;
	if (!ok && !stopping && waiting)
		log_error("%s", err);
	pthread_mutex_lock(&c->mu);
	if (!ok)
		c->alive = false;
	int resent = 0;
	for (struct pending *p = c->head, *n; p; p = n) {
		n = p->next;
		if (ok && p->sent < 2 && resent < RESEND_MAX) {
			p->sent++;
			resent++;
			send_line(c, p->line, p->len);
		} else {
			pending_unlink(c, p);
			*lp = p;
			lp = &p->next;
		}
	}
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_unlock(&c->wmu);
	if (ok)
		log_warn("the crypto process ended; started it again (%d unanswered requests sent again)", resent);
	pending_fail(lost, "the crypto process ended");
	return ok;
}

static void *reader_main(void *arg)
{
	struct js_crypto *c = arg;
	time_t next_check = time(NULL) + 1;
	for (;;) {
		char *line;
		size_t len;
		int k = lr_next(&c->lr, &line, &len);
		if (k == LR_LINE) {
			deliver(c, line, len);
			continue;
		}
		if (k == LR_TOOLONG)
			continue;
		if (!c->lr.eof) {
			/* requests the co-process's input did not take yet go out from here */
			pthread_mutex_lock(&c->wmu);
			bool out = c->oq.len > 0;
			int ofd = c->out_fd;
			pthread_mutex_unlock(&c->wmu);
			struct pollfd pfd[2] = {{.fd = c->in_fd, .events = POLLIN}, {.fd = ofd, .events = POLLOUT}};
			int nfd = 1;
			if (out && ofd == c->in_fd)
				pfd[0].events |= POLLOUT;
			else if (out)
				nfd = 2;
			int n = poll(pfd, (nfds_t)nfd, 1000);
			if (out) {
				pthread_mutex_lock(&c->wmu);
				if (flush_out(c) != 0)
					c->oq.len = 0;
				pthread_mutex_unlock(&c->wmu);
			}
			if (time(NULL) >= next_check) {
				expire(c);
				next_check = time(NULL) + 1;
			}
			if (n == 0 || (n < 0 && errno == EINTR) || (n > 0 && !(pfd[0].revents & ~POLLOUT)))
				continue;
			if (n > 0 && (lr_fill(&c->lr) >= 0 || errno == EAGAIN || errno == EINTR))
				continue;
		}
		if (!restart(c))
			break;
	}
	return NULL;
}

/* Start the co-process and its reader thread; with wmu held. */
static int remote_start(struct js_crypto *c, char *err, size_t errlen)
{
	if (c->reader_started) {
		pthread_join(c->reader, NULL); /* it ended: alive is false */
		c->reader_started = false;
	}
	if (conn_open(c, err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&c->mu);
	c->alive = true;
	pthread_mutex_unlock(&c->mu);
	if (pthread_create(&c->reader, NULL, reader_main, c) != 0) {
		snprintf(err, errlen, "unable to start a thread");
		pthread_mutex_lock(&c->mu);
		c->alive = false;
		pthread_mutex_unlock(&c->mu);
		conn_close(c);
		return -1;
	}
	c->reader_started = true;
	return 0;
}

struct js_crypto *js_crypto_remote(const char *cmd, char *err, size_t errlen)
{
	struct js_crypto *c = js_crypto_local(NULL, NULL);
	c->remote = true;
	c->cmd = strdup(cmd);
	pthread_mutex_lock(&c->wmu);
	int rc = remote_start(c, err, errlen);
	pthread_mutex_unlock(&c->wmu);
	if (rc != 0) {
		js_crypto_free(c);
		return NULL;
	}
	return c;
}

void js_crypto_reload(struct js_crypto *c)
{
	pthread_mutex_lock(&c->wmu);
	if (c->remote && c->pid > 0)
		kill(c->pid, SIGHUP);
	pthread_mutex_unlock(&c->wmu);
}

void js_crypto_free(struct js_crypto *c)
{
	if (!c)
		return;
	if (c->remote) {
		pthread_mutex_lock(&c->mu);
		c->stopping = true;
		pthread_mutex_unlock(&c->mu);
		pthread_mutex_lock(&c->wmu);
		/* end of input for the co-process (or a shut socket): the reader sees the end */
		if (c->in_fd >= 0 && c->in_fd == c->out_fd) {
			shutdown(c->in_fd, SHUT_RDWR);
		} else if (c->out_fd >= 0) {
			close(c->out_fd);
			c->out_fd = -1;
		}
		if (c->pid > 0)
			kill(c->pid, SIGTERM);
		bool started = c->reader_started;
		pthread_mutex_unlock(&c->wmu);
		if (started)
			pthread_join(c->reader, NULL);
		pthread_mutex_lock(&c->wmu);
		conn_close(c);
		pthread_mutex_unlock(&c->wmu);
	}
	free(c->cmd);
	outq_free(&c->oq);
	pthread_rwlock_destroy(&c->lk);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->wmu);
	free(c);
}

/* Send one request (consumed); cb(arg, answer or invalid, error) follows from the reader thread,
 * or from here when the co-process cannot be started. */
static void remote_call_async(struct js_crypto *c, struct jbuf *req, answer_fn cb, void *arg)
{
	char err[256];
	struct pending *p = calloc(1, sizeof *p);
	if (!p)
		die(EXIT_TEMPORARY, "out of memory");
	p->cb = cb;
	p->arg = arg;
	pthread_mutex_lock(&c->wmu);
	pthread_mutex_lock(&c->mu);
	bool alive = c->alive;
	p->id = ++c->next_id;
	pthread_mutex_unlock(&c->mu);
	if (!alive && remote_start(c, err, sizeof err) != 0) {
		pthread_mutex_unlock(&c->wmu);
		free(req->p);
		cb(arg, jv_invalid(), err);
		free(p);
		return;
	}
	char id[32];
	int n = snprintf(id, sizeof id, ",\"id\":%lu}\n", (unsigned long)p->id);
	if (jbuf_add(req, id, (size_t)n) != 0 || req->failed)
		die(EXIT_TEMPORARY, "out of memory");
	p->len = req->len;
	p->line = req->p;
	p->sent = 1;
	p->deadline = time(NULL) + ANSWER_TIMEOUT;
	pthread_mutex_lock(&c->mu);
	p->prev = c->tail;
	if (c->tail)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
	pthread_mutex_unlock(&c->mu);
	char *line = malloc(p->len);
	if (!line)
		die(EXIT_TEMPORARY, "out of memory");
	memcpy(line, req->p, req->len);
	size_t len = req->len;
	send_line(c, line, len); /* p may be answered and gone from here on */
	pthread_mutex_unlock(&c->wmu);
	free(line);
}

static int remote_result(jv a, char *err, size_t errlen)
{
	jv ok = jl_get(a, "ok");
	jv_kind k = jv_get_kind(ok);
	jv_free(ok);
	if (k == JV_KIND_TRUE)
		return JS_CRYPTO_OK;
	const char *code = jl_str(a, "code");
	snprintf(err, errlen, "%s", jl_str(a, "error") ? jl_str(a, "error") : "crypto process refused");
	if (code && strcmp(code, "MICFailed") == 0)
		return JS_CRYPTO_MIC;
	if (code && strcmp(code, "UnknownDevEUI") == 0)
		return JS_CRYPTO_UNKNOWN;
	return JS_CRYPTO_ERROR;
}

struct join_call {
	enum js_join_step step;
	struct js_join_out *out;
	js_crypto_done_fn done;
	void *arg;
};

static void join_answered(void *arg, jv a, const char *err)
{
	struct join_call *jc = arg;
	struct js_join_out *o = jc->out;
	if (!jv_is_valid(a)) {
		o->rc = JS_CRYPTO_ERROR;
		snprintf(o->err, sizeof o->err, "%s", err);
	} else {
		o->rc = remote_result(a, o->err, sizeof o->err);
		if (o->rc == JS_CRYPTO_OK && jc->step != JS_JOIN_CHECK) {
			const char *p = jl_str(a, "PHYPayload");
			long n = p ? hex_decode(p, o->phy, sizeof o->phy) : -1;
			if ((n != 17 && n != 33) || get_keys(a, &o->keys) != 0) {
				snprintf(o->err, sizeof o->err, "the crypto process gave a malformed join-accept answer");
				o->rc = JS_CRYPTO_ERROR;
			} else {
				o->phy_len = (size_t)n;
			}
		}
	}
	jv_free(a);
	js_crypto_done_fn done = jc->done;
	void *darg = jc->arg;
	free(jc);
	done(darg);
}

void js_crypto_join_async(struct js_crypto *c, const struct js_join_in *in, enum js_join_step step,
                          struct js_join_out *out, js_crypto_done_fn done, void *arg)
{
	memset(out, 0, sizeof *out);
	if (!c->remote) {
		struct js_root_keys rk;
		if (local_lookup(c, in, &rk, out->err, sizeof out->err) != 0) {
			out->rc = JS_CRYPTO_UNKNOWN;
		} else {
			out->rc = step == JS_JOIN_ACCEPT ? JS_CRYPTO_OK : core_check_mic(&rk, in);
			if (out->rc == JS_CRYPTO_MIC)
				snprintf(out->err, sizeof out->err, "MIC mismatch");
			else if (step != JS_JOIN_CHECK)
				core_join_accept(&rk, in, &out->keys, out->phy, &out->phy_len);
			lw_wipe(&rk, sizeof rk);
		}
		done(arg);
		return;
	}
	struct join_call *jc = malloc(sizeof *jc);
	if (!jc)
		die(EXIT_TEMPORARY, "out of memory");
	*jc = (struct join_call){.step = step, .out = out, .done = done, .arg = arg};
	struct jbuf req = {0};
	if (step == JS_JOIN_CHECK) {
		request_text(&req, "check-mic", in, false);
	} else if (step == JS_JOIN_ACCEPT) {
		request_text(&req, "join-accept", in, true);
	} else {
		request_text(&req, "join", in, true);
		text_hex(&req, "JoinRequest", in->phy, 23);
	}
	remote_call_async(c, &req, join_answered, jc);
}

/* ---- waiting for one answer (stdin mode, tests) ---- */

struct sync_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void sync_done(void *arg)
{
	struct sync_wait *w = arg;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void join_sync(struct js_crypto *c, const struct js_join_in *in, enum js_join_step step,
                      struct js_join_out *out)
{
	struct sync_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	js_crypto_join_async(c, in, step, out, sync_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
}

int js_crypto_check_mic(struct js_crypto *c, const struct js_join_in *in, char *err, size_t errlen)
{
	struct js_join_out o;
	join_sync(c, in, JS_JOIN_CHECK, &o);
	if (o.rc != JS_CRYPTO_OK)
		snprintf(err, errlen, "%s", o.err);
	return o.rc;
}

int js_crypto_join_accept(struct js_crypto *c, const struct js_join_in *in, struct js_session_keys *keys,
                          uint8_t *phy, size_t *phy_len, char *err, size_t errlen)
{
	struct js_join_out o;
	join_sync(c, in, JS_JOIN_ACCEPT, &o);
	if (o.rc == JS_CRYPTO_OK) {
		*keys = o.keys;
		memcpy(phy, o.phy, o.phy_len);
		*phy_len = o.phy_len;
	} else {
		snprintf(err, errlen, "%s", o.err);
	}
	lw_wipe(&o.keys, sizeof o.keys);
	return o.rc;
}
