/* The registration interface (/rd, /rd/<id>) and Send (/dp): Register, Update, De-register. */
#include "lwm2m_server_int.h"
#include "corelink.h"
#include "log.h"
#include "lwm2m_codec.h"
#include "lwm2m_queue.h"
#include "lwm2m_security.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the registration interface ---- */

void srv_set_code(coap_pdu_t *resp, int code)
{
	coap_pdu_set_code(resp, COAP_RESPONSE_CODE(code));
}

void srv_diag(coap_pdu_t *resp, int code, const char *msg)
{
	srv_set_code(resp, code);
	/* diagnostic payload (RFC 7252 5.5.2) */
	coap_add_data(resp, strlen(msg), (const uint8_t *)msg);
}

struct reg_params {
	char ep[LWM2M_EP_MAX + 1];
	int has_ep, has_lt, has_b, has_sms, has_q, version;
	unsigned long lt;
	char b[8];
	char sms[32];
};

static int parse_uint(const uint8_t *v, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long x = 0;
	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	if (x > max)
		return -1;
	*out = x;
	return 0;
}

static int binding_ok(const char *b)
{
	if (!*b)
		return 0;
	for (const char *p = b; *p; p++)
		if (!strchr("UMHTSNQ", *p) || strchr(p + 1, *p))
			return 0;
	return 1;
}

/* Query parameters of Register and Update. 0, or an error code with *why. */
static int parse_query(const coap_pdu_t *req, struct reg_params *p, const char **why)
{
	coap_opt_iterator_t it;
	coap_opt_filter_t f;
	coap_opt_t *o;
	memset(p, 0, sizeof *p);
	p->version = 10;
	coap_option_filter_clear(&f);
	coap_option_filter_set(&f, COAP_OPTION_URI_QUERY);
	coap_option_iterator_init(req, &it, &f);
	while ((o = coap_option_next(&it)) != NULL) {
		const uint8_t *v = coap_opt_value(o);
		size_t n = coap_opt_length(o);
		const uint8_t *eq = memchr(v, '=', n);
		size_t kl = eq ? (size_t)(eq - v) : n;
		const uint8_t *val = eq ? eq + 1 : v + n;
		size_t vl = eq ? n - kl - 1 : 0;
#define KEY(k) (kl == strlen(k) && memcmp(v, k, kl) == 0)
		if (KEY("ep")) {
			if (vl == 0 || vl > LWM2M_EP_MAX) {
				*why = "endpoint name empty or too long";
				return 400;
			}
			for (size_t i = 0; i < vl; i++)
				if (val[i] < 0x20 || val[i] == 0x7f) {
					*why = "control character in the endpoint name";
					return 400;
				}
			memcpy(p->ep, val, vl);
			p->ep[vl] = 0;
			p->has_ep = 1;
		} else if (KEY("lt")) {
			if (parse_uint(val, vl, 0xffffffffUL, &p->lt) < 0 || p->lt == 0) {
				*why = "lifetime is not a positive integer";
				return 400;
			}
			p->has_lt = 1;
		} else if (KEY("lwm2m")) {
			if (vl == 3 && val[1] == '.' && val[0] == '1' && val[2] >= '0' && val[2] <= '2') {
				p->version = 10 + (val[2] - '0');
			} else {
				*why = "unsupported LwM2M version (1.0, 1.1 and 1.2 are)";
				return 412;
			}
		} else if (KEY("b")) {
			if (vl == 0 || vl >= sizeof p->b) {
				*why = "invalid binding";
				return 400;
			}
			memcpy(p->b, val, vl);
			p->b[vl] = 0;
			if (!binding_ok(p->b)) {
				*why = "invalid binding";
				return 400;
			}
			p->has_b = 1;
		} else if (KEY("sms")) {
			if (vl >= sizeof p->sms) {
				*why = "MSISDN too long";
				return 400;
			}
			memcpy(p->sms, val, vl);
			p->sms[vl] = 0;
			p->has_sms = 1;
		} else if (KEY("Q")) {
			p->has_q = 1;
		}
		/* other parameters (apn, ...) are not ours to judge */
#undef KEY
	}
	return 0;
}

/* The request's body, whole: Block1 transfers reach the handlers put together (srv_block1_add, on
 * our socket and on DTLS sessions); a part that came otherwise (an offset, or a total larger
 * than what came) is refused, never judged as the body. 0, or a CoAP error code. */
static int whole_body(const coap_pdu_t *req, const uint8_t **data, size_t *len, const char **why)
{
	size_t off = 0, total = 0;
	coap_block_t b;
	*data = NULL;
	*len = 0;
	if (!coap_get_data_large(req, len, data, &off, &total))
		return 0;
	/* libcoap removes Block1 from a body it assembled: one still there marks a part */
	if (coap_get_block(req, COAP_OPTION_BLOCK1, &b) && (b.num || b.m) && !off)
		off = (size_t)b.num << (b.szx + 4);
	if (coap_get_block(req, COAP_OPTION_BLOCK1, &b) && b.m && total <= *len + off)
		total = off + *len + 1;
	if (total > MAX_PAYLOAD || off + *len > MAX_PAYLOAD) {
		*why = "request body too large";
		return 413;
	}
	if (off != 0) {
		*why = "Block1 block without the blocks before it";
		return 408;
	}
	if (total > *len) {
		*why = "Block1 part without the rest of its body";
		return 408;
	}
	return 0;
}

static int payload_links(const coap_pdu_t *req, struct lwm2m_links *l, int *present, const char **why)
{
	static char err[128];
	size_t len = 0;
	const uint8_t *data = NULL;
	int code;
	*present = 0;
	memset(l, 0, sizeof *l);
	if ((code = whole_body(req, &data, &len, why)) != 0)
		return code;
	if (len == 0)
		return 0;
	*present = 1;
	if (lwm2m_links_parse((const char *)data, len, l, err, sizeof err) < 0) {
		*why = err;
		return 400;
	}
	return 0;
}

static void set_links(struct lwm2m_reg *g, struct lwm2m_links *l)
{
	free(g->objects);
	g->objects = l->objects;
	g->nobjects = (uint32_t)l->nobjects;
	l->objects = NULL;
	g->nct = 0;
	for (size_t i = 0; i < l->nct && i < 4; i++)
		g->ct[g->nct++] = l->ct[i];
}

void srv_addr_from_session(coap_session_t *cs, union lwm2m_addr *a)
{
	if (!cs) {
		*a = *lwm2m_srv->from;
		return;
	}
	const coap_address_t *ra = coap_session_get_addr_remote(cs);
	memset(a, 0, sizeof *a);
	if (ra->addr.sa.sa_family == AF_INET)
		a->sin = ra->addr.sin;
	else if (ra->addr.sa.sa_family == AF_INET6)
		a->sin6 = ra->addr.sin6;
}

static void drop_session(struct lwm2m_reg *g)
{
	if (g->session == NOSEC) {
		lwm2m_reg_addr_unlink(&lwm2m_srv->reg, g);
	} else if (g->session) {
		if (srv_session_reg(g->session) == g)
			coap_session_set_app_data(g->session, NULL);
		coap_session_release(g->session);
	}
	g->session = NULL;
}

/* Make cs the way to reach g (the session is kept while the registration lives); a NULL cs
 * means our own socket, at the address of the datagram at hand. */
static void attach_session(struct lwm2m_reg *g, coap_session_t *cs)
{
	if (!cs) {
		struct lwm2m_reg *other = lwm2m_reg_by_addr(&lwm2m_srv->reg, lwm2m_srv->from);
		if (g->session == NOSEC && other == g)
			return;
		if (other && other != g)
			drop_session(other); /* another endpoint at the same address and port: it moved away */
		drop_session(g);
		g->addr = *lwm2m_srv->from;
		g->session = NOSEC;
		lwm2m_reg_addr_link(&lwm2m_srv->reg, g);
		return;
	}
	if (g->session == cs)
		return;
	struct lwm2m_reg *other = srv_session_reg(cs);
	if (other && other != g) {
		/* another endpoint at the same address and port: it moved away */
		other->session = NULL;
		coap_session_release(cs);
	}
	drop_session(g);
	g->session = coap_session_reference(cs);
	coap_session_set_app_data(cs, g);
	coap_fixed_point_t at = {(uint16_t)lwm2m_srv->o.ack_timeout,
	                         (uint16_t)((lwm2m_srv->o.ack_timeout - (uint16_t)lwm2m_srv->o.ack_timeout) * 1000)};
	coap_session_set_ack_timeout(cs, at);
	coap_session_set_max_retransmit(cs, (uint16_t)lwm2m_srv->o.max_retransmit);
	srv_addr_from_session(cs, &g->addr);
}

void srv_detach_session(struct lwm2m_reg *g)
{
	drop_session(g);
}

/* Take a registration out: end its observations, hand its held requests to next (re-Register)
 * or answer them, and free it. */
void srv_drop_reg(struct lwm2m_server *s, struct lwm2m_reg *g, struct lwm2m_reg *next, const char *why)
{
	struct lwm2m_request *rq, *nrq;
	if (next)
		lwm2m_queue_move(g, next);
	else
		while ((rq = lwm2m_queue_pop(g)) != NULL) {
			rq->state = RQ_NEW;
			srv_reply_status(s, rq, "unknown-endpoint", why, 0);
		}
	for (rq = g->reqs; rq; rq = nrq) {
		nrq = rq->reg_next;
		if (rq->state == RQ_HELD && next) {
			srv_unlink_reg(rq);
			rq->reg = next;
			rq->reg_prev = NULL;
			rq->reg_next = next->reqs;
			if (next->reqs)
				next->reqs->reg_prev = rq;
			next->reqs = rq;
		} else if (rq->state == RQ_OBSERVING) {
			srv_end_observation(s, rq, why, 1);
		} else {
			srv_unlink_reg(rq); /* in flight: its answer still finds it by token */
		}
	}
	srv_detach_session(g);
	lwm2m_reg_unlink(&s->reg, g);
	lwm2m_reg_free(g);
	s->dirty = 1;
}

/* Written down before the device is told (2.01, 2.04, 2.02), so that a kill -9 between two saves
 * loses no change a device saw acknowledged. */
static int journal(struct lwm2m_server *s, const struct lwm2m_reg *g, enum lwm2m_journal_op op, coap_pdu_t *resp)
{
	if (!s->state_file[0] || lwm2m_registry_journal(&s->reg, s->state_file, g, op) == 0)
		return 0;
	s->st.save_errors++;
	log_error("unable to journal the registration of %s in %s.journal: %s", g->ep, s->state_file, strerror(errno));
	srv_diag(resp, 500, "unable to keep the registration");
	return -1;
}

void srv_hnd_register(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                      coap_pdu_t *resp)
{
	struct lwm2m_server *s = lwm2m_srv;
	struct reg_params p;
	struct lwm2m_links l;
	const char *why = NULL;
	int present, code;
	(void)res;
	(void)query;
	if ((code = parse_query(req, &p, &why)) != 0 || (code = payload_links(req, &l, &present, &why)) != 0) {
		s->st.rejected_registrations++;
		log_info("register from %s refused: %s", srv_peer_str(cs), why);
		srv_diag(resp, code, why);
		return;
	}
	if (!p.has_ep) {
		s->st.rejected_registrations++;
		lwm2m_links_free(&l);
		srv_diag(resp, 400, "missing endpoint name (ep)");
		return;
	}
	int sec;
	char ident[256];
	if (lwm2m_security_check(s->o.security, cs, p.ep, &sec, ident, sizeof ident, &why) < 0) {
		s->st.rejected_registrations++;
		log_warn("register of %s from %s%s%s refused: %s", p.ep, srv_peer_str(cs), *ident ? " as " : "",
		         ident, why);
		lwm2m_links_free(&l);
		srv_diag(resp, 403, why);
		return;
	}
	struct lwm2m_reg *old = lwm2m_reg_by_ep(&s->reg, p.ep);
	union lwm2m_addr from;
	srv_addr_from_session(cs, &from);
	if (s->o.max_per_address &&
	    lwm2m_registry_from(&s->reg, &from) - (old && lwm2m_reg_counted_under(old, &from)) >= s->o.max_per_address) {
		/* one address making up endpoint names: refuse rather than let it fill memory; say so
		 * once a minute, the count is in stats */
		s->st.rejected_registrations++;
		if (s->st.refused_per_address++ == 0 || lwm2m_now() - s->last_flood_log >= 60) {
			log_warn("register of %s from %s refused: %u registrations from that address already (-P); "
			         "%llu refused so far",
			         p.ep, srv_peer_str(cs), s->o.max_per_address,
			         (unsigned long long)s->st.refused_per_address);
			s->last_flood_log = lwm2m_now();
		}
		lwm2m_links_free(&l);
		srv_diag(resp, 503, "too many registrations from this address");
		return;
	}
	struct lwm2m_reg *g = lwm2m_reg_new(&s->reg, p.ep, 0);
	if (!g) {
		lwm2m_links_free(&l);
		srv_diag(resp, 500, "out of memory");
		return;
	}
	/* to the millisecond, as the events show times (and they print in a few instructions) */
	double now = srv_round_ms(lwm2m_now());
	g->lt = p.has_lt ? (uint32_t)p.lt : 86400;
	g->version = (uint8_t)p.version;
	snprintf(g->binding, sizeof g->binding, "%s", p.has_b ? p.b : "U");
	g->queue = p.has_q || strchr(g->binding, 'Q') != NULL;
	g->sms = p.has_sms ? strdup(p.sms) : NULL;
	g->registered = g->updated = now;
	g->sec = (uint8_t)sec;
	g->identity = *ident ? strdup(ident) : NULL;
	set_links(g, &l);
	g->addr = from;
	if (journal(s, g, LWM2M_JOURNAL_SET, resp) < 0) {
		lwm2m_reg_free(g);
		return;
	}
	char more[32] = "";
	if (old) {
		memcpy(more, ",\"replaced\":\"", 13);
		lwm2m_reg_id_str(old->id, more + 13);
		memcpy(more + 21, "\"", 2);
		srv_drop_reg(s, old, g, "registration replaced by a new Register");
	}
	lwm2m_reg_insert(&s->reg, g);
	attach_session(g, cs);
	if (!cs) {
		g->has_reg_mid = 1;
		g->reg_mid = coap_pdu_get_mid(req);
	}
	if (g->queue)
		g->awake_until = now + s->o.awake_time;
	s->dirty = 1;
	s->st.registers++;

	char id[9];
	lwm2m_reg_id_str(g->id, id);
	srv_set_code(resp, 201);
	coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 2, (const uint8_t *)"rd");
	coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 8, (const uint8_t *)id);
	srv_emit_line(s, "register", g, more, strlen(more), jv_null());
	if (g->q)
		srv_flush_held(s, g);
}

/* The "changed" member of an update event, as JSON text. */
struct changed {
	char text[96];
	size_t len;
};

static void changed_add(struct changed *c, const char *what)
{
	size_t n = strlen(what);
	if (c->text[c->len - 1] != '[')
		c->text[c->len++] = ',';
	c->text[c->len++] = '"';
	memcpy(c->text + c->len, what, n);
	c->len += n;
	c->text[c->len++] = '"';
}

/* Leshan's check: only the identity an endpoint is bound to may update or de-register it. */
static int update_refused(struct lwm2m_server *s, struct lwm2m_reg *g, coap_session_t *cs, coap_pdu_t *resp,
                          const char *what)
{
	int sec;
	char ident[256];
	const char *why = NULL;
	if (lwm2m_security_check(s->o.security, cs, g->ep, &sec, ident, sizeof ident, &why) == 0 &&
	    sec == g->sec && (!g->identity || strcmp(g->identity, ident) == 0))
		return 0;
	if (!why)
		why = "not the security the endpoint registered with";
	log_warn("%s of %s from %s%s%s refused: %s", what, g->ep, srv_peer_str(cs), *ident ? " as " : "", ident,
	         why);
	srv_diag(resp, 403, why);
	return 1;
}

/* /rd/<id> (Update, De-register) and /dp (Send) */
void srv_hnd_other(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                   coap_pdu_t *resp)
{
	struct lwm2m_server *s = lwm2m_srv;
	(void)res;
	(void)query;
	coap_opt_iterator_t it;
	coap_opt_filter_t f;
	coap_opt_t *o;
	const uint8_t *seg[3];
	size_t segl[3];
	int nseg = 0;
	coap_option_filter_clear(&f);
	coap_option_filter_set(&f, COAP_OPTION_URI_PATH);
	coap_option_iterator_init(req, &it, &f);
	while ((o = coap_option_next(&it)) != NULL) {
		if (nseg == 3) {
			srv_set_code(resp, 404);
			return;
		}
		seg[nseg] = coap_opt_value(o);
		segl[nseg++] = coap_opt_length(o);
	}
	coap_pdu_code_t method = coap_pdu_get_code(req);
	if (nseg == 1 && segl[0] == 2 && memcmp(seg[0], "dp", 2) == 0) {
		if (method != COAP_REQUEST_CODE_POST) {
			srv_set_code(resp, 405);
			return;
		}
		struct lwm2m_reg *g = srv_session_reg(cs);
		if (!g) {
			srv_diag(resp, 404, "not registered");
			return;
		}
		srv_touch(s, g);
		size_t len = 0;
		const uint8_t *data = NULL;
		unsigned ct = LWM2M_CT_SENML_JSON;
		const char *why = NULL;
		int code = whole_body(req, &data, &len, &why);
		if (code) {
			log_info("send from %s refused: %s", g->ep, why);
			srv_diag(resp, code, why);
			return;
		}
		srv_opt_uint(req, COAP_OPTION_CONTENT_FORMAT, &ct);
		s->st.sends++;
		struct lwm2m_path root = {0};
		jv vals = lwm2m_decode((int)ct, &root, data, len);
		jv extra = jv_is_valid(vals) ? jv_object_set(jv_object(), jv_string("values"), vals) : vals;
		if (!jv_is_valid(extra)) {
			jv msg = jv_invalid_get_msg(extra);
			srv_diag(resp, 400, jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "undecodable");
			jv_free(msg);
			return;
		}
		srv_set_code(resp, 204);
		srv_emit(s, "send", g, extra);
		return;
	}
	if (nseg != 2 || segl[0] != 2 || memcmp(seg[0], "rd", 2) != 0) {
		srv_set_code(resp, 404);
		return;
	}
	struct lwm2m_reg *g = lwm2m_reg_by_id(&s->reg, lwm2m_reg_id_parse((const char *)seg[1], segl[1]));
	if (!g) {
		srv_diag(resp, 404, "no such registration");
		return;
	}
	if (update_refused(s, g, cs, resp, method == COAP_REQUEST_CODE_DELETE ? "de-register" : "update"))
		return;
	if (method == COAP_REQUEST_CODE_DELETE) {
		if (journal(s, g, LWM2M_JOURNAL_DEL, resp) < 0)
			return;
		s->st.deregisters++;
		srv_set_code(resp, 202);
		srv_emit(s, "deregister", g, jv_null());
		srv_drop_reg(s, g, NULL, "the device de-registered");
		return;
	}
	if (method != COAP_REQUEST_CODE_POST) {
		srv_set_code(resp, 405);
		return;
	}
	struct reg_params p;
	struct lwm2m_links l;
	const char *why = NULL;
	int present, code;
	if ((code = parse_query(req, &p, &why)) != 0 || (code = payload_links(req, &l, &present, &why)) != 0) {
		log_info("update of %s refused: %s", g->ep, why);
		srv_diag(resp, code, why);
		return;
	}
	struct changed changed = {",\"changed\":[", 12};
	if (p.has_lt && p.lt != g->lt) {
		g->lt = (uint32_t)p.lt;
		changed_add(&changed, "lt");
	}
	if (p.has_b && strcmp(p.b, g->binding) != 0) {
		snprintf(g->binding, sizeof g->binding, "%s", p.b);
		changed_add(&changed, "b");
	}
	/* 1.0 says queue mode in the binding; 1.1 with the Q parameter, which an Update may omit */
	int q = g->version == 10 ? strchr(g->binding, 'Q') != NULL : (g->queue || p.has_q);
	if (q != g->queue) {
		g->queue = (uint8_t)q;
		g->awake_until = lwm2m_now() + s->o.awake_time;
		changed_add(&changed, "queue");
	}
	if (p.has_sms && (!g->sms || strcmp(p.sms, g->sms) != 0)) {
		free(g->sms);
		g->sms = strdup(p.sms);
		changed_add(&changed, "sms");
	}
	if (present) {
		int same = l.nobjects == g->nobjects &&
		           (l.nobjects == 0 || memcmp(l.objects, g->objects, l.nobjects * sizeof *l.objects) == 0);
		set_links(g, &l);
		if (!same)
			changed_add(&changed, "objects");
	}
	lwm2m_links_free(&l);
	union lwm2m_addr a;
	srv_addr_from_session(cs, &a);
	if (!lwm2m_addr_equal(&a, &g->addr) || !g->session) {
		if (!lwm2m_addr_equal(&a, &g->addr))
			changed_add(&changed, "addr");
		/* restored after a restart: reachable again, its observations are to be made anew */
		if (!g->session)
			changed_add(&changed, "session");
		attach_session(g, cs);
	}
	g->updated = srv_round_ms(lwm2m_now());
	s->dirty = 1;
	if (journal(s, g, LWM2M_JOURNAL_SET, resp) < 0)
		return;
	s->st.updates++;
	srv_set_code(resp, 204);
	changed.text[changed.len++] = ']';
	srv_emit_line(s, "update", g, changed.text, changed.len, jv_null());
	srv_touch(s, g);
}
