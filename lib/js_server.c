#include "js_server.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bi_msg.h"
#include "hex.h"
#include "kek_keyring.h"
#include "keywrap.h"
#include "json_check.h"
#include "json_out.h"
#include "jsonl.h"
#include "log.h"
#include "lorawan_crypto.h"
#include "lorawan_frame.h"

void js_server_init(struct js_server *s)
{
	memset(s, 0, sizeof *s);
	pthread_rwlock_init(&s->lk, NULL);
}

bool js_answer_ok(jv ans)
{
	jv r = jl_get(ans, "Result");
	const char *c = jv_get_kind(r) == JV_KIND_OBJECT ? jl_str(r, "ResultCode") : NULL;
	bool ok = c && strcmp(c, "Success") == 0;
	jv_free(r);
	return ok;
}

/* A KeyEnvelope for key: wrapped with the KEK named label, in clear when label is NULL. */
static int envelope(struct js_server *s, const char *label, const uint8_t key[16], jv *out, char *err,
                    size_t errlen)
{
	if (!label || !*label) {
		*out = bi_clear_envelope(key);
		return 0;
	}
	pthread_rwlock_rdlock(&s->lk);
	const struct kek *kek = s->keks ? kek_find(s->keks, label) : NULL;
	if (kek)
		*out = keyenv_build(label, kek, key);
	pthread_rwlock_unlock(&s->lk);
	if (!kek) {
		snprintf(err, errlen, "KEK \"%s\" is not in the keyring", label);
		return -1;
	}
	if (!jv_is_valid(*out)) {
		jv_free(*out);
		snprintf(err, errlen, "KEK \"%s\" cannot wrap keys", label);
		return -1;
	}
	return 0;
}

int js_keks_load(struct js_server *s, const char *path, char *err, size_t errlen)
{
	struct kek_keyring *ring = calloc(1, sizeof *ring);
	if (!ring)
		die(EXIT_TEMPORARY, "out of memory");
	if (kek_keyring_load(ring, path, err, errlen) != 0) {
		free(ring);
		return -1;
	}
	pthread_rwlock_wrlock(&s->lk);
	struct kek_keyring *old = s->keks;
	s->keks = ring;
	pthread_rwlock_unlock(&s->lk);
	if (old) {
		kek_keyring_free(old);
		free(old);
	}
	return 0;
}

void js_keks_free(struct js_server *s)
{
	if (s->keks) {
		kek_keyring_free(s->keks);
		free(s->keks);
		s->keks = NULL;
	}
}

jv js_malformed_answer(const char *desc)
{
	jv a = jv_object_set(jv_object(), jv_string("ProtocolVersion"), jv_string("1.0"));
	a = jv_object_set(a, jv_string("MessageType"), jv_string("ErrorNotif"));
	return bi_result(a, BI_MALFORMED, "1.0", desc);
}

static jv answer_error(jv ans, enum bi_result r, const char *pv, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static jv answer_error(jv ans, enum bi_result r, const char *pv, const char *fmt, ...)
{
	char desc[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof desc, fmt, ap);
	va_end(ap);
	return bi_result(ans, r, pv, desc);
}

static int authorize(const struct js_peer *peer, const char *sender, char *err, size_t errlen)
{
	if (!peer || !peer->authorize)
		return 0;
	return peer->authorize(peer->ctx, sender, err, errlen);
}

/* A JoinReq on its way: crypto (possibly in a co-process), then the record's commit. Owned by
 * one thread at a time: the worker that started it, the crypto reader, the state writer. Its
 * answer is written as text: the request's header fields were copied as text when it came, so
 * nothing of the request is needed after join_req. */
struct js_pending {
	struct js_server *s;
	struct jbuf hdr; /* the answer's header, no closing brace */
	char pv[4];
	struct js_join_in in;
	bool strict;
	int peek;          /* JS_RESERVE_* as seen before the crypto */
	uint32_t jn_guess; /* the JoinNonce the join-accept was built for */
	char *ns_kek, *as_kek;
	struct js_join_out out;
	struct jbuf ok;    /* the answer once the join is stored */
	enum bi_result res;
	int rc;            /* 0: ok holds the answer; else the store failed */
	js_wake_fn wake;
	void *arg;
	uint64_t t_taken, t_queued, t_stored; /* js_now_us: JoinReq read, record queued, durable */
};

static void count_result(struct js_server *s, enum bi_result r)
{
	if (r == BI_SUCCESS)
		__atomic_add_fetch(&s->answered, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&s->rejected, 1, __ATOMIC_RELAXED);
	js_stats_result(&s->stats, r);
}

static void count_answer(struct js_server *s, jv ans)
{
	if (js_answer_ok(ans))
		__atomic_add_fetch(&s->answered, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&s->rejected, 1, __ATOMIC_RELAXED);
	js_stats_answer(&s->stats, ans);
}

static void jbuf_free(struct jbuf *b)
{
	if (!b->borrowed)
		free(b->p);
	*b = (struct jbuf){0};
}

/* out = hdr + Result + "}" */
static void text_error(struct jbuf *out, const struct jbuf *hdr, enum bi_result r, const char *pv,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void text_error(struct jbuf *out, const struct jbuf *hdr, enum bi_result r, const char *pv,
                       const char *fmt, ...)
{
	char desc[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof desc, fmt, ap);
	va_end(ap);
	if (jbuf_add(out, hdr->p, hdr->len) || bi_result_text(out, r, pv, desc) || jbuf_add(out, "}", 1))
		die(EXIT_TEMPORARY, "out of memory");
}

/* The answer is known (nothing to store). */
static void join_done(struct js_pending *p, enum bi_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void join_done(struct js_pending *p, enum bi_result r, const char *fmt, ...)
{
	char desc[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof desc, fmt, ap);
	va_end(ap);
	text_error(&p->ok, &p->hdr, r, p->pv, "%s", desc);
	p->res = r;
	p->rc = 0;
	p->wake(p->arg);
}

static void join_stored(void *arg, int rc)
{
	struct js_pending *p = arg;
	p->t_stored = js_now_us();
	js_hist_add(&p->s->stats.lat[JS_LAT_STORE], p->t_stored - p->t_queued);
	p->rc = rc;
	p->wake(p->arg);
}

bool js_server_finish(struct js_pending *p, struct jbuf *out)
{
	if (p->rc != 0) {
		jbuf_free(&p->ok);
		p->res = BI_OTHER;
		text_error(&p->ok, &p->hdr, BI_OTHER, p->pv, "unable to store the join");
	}
	*out = p->ok;
	bool ok = p->res == BI_SUCCESS;
	uint64_t now = js_now_us();
	if (p->t_stored)
		js_hist_add(&p->s->stats.lat[JS_LAT_WAKE], now - p->t_stored);
	js_hist_add(&p->s->stats.lat[JS_LAT_JOIN], now - p->t_taken);
	count_result(p->s, p->res);
	jbuf_free(&p->hdr);
	free(p->ns_kek);
	free(p->as_kek);
	lw_wipe(&p->out, sizeof p->out);
	free(p);
	return ok;
}

static int add_str(struct jbuf *b, const char *s)
{
	return jbuf_add(b, s, strlen(s));
}

/* A KeyEnvelope's JSON text, as jq prints what bi_clear_envelope / keyenv_build make. */
static int envelope_text(struct js_server *s, const char *label, const uint8_t key[16], struct jbuf *out,
                         char *err, size_t errlen)
{
	if (!label || !*label) {
		char h[33];
		hex_encode(key, 16, h);
		return add_str(out, "{\"KEKLabel\":\"\",\"AESKey\":\"") || jbuf_add(out, h, 32) || add_str(out, "\"}") ? -1 : 0;
	}
	jv e;
	if (envelope(s, label, key, &e, err, errlen) != 0)
		return -1;
	int rc = json_out_append(out, e);
	jv_free(e);
	return rc;
}

static int add_hex(struct jbuf *b, const uint8_t *v, size_t n)
{
	char h[2 * 64 + 1];
	if (n > 64)
		n = 64;
	hex_encode(v, n, h);
	return jbuf_add(b, "\"", 1) || jbuf_add(b, h, 2 * n) || jbuf_add(b, "\"", 1) ? -1 : 0;
}

/* The join-accept is built for the JoinNonce reserved: wrap the keys, store, then answer. */
static void join_accepted(void *arg)
{
	struct js_pending *p = arg;
	struct js_server *s = p->s;
	struct js_session_keys *k = &p->out.keys;
	char err[256];
	if (p->out.rc != JS_CRYPTO_OK) {
		join_done(p, BI_OTHER, "%s", p->out.err);
		return;
	}
	char app_stack[256], net_stack[3][256];
	struct jbuf e_app = {.p = app_stack, .cap = sizeof app_stack, .borrowed = 1}, e_net[3];
	for (int i = 0; i < 3; i++)
		e_net[i] = (struct jbuf){.p = net_stack[i], .cap = sizeof net_stack[i], .borrowed = 1};
	int n_net = k->v11 ? 3 : 1;
	const char *net_names[3] = {"NwkSKey"};
	const uint8_t *net_keys[3] = {k->nwk_s_key};
	if (k->v11) {
		net_names[0] = "FNwkSIntKey";
		net_names[1] = "SNwkSIntKey";
		net_names[2] = "NwkSEncKey";
		net_keys[1] = k->s_nwk_s_int_key;
		net_keys[2] = k->nwk_s_enc_key;
	}
	int bad = envelope_text(s, p->as_kek, k->app_s_key, &e_app, err, sizeof err);
	for (int i = 0; i < n_net && !bad; i++)
		bad = envelope_text(s, p->ns_kek, net_keys[i], &e_net[i], err, sizeof err);
	lw_wipe(k, sizeof *k);
	if (bad) {
		for (int i = 0; i < 3; i++)
			jbuf_free(&e_net[i]);
		jbuf_free(&e_app);
		join_done(p, BI_OTHER, "%s", err);
		return;
	}

	uint8_t sid[16];
	if (gnutls_rnd(GNUTLS_RND_NONCE, sid, sizeof sid) != 0)
		die(EXIT_TEMPORARY, "unable to get random bytes");
	/* the order bi_answer + jv_object_set gave: PHYPayload, Result, Lifetime, keys, SessionKeyID */
	struct jbuf *o = &p->ok;
	jv lt = jv_number(s->lifetime);
	int rc = jbuf_add(o, p->hdr.p, p->hdr.len) || add_str(o, ",\"PHYPayload\":") ||
	         add_hex(o, p->out.phy, p->out.phy_len) || bi_result_text(o, BI_SUCCESS, p->pv, NULL) ||
	         add_str(o, ",\"Lifetime\":") || json_out_append(o, lt);
	for (int i = 0; i < n_net && !rc; i++)
		rc = add_str(o, ",\"") || add_str(o, net_names[i]) || add_str(o, "\":") ||
		     jbuf_add(o, e_net[i].p, e_net[i].len);
	rc = rc || add_str(o, ",\"AppSKey\":") || jbuf_add(o, e_app.p, e_app.len) || add_str(o, ",\"SessionKeyID\":") ||
	     add_hex(o, sid, 16) || jbuf_add(o, "}", 1) || jbuf_add(&e_app, "", 1);
	if (rc)
		die(EXIT_TEMPORARY, "out of memory");
	for (int i = 0; i < 3; i++)
		jbuf_free(&e_net[i]);
	p->res = BI_SUCCESS;
	log_debug("JoinReq %016llX DevNonce %04X: JoinNonce %06X", (unsigned long long)p->in.dev_eui,
	          p->in.dev_nonce, p->in.join_nonce);
	/* p may be finished and gone once this returns: e_app is not shared with it */
	p->t_queued = js_now_us();
	js_state_commit_async(s->state, p->in.dev_eui, p->in.dev_nonce, p->in.join_nonce, sid, e_app.p, join_stored,
	                      p);
	jbuf_free(&e_app);
}

/* The MIC was checked (and, in the common case, the join-accept built for the JoinNonce that
 * was next when the request came): take the DevNonce and the JoinNonce now. */
static void join_checked(void *arg)
{
	struct js_pending *p = arg;
	int rc = p->out.rc;
	if (rc != JS_CRYPTO_OK) {
		if (rc == JS_CRYPTO_MIC)
			join_done(p, BI_MIC_FAILED, "MIC mismatch");
		else
			join_done(p, rc == JS_CRYPTO_UNKNOWN ? BI_UNKNOWN_DEVEUI : BI_OTHER, "%s", p->out.err);
		return;
	}
	uint32_t jn = 0;
	rc = p->peek != JS_RESERVE_OK ? p->peek
	                               : js_state_reserve(p->s->state, p->in.dev_eui, p->in.dev_nonce, p->strict, &jn);
	if (rc != JS_RESERVE_OK) {
		if (rc == JS_RESERVE_REPLAY) {
			js_stats_count(&p->s->stats.devnonce_replays);
			join_done(p, BI_JOINREQ_FAILED, "DevNonce %04X %s", p->in.dev_nonce,
			          p->strict ? "is not greater than the last one" : "was used before");
		} else {
			join_done(p, BI_JOINREQ_FAILED, "JoinNonce exhausted");
		}
		return;
	}
	if (jn != p->jn_guess) { /* another join of the device came between: build it again */
		p->in.join_nonce = jn;
		js_crypto_join_async(p->s->crypto, &p->in, JS_JOIN_ACCEPT, &p->out, join_accepted, p);
		return;
	}
	join_accepted(p);
}

/* A JoinReq: 0 with the answer in out and its result in *res, or 1 with *pending. */
static int join_req(struct js_server *s, const struct bi_view *m, const struct js_peer *peer, const char *pv,
                    js_wake_fn wake, void *arg, struct js_pending **pending, struct jbuf *out, enum bi_result *res)
{
	uint64_t t_taken = js_now_us();
	char hstack[512];
	struct jbuf hdr = {.p = hstack, .cap = sizeof hstack, .borrowed = 1};
	if (bi_answer_text(&hdr, m) != 0)
		die(EXIT_TEMPORARY, "out of memory");
	char err[256];
	uint64_t net_id, dev_eui, join_eui = 0, v;
	uint8_t phy[64];
	const char *sender = bi_str(m, BI_F_SENDER_ID);
	bool v11 = strcmp(pv, "1.1") == 0;
#define FAIL(r, ...)                                      \
	do {                                              \
		text_error(out, &hdr, r, pv, __VA_ARGS__); \
		*res = r;                                 \
		jbuf_free(&hdr);                          \
		return 0;                                 \
	} while (0)

	if (!sender || bi_view_hex_uint(m, BI_F_SENDER_ID, 3, &net_id) != 0)
		FAIL(BI_MALFORMED, "SenderID: missing or not a NetID");
	if (bi_has(m, BI_F_RECEIVER_ID) && bi_view_hex_uint(m, BI_F_RECEIVER_ID, 8, &join_eui) != 0)
		FAIL(BI_MALFORMED, "ReceiverID: not a JoinEUI");
	const char *ns_id = bi_str(m, BI_F_SENDER_NSID);
	if (v11 && !ns_id)
		FAIL(BI_MALFORMED, "SenderNSID: required in a 1.1 JoinReq");
	if (authorize(peer, sender, err, sizeof err) != 0)
		FAIL(BI_UNKNOWN_SENDER, "%s", err);

	int req_mac = lw_mac_parse(bi_str(m, BI_F_MAC_VERSION));
	if (req_mac < 0)
		FAIL(BI_MALFORMED, "MACVersion: missing or unknown");
	long plen = bi_view_hex_var(m, BI_F_PHY_PAYLOAD, phy, sizeof phy);
	if (plen < 0)
		FAIL(BI_MALFORMED, "PHYPayload: missing or not hex");
	struct lw_join_request jr;
	if (lw_parse_join_request(phy, (size_t)plen, &jr, err, sizeof err) != 0)
		FAIL(BI_MALFORMED, "PHYPayload: %s", err);
	if (bi_view_hex_uint(m, BI_F_DEV_EUI, 8, &dev_eui) != 0)
		FAIL(BI_MALFORMED, "DevEUI: missing or not 8 bytes of hex");
	if (dev_eui != jr.dev_eui)
		FAIL(BI_MALFORMED, "DevEUI differs from the join-request's");
	if (bi_has(m, BI_F_RECEIVER_ID) && join_eui != jr.join_eui)
		FAIL(BI_MALFORMED, "ReceiverID differs from the join-request's JoinEUI");

	struct js_join_in in = {.dev_eui = jr.dev_eui, .join_eui = jr.join_eui, .dev_nonce = jr.dev_nonce,
	                        .net_id = (uint32_t)net_id, .join_req_type = 0xFF};
	memcpy(in.phy, phy, 23);
	if (bi_view_hex_uint(m, BI_F_DEV_ADDR, 4, &v) != 0)
		FAIL(BI_MALFORMED, "DevAddr: missing or not 4 bytes of hex");
	in.dev_addr = (uint32_t)v;
	if (bi_view_hex_uint(m, BI_F_DL_SETTINGS, 1, &v) != 0)
		FAIL(BI_MALFORMED, "DLSettings: missing or not 1 byte of hex");
	in.dl_settings = (uint8_t)v;
	double rx = bi_num(m, BI_F_RX_DELAY, -1);
	if (rx < 0 || rx > 15 || rx != (int)rx)
		FAIL(BI_MALFORMED, "RxDelay: missing or not 0..15");
	in.rx_delay = (uint8_t)rx;
	long cl = bi_view_hex_var(m, BI_F_CFLIST, in.cflist, 16);
	if (cl == 16)
		in.has_cflist = true;
	else if (cl != 0 && cl != -2)
		FAIL(BI_MALFORMED, "CFList: not 16 bytes of hex");

	pthread_rwlock_rdlock(&s->lk);
	const struct js_device *dev = js_devices_find(s->devices, dev_eui);
	if (!dev || dev->join_eui != jr.join_eui) {
		pthread_rwlock_unlock(&s->lk);
		FAIL(BI_UNKNOWN_DEVEUI, "unknown DevEUI %016llX", (unsigned long long)dev_eui);
	}
	if (dev->n_net_ids && !js_device_allows_net_id(dev, (uint32_t)net_id)) {
		pthread_rwlock_unlock(&s->lk);
		FAIL(BI_ACTIVATION_DISALLOWED, "the device may not join through NetID %06llX", (unsigned long long)net_id);
	}
	if (v11 && !js_device_allows_ns_id(dev, ns_id)) {
		pthread_rwlock_unlock(&s->lk);
		FAIL(BI_ACTIVATION_DISALLOWED, "the device may not join through NSID %s", ns_id);
	}
#undef FAIL
	in.mac = dev->mac;
	bool strict = dev->mac >= LW_MAC_1_0_4;
	char *ns_kek = dev->ns_kek_label ? strdup(dev->ns_kek_label) : NULL;
	char *as_kek = dev->as_kek_label ? strdup(dev->as_kek_label) : NULL;
	pthread_rwlock_unlock(&s->lk);

	/* OptNeg: a 1.1 device and a network that speaks 1.1 */
	if (in.mac >= LW_MAC_1_1 && req_mac >= LW_MAC_1_1)
		in.dl_settings |= 0x80;
	else
		in.dl_settings &= 0x7F;

	/* one exchange with the crypto: the MIC, and the join-accept for the JoinNonce that comes
	 * next unless another join of the device takes it first; nothing changes before the MIC holds */
	struct js_pending *p = calloc(1, sizeof *p);
	if (!p)
		die(EXIT_TEMPORARY, "out of memory");
	*p = (struct js_pending){.s = s, .in = in, .strict = strict, .ns_kek = ns_kek, .as_kek = as_kek,
	                         .wake = wake, .arg = arg, .t_taken = t_taken};
	if (jbuf_add(&p->hdr, hdr.p, hdr.len) != 0)
		die(EXIT_TEMPORARY, "out of memory");
	jbuf_free(&hdr);
	snprintf(p->pv, sizeof p->pv, "%s", pv);
	p->peek = js_state_peek(s->state, dev_eui, jr.dev_nonce, strict, &p->jn_guess);
	p->in.join_nonce = p->jn_guess;
	*pending = p;
	js_crypto_join_async(s->crypto, &p->in, p->peek == JS_RESERVE_OK ? JS_JOIN_BOTH : JS_JOIN_CHECK, &p->out,
	                     join_checked, p);
	return 1;
}

static jv home_ns_req(struct js_server *s, jv req, const struct js_peer *peer, const char *pv)
{
	jv ans = bi_answer(req, NULL);
	char err[256];
	uint64_t dev_eui, net_id;
	const char *sender = jl_str(req, "SenderID");
	if (!sender || bi_hex_uint(req, "SenderID", 3, &net_id) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "SenderID: missing or not a NetID");
	if (authorize(peer, sender, err, sizeof err) != 0)
		return answer_error(ans, BI_UNKNOWN_SENDER, pv, "%s", err);
	if (bi_hex_uint(req, "DevEUI", 8, &dev_eui) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "DevEUI: missing or not 8 bytes of hex");
	pthread_rwlock_rdlock(&s->lk);
	const struct js_device *dev = js_devices_find(s->devices, dev_eui);
	if (!dev) {
		pthread_rwlock_unlock(&s->lk);
		return answer_error(ans, BI_UNKNOWN_DEVEUI, pv, "unknown DevEUI %016llX", (unsigned long long)dev_eui);
	}
	if (!dev->has_home_net_id) {
		pthread_rwlock_unlock(&s->lk);
		return answer_error(ans, BI_OTHER, pv, "no home NetID known for the device");
	}
	ans = bi_result(ans, BI_SUCCESS, pv, NULL);
	ans = jv_object_set(ans, jv_string("HNetID"), bi_hex_uint_jv(dev->home_net_id, 3));
	if (strcmp(pv, "1.1") == 0 && dev->home_ns_id)
		ans = jv_object_set(ans, jv_string("HNSID"), jv_string(dev->home_ns_id));
	pthread_rwlock_unlock(&s->lk);
	return ans;
}

static jv app_skey_req(struct js_server *s, jv req, const struct js_peer *peer, const char *pv)
{
	jv ans = bi_answer(req, NULL);
	char err[256];
	uint64_t dev_eui;
	uint8_t sid[16];
	const char *sender = jl_str(req, "SenderID");
	if (!sender || !*sender)
		return answer_error(ans, BI_MALFORMED, pv, "SenderID: missing");
	if (authorize(peer, sender, err, sizeof err) != 0)
		return answer_error(ans, BI_UNKNOWN_SENDER, pv, "%s", err);
	if (bi_hex_uint(req, "DevEUI", 8, &dev_eui) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "DevEUI: missing or not 8 bytes of hex");
	if (bi_hex_var(req, "SessionKeyID", sid, sizeof sid) != 16)
		return answer_error(ans, BI_MALFORMED, pv, "SessionKeyID: missing or not one of ours");
	pthread_rwlock_rdlock(&s->lk);
	const struct js_device *dev = js_devices_find(s->devices, dev_eui);
	bool known = dev != NULL, allowed = dev && js_device_allows_as_id(dev, sender);
	pthread_rwlock_unlock(&s->lk);
	if (!known)
		return answer_error(ans, BI_UNKNOWN_DEVEUI, pv, "unknown DevEUI %016llX", (unsigned long long)dev_eui);
	if (!allowed)
		return answer_error(ans, BI_UNKNOWN_SENDER, pv, "%s may not ask for this device's AppSKey", sender);
	char *env = js_state_session(s->state, dev_eui, sid);
	if (!env)
		return answer_error(ans, BI_OTHER, pv, "unknown SessionKeyID");
	jv e = jv_parse(env);
	free(env);
	ans = bi_result(ans, BI_SUCCESS, pv, NULL);
	ans = jv_object_set(ans, jv_string("DevEUI"), bi_hex_uint_jv(dev_eui, 8));
	ans = jv_object_set(ans, jv_string("AppSKey"), e);
	return jv_object_set(ans, jv_string("SessionKeyID"), bi_hex_jv(sid, 16));
}

/* Any message but a JoinReq that gets as far as the join (those answer at once). */
static jv handle_jv(struct js_server *s, jv msg, const struct js_peer *peer)
{
	const char *pv = jl_str(msg, "ProtocolVersion");
	const char *type = jl_str(msg, "MessageType");
	jv ans;
	if (!pv || (strcmp(pv, "1.0") != 0 && strcmp(pv, "1.1") != 0))
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_MALFORMED, pv,
		                   "ProtocolVersion: missing or not 1.0 or 1.1");
	else if (!type)
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_MALFORMED, pv, "MessageType: missing");
	else if (strcmp(type, "HomeNSReq") == 0)
		ans = home_ns_req(s, msg, peer, pv);
	else if (s->identity_server)
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_OTHER, pv, "this server answers HomeNSReq only");
	else if (strcmp(type, "AppSKeyReq") == 0)
		ans = app_skey_req(s, msg, peer, pv);
	else
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_MALFORMED, pv, "MessageType \"%s\" is not served here",
		                   type);
	count_answer(s, ans);
	return ans;
}

static void reason(struct jbuf *out, jv msg)
{
	jv e = jv_invalid_get_msg(msg);
	const char *t = jv_get_kind(e) == JV_KIND_STRING ? jv_string_value(e) : "unreadable";
	if (jbuf_add(out, t, strlen(t)) != 0)
		die(EXIT_TEMPORARY, "out of memory");
	jv_free(e);
}

int js_server_answer_async(struct js_server *s, char *text, size_t len, const struct js_peer *peer,
                           js_wake_fn wake, void *arg, struct js_pending **pending, struct jbuf *out, bool *ok)
{
	*pending = NULL;
	*ok = false;
	while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	/* a plain JoinReq is read straight from the text; anything else goes through jq */
	struct bi_view m;
	jv msg = jv_invalid();
	char why[96];
	bool checked = len > 0 && json_check((const uint8_t *)text, len, 256, why, sizeof why) == 0;
	if (!checked || bi_view_text(&m, text, len) != 0) {
		msg = jsonl_parse_object(text, len);
		if (!jv_is_valid(msg)) {
			reason(out, msg);
			return -1;
		}
		bi_view_jv(&m, msg);
	}
	if ((bi_eq(&m, BI_F_PROTOCOL_VERSION, "1.0") || bi_eq(&m, BI_F_PROTOCOL_VERSION, "1.1")) &&
	    bi_eq(&m, BI_F_MESSAGE_TYPE, "JoinReq") && !s->identity_server) {
		bi_view_text_finish(&m);
		js_stats_request(&s->stats, "JoinReq");
		enum bi_result res;
		int rc = join_req(s, &m, peer, bi_str(&m, BI_F_PROTOCOL_VERSION), wake, arg, pending, out, &res);
		jv_free(msg);
		if (rc == 0) {
			count_result(s, res);
			*ok = res == BI_SUCCESS;
		}
		return rc;
	}
	if (!jv_is_valid(msg)) /* text untouched: bi_view_text_finish was not called */
		msg = jsonl_parse_object(text, len);
	js_stats_request(&s->stats, jl_str(msg, "MessageType"));
	jv ans = handle_jv(s, msg, peer);
	jv_free(msg);
	*ok = js_answer_ok(ans);
	if (json_out_append(out, ans) != 0)
		die(EXIT_TEMPORARY, "out of memory");
	jv_free(ans);
	return 0;
}

struct sync_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool woken;
};

static void sync_wake(void *arg)
{
	struct sync_wait *w = arg;
	pthread_mutex_lock(&w->mu);
	w->woken = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int js_server_answer(struct js_server *s, char *text, size_t len, const struct js_peer *peer, struct jbuf *out,
                     bool *ok)
{
	struct sync_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct js_pending *p;
	int rc = js_server_answer_async(s, text, len, peer, sync_wake, &w, &p, out, ok);
	if (rc == 1) {
		pthread_mutex_lock(&w.mu);
		while (!w.woken)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		jbuf_free(out);
		*ok = js_server_finish(p, out);
		rc = 0;
	}
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}
