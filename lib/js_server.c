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
 * one thread at a time: the worker that started it, the crypto reader, the state writer. */
struct js_pending {
	struct js_server *s;
	jv ans; /* the answer being built (shares values with the request) */
	char pv[4];
	struct js_join_in in;
	bool strict;
	int peek;          /* JS_RESERVE_* as seen before the crypto */
	uint32_t jn_guess; /* the JoinNonce the join-accept was built for */
	char *ns_kek, *as_kek;
	struct js_join_out out;
	jv ok, fail; /* the answer once the join is stored, and if it cannot be */
	int rc;
	js_wake_fn wake;
	void *arg;
};

static void count_answer(struct js_server *s, jv ans)
{
	if (js_answer_ok(ans))
		__atomic_add_fetch(&s->answered, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&s->rejected, 1, __ATOMIC_RELAXED);
	js_stats_answer(&s->stats, ans);
}

/* The answer is known (nothing to store). */
static void join_done(struct js_pending *p, jv ans)
{
	p->ok = ans;
	p->fail = jv_invalid();
	p->rc = 0;
	p->wake(p->arg);
}

static void join_stored(void *arg, int rc)
{
	struct js_pending *p = arg;
	p->rc = rc;
	p->wake(p->arg);
}

jv js_server_finish(struct js_pending *p)
{
	jv ans = p->rc == 0 ? p->ok : p->fail;
	jv_free(p->rc == 0 ? p->fail : p->ok);
	count_answer(p->s, ans);
	free(p->ns_kek);
	free(p->as_kek);
	lw_wipe(&p->out, sizeof p->out);
	free(p);
	return ans;
}

/* The join-accept is built for the JoinNonce reserved: wrap the keys, store, then answer. */
static void join_accepted(void *arg)
{
	struct js_pending *p = arg;
	struct js_server *s = p->s;
	const char *pv = p->pv;
	struct js_session_keys *k = &p->out.keys;
	char err[256];
	jv ans = p->ans;
	p->ans = jv_invalid();
	if (p->out.rc != JS_CRYPTO_OK) {
		join_done(p, answer_error(ans, BI_OTHER, pv, "%s", p->out.err));
		return;
	}
	jv e_app, e_net[3];
	int n_net = 0;
	const char *net_names[3];
	if (envelope(s, p->as_kek, k->app_s_key, &e_app, err, sizeof err) != 0) {
		join_done(p, answer_error(ans, BI_OTHER, pv, "%s", err));
		return;
	}
	if (k->v11) {
		net_names[0] = "FNwkSIntKey";
		net_names[1] = "SNwkSIntKey";
		net_names[2] = "NwkSEncKey";
		const uint8_t *keys[3] = {k->nwk_s_key, k->s_nwk_s_int_key, k->nwk_s_enc_key};
		for (; n_net < 3; n_net++)
			if (envelope(s, p->ns_kek, keys[n_net], &e_net[n_net], err, sizeof err) != 0)
				break;
		if (n_net < 3) {
			for (int i = 0; i < n_net; i++)
				jv_free(e_net[i]);
			jv_free(e_app);
			join_done(p, answer_error(ans, BI_OTHER, pv, "%s", err));
			return;
		}
	} else {
		net_names[0] = "NwkSKey";
		if (envelope(s, p->ns_kek, k->nwk_s_key, &e_net[0], err, sizeof err) != 0) {
			jv_free(e_app);
			join_done(p, answer_error(ans, BI_OTHER, pv, "%s", err));
			return;
		}
		n_net = 1;
	}
	lw_wipe(k, sizeof *k);

	uint8_t sid[16];
	if (gnutls_rnd(GNUTLS_RND_NONCE, sid, sizeof sid) != 0)
		die(EXIT_TEMPORARY, "unable to get random bytes");
	jv env_txt = jv_dump_string(jv_copy(e_app), 0);
	p->fail = answer_error(jv_copy(ans), BI_OTHER, pv, "unable to store the join");
	ans = jv_object_set(ans, jv_string("PHYPayload"), bi_hex_jv(p->out.phy, p->out.phy_len));
	ans = bi_result(ans, BI_SUCCESS, pv, NULL);
	ans = jv_object_set(ans, jv_string("Lifetime"), jv_number(s->lifetime));
	for (int i = 0; i < n_net; i++)
		ans = jv_object_set(ans, jv_string(net_names[i]), e_net[i]);
	ans = jv_object_set(ans, jv_string("AppSKey"), e_app);
	ans = jv_object_set(ans, jv_string("SessionKeyID"), bi_hex_jv(sid, 16));
	log_debug("JoinReq %016llX DevNonce %04X: JoinNonce %06X", (unsigned long long)p->in.dev_eui,
	          p->in.dev_nonce, p->in.join_nonce);
	p->ok = ans;
	js_state_commit_async(s->state, p->in.dev_eui, p->in.dev_nonce, p->in.join_nonce, sid,
	                      jv_string_value(env_txt), join_stored, p);
	jv_free(env_txt); /* p may be finished and gone: env_txt is not shared with it */
}

/* The MIC was checked (and, in the common case, the join-accept built for the JoinNonce that
 * was next when the request came): take the DevNonce and the JoinNonce now. */
static void join_checked(void *arg)
{
	struct js_pending *p = arg;
	const char *pv = p->pv;
	int rc = p->out.rc;
	if (rc != JS_CRYPTO_OK) {
		jv ans = p->ans;
		p->ans = jv_invalid();
		join_done(p, rc == JS_CRYPTO_MIC       ? answer_error(ans, BI_MIC_FAILED, pv, "MIC mismatch")
		             : rc == JS_CRYPTO_UNKNOWN ? answer_error(ans, BI_UNKNOWN_DEVEUI, pv, "%s", p->out.err)
		                                       : answer_error(ans, BI_OTHER, pv, "%s", p->out.err));
		return;
	}
	uint32_t jn = 0;
	rc = p->peek != JS_RESERVE_OK ? p->peek
	                               : js_state_reserve(p->s->state, p->in.dev_eui, p->in.dev_nonce, p->strict, &jn);
	if (rc != JS_RESERVE_OK) {
		jv ans = p->ans;
		p->ans = jv_invalid();
		if (rc == JS_RESERVE_REPLAY)
			js_stats_count(&p->s->stats.devnonce_replays);
		join_done(p, rc == JS_RESERVE_REPLAY
		                 ? answer_error(ans, BI_JOINREQ_FAILED, pv, "DevNonce %04X %s", p->in.dev_nonce,
		                                p->strict ? "is not greater than the last one" : "was used before")
		                 : answer_error(ans, BI_JOINREQ_FAILED, pv, "JoinNonce exhausted"));
		return;
	}
	if (jn != p->jn_guess) { /* another join of the device came between: build it again */
		p->in.join_nonce = jn;
		js_crypto_join_async(p->s->crypto, &p->in, JS_JOIN_ACCEPT, &p->out, join_accepted, p);
		return;
	}
	join_accepted(p);
}

static jv join_req(struct js_server *s, jv req, const struct js_peer *peer, const char *pv, js_wake_fn wake,
                   void *arg, struct js_pending **pending)
{
	jv ans = bi_answer(req, NULL);
	char err[256];
	uint64_t net_id, dev_eui, join_eui = 0, v;
	uint8_t phy[64];
	const char *sender = jl_str(req, "SenderID");
	bool v11 = strcmp(pv, "1.1") == 0;

	if (!sender || bi_hex_uint(req, "SenderID", 3, &net_id) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "SenderID: missing or not a NetID");
	if (jl_has(req, "ReceiverID") && bi_hex_uint(req, "ReceiverID", 8, &join_eui) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "ReceiverID: not a JoinEUI");
	const char *ns_id = jl_str(req, "SenderNSID");
	if (v11 && !ns_id)
		return answer_error(ans, BI_MALFORMED, pv, "SenderNSID: required in a 1.1 JoinReq");
	if (authorize(peer, sender, err, sizeof err) != 0)
		return answer_error(ans, BI_UNKNOWN_SENDER, pv, "%s", err);

	int req_mac = lw_mac_parse(jl_str(req, "MACVersion"));
	if (req_mac < 0)
		return answer_error(ans, BI_MALFORMED, pv, "MACVersion: missing or unknown");
	long plen = bi_hex_var(req, "PHYPayload", phy, sizeof phy);
	if (plen < 0)
		return answer_error(ans, BI_MALFORMED, pv, "PHYPayload: missing or not hex");
	struct lw_join_request jr;
	if (lw_parse_join_request(phy, (size_t)plen, &jr, err, sizeof err) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "PHYPayload: %s", err);
	if (bi_hex_uint(req, "DevEUI", 8, &dev_eui) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "DevEUI: missing or not 8 bytes of hex");
	if (dev_eui != jr.dev_eui)
		return answer_error(ans, BI_MALFORMED, pv, "DevEUI differs from the join-request's");
	if (jl_has(req, "ReceiverID") && join_eui != jr.join_eui)
		return answer_error(ans, BI_MALFORMED, pv, "ReceiverID differs from the join-request's JoinEUI");

	struct js_join_in in = {.dev_eui = jr.dev_eui, .join_eui = jr.join_eui, .dev_nonce = jr.dev_nonce,
	                        .net_id = (uint32_t)net_id, .join_req_type = 0xFF};
	memcpy(in.phy, phy, 23);
	if (bi_hex_uint(req, "DevAddr", 4, &v) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "DevAddr: missing or not 4 bytes of hex");
	in.dev_addr = (uint32_t)v;
	if (bi_hex_uint(req, "DLSettings", 1, &v) != 0)
		return answer_error(ans, BI_MALFORMED, pv, "DLSettings: missing or not 1 byte of hex");
	in.dl_settings = (uint8_t)v;
	double rx = jl_num(req, "RxDelay", -1);
	if (rx < 0 || rx > 15 || rx != (int)rx)
		return answer_error(ans, BI_MALFORMED, pv, "RxDelay: missing or not 0..15");
	in.rx_delay = (uint8_t)rx;
	long cl = bi_hex_var(req, "CFList", in.cflist, 16);
	if (cl == 16)
		in.has_cflist = true;
	else if (cl != 0 && cl != -2)
		return answer_error(ans, BI_MALFORMED, pv, "CFList: not 16 bytes of hex");

	pthread_rwlock_rdlock(&s->lk);
	const struct js_device *dev = js_devices_find(s->devices, dev_eui);
	if (!dev || dev->join_eui != jr.join_eui) {
		pthread_rwlock_unlock(&s->lk);
		return answer_error(ans, BI_UNKNOWN_DEVEUI, pv, "unknown DevEUI %016llX", (unsigned long long)dev_eui);
	}
	if (dev->n_net_ids && !js_device_allows_net_id(dev, (uint32_t)net_id)) {
		pthread_rwlock_unlock(&s->lk);
		return answer_error(ans, BI_ACTIVATION_DISALLOWED, pv, "the device may not join through NetID %06llX",
		                    (unsigned long long)net_id);
	}
	if (v11 && !js_device_allows_ns_id(dev, ns_id)) {
		pthread_rwlock_unlock(&s->lk);
		return answer_error(ans, BI_ACTIVATION_DISALLOWED, pv, "the device may not join through NSID %s", ns_id);
	}
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
	*p = (struct js_pending){.s = s, .ans = ans, .in = in, .strict = strict, .ns_kek = ns_kek, .as_kek = as_kek,
	                         .ok = jv_invalid(), .fail = jv_invalid(), .wake = wake, .arg = arg};
	snprintf(p->pv, sizeof p->pv, "%s", pv);
	p->peek = js_state_peek(s->state, dev_eui, jr.dev_nonce, strict, &p->jn_guess);
	p->in.join_nonce = p->jn_guess;
	*pending = p;
	js_crypto_join_async(s->crypto, &p->in, p->peek == JS_RESERVE_OK ? JS_JOIN_BOTH : JS_JOIN_CHECK, &p->out,
	                     join_checked, p);
	return jv_invalid();
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

jv js_server_handle_async(struct js_server *s, jv msg, const struct js_peer *peer, js_wake_fn wake, void *arg,
                          struct js_pending **pending)
{
	const char *pv = jl_str(msg, "ProtocolVersion");
	const char *type = jl_str(msg, "MessageType");
	jv ans;
	*pending = NULL;
	js_stats_request(&s->stats, type);
	if (!pv || (strcmp(pv, "1.0") != 0 && strcmp(pv, "1.1") != 0))
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_MALFORMED, pv,
		                   "ProtocolVersion: missing or not 1.0 or 1.1");
	else if (!type)
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_MALFORMED, pv, "MessageType: missing");
	else if (strcmp(type, "HomeNSReq") == 0)
		ans = home_ns_req(s, msg, peer, pv);
	else if (s->identity_server)
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_OTHER, pv, "this server answers HomeNSReq only");
	else if (strcmp(type, "JoinReq") == 0)
		ans = join_req(s, msg, peer, pv, wake, arg, pending);
	else if (strcmp(type, "AppSKeyReq") == 0)
		ans = app_skey_req(s, msg, peer, pv);
	else
		ans = answer_error(bi_answer(msg, "ErrorNotif"), BI_MALFORMED, pv, "MessageType \"%s\" is not served here",
		                   type);
	if (!*pending)
		count_answer(s, ans);
	return ans;
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

jv js_server_handle(struct js_server *s, jv msg, const struct js_peer *peer)
{
	struct sync_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct js_pending *p;
	jv ans = js_server_handle_async(s, msg, peer, sync_wake, &w, &p);
	if (p) {
		pthread_mutex_lock(&w.mu);
		while (!w.woken)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		ans = js_server_finish(p);
	}
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return ans;
}
