#include "lwm2m_server.h"
#include "lwm2m_server_int.h"
#include "lwm2m_dtls.h"
#include "lwm2m_security.h"

#include "corelink.h"
#include "fsutil.h"
#include "json_out.h"
#include "json_fast.h"
#include "jsonl.h"
#include "log.h"
#include "lwm2m_codec.h"
#include "lwm2m_queue.h"
#include "lwm2m_udp.h"

#include <coap3/coap.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct lwm2m_server *lwm2m_srv;
char srv_nosec_marker;

#define DTLS_REP_MAX 32 /* most datagrams read from the DTLS endpoint per libcoap call */
#define IO_BATCH 256            /* datagrams handled per lwm2m_server_io call at most */

void *srv_sess_ref(void *cs)
{
	return cs && cs != NOSEC ? coap_session_reference(cs) : cs;
}

void srv_sess_release(void *cs)
{
	if (cs && cs != NOSEC)
		coap_session_release(cs);
}

/* For log lines: the session, or the peer of the datagram at hand on our socket. */
const char *srv_peer_str(coap_session_t *cs)
{
	static char buf[80];
	if (cs)
		return coap_session_str(cs);
	if (!lwm2m_srv || !lwm2m_srv->from)
		return "?";
	lwm2m_addr_str(lwm2m_srv->from, buf, sizeof buf);
	return buf;
}


double lwm2m_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double srv_round_ms(double t)
{
	return (double)(long long)(t * 1000) / 1000;
}

/* One event line: {"event", the registration's members (register, update) or its ep and reg,
 * then more (members as JSON text, after a comma) and extra's members, then "time"}. Written
 * as text, byte for byte what jq printed for the object these members made (insertion order):
 * building it as a jq object and dumping it cost more than the rest of a Register. */
void srv_emit_line(struct lwm2m_server *s, const char *event, struct lwm2m_reg *g, const char *more,
                   size_t nmore, jv extra)
{
	char stack[1024];
	struct jbuf b = {.p = stack, .cap = sizeof stack, .borrowed = 1};
	JBUF_LIT(&b, "{\"event\":");
	json_out_string(&b, event, strlen(event));
	if (g && (strcmp(event, "register") == 0 || strcmp(event, "update") == 0)) {
		JBUF_LIT(&b, ",");
		lwm2m_reg_json_text(&b, g);
	} else if (g) {
		char id[9];
		lwm2m_reg_id_str(g->id, id);
		JBUF_LIT(&b, ",\"ep\":");
		json_out_cstring(&b, g->ep, strlen(g->ep));
		JBUF_LIT(&b, ",\"reg\":");
		json_out_string(&b, id, 8);
	}
	if (nmore)
		jbuf_add(&b, more, nmore);
	if (jv_get_kind(extra) == JV_KIND_OBJECT) {
		jv_object_foreach(extra, k, v) {
			JBUF_LIT(&b, ",");
			json_out_append(&b, k);
			JBUF_LIT(&b, ":");
			json_out_append(&b, v);
			jv_free(k);
			jv_free(v);
		}
	}
	jv_free(extra);
	JBUF_LIT(&b, ",\"time\":");
	json_out_number(&b, srv_round_ms(lwm2m_now()));
	JBUF_LIT(&b, "}\n");
	if (b.failed)
		log_error("out of memory for an event line: %s of %s lost", event, g ? g->ep : "-");
	else
		s->cb.event(b.p, b.len, s->cb.ud);
	if (!b.borrowed)
		free(b.p);
}

void srv_emit(struct lwm2m_server *s, const char *event, struct lwm2m_reg *g, jv extra)
{
	srv_emit_line(s, event, g, NULL, 0, extra);
}

/* ---- requests ---- */

struct lwm2m_request *lwm2m_request_new(jv cmd, uint64_t client)
{
	struct lwm2m_request *rq = calloc(1, sizeof *rq);
	if (!rq) {
		jv_free(cmd);
		return NULL;
	}
	rq->cmd = cmd;
	rq->client = client;
	rq->observe = -1;
	rq->ct = rq->accept = -1;
	rq->cancel_cmd = jv_invalid();
	return rq;
}

void lwm2m_request_free(struct lwm2m_request *rq)
{
	if (!rq)
		return;
	for (int i = 0; i < rq->nqueries; i++)
		free(rq->queries[i]);
	free(rq->payload);
	free(rq->body);
	free(rq->cancel_reason);
	jv_free(rq->cmd);
	jv_free(rq->cancel_cmd);
	free(rq);
}

jv lwm2m_request_cmd(const struct lwm2m_request *rq)
{
	if (jv_get_kind(rq->cmd) == JV_KIND_STRING) {
		/* our own compact text (compact_cmd), so well-formed: the quick parser takes it unless it
		 * has escapes; an observation's command is read again for each notification */
		const char *t = jv_string_value(rq->cmd);
		jv v = json_fast_parse(t, strlen(t));
		return jv_is_valid(v) ? v : jv_parse(t);
	}
	return jv_copy(rq->cmd);
}

/* Long-lived requests keep the command as text: a small jq object costs hundreds of bytes. */
static void compact_cmd(struct lwm2m_request *rq)
{
	if (jv_get_kind(rq->cmd) == JV_KIND_OBJECT)
		rq->cmd = jv_dump_string(rq->cmd, 0);
}

static void link_rq(struct lwm2m_server *s, struct lwm2m_request *rq, struct lwm2m_reg *g)
{
	rq->all_prev = NULL;
	rq->all_next = s->all;
	if (s->all)
		s->all->all_prev = rq;
	s->all = rq;
	rq->reg = g;
	rq->reg_prev = NULL;
	rq->reg_next = g->reqs;
	if (g->reqs)
		g->reqs->reg_prev = rq;
	g->reqs = rq;
}

void srv_unlink_reg(struct lwm2m_request *rq)
{
	struct lwm2m_reg *g = rq->reg;
	if (!g)
		return;
	if (rq->reg_prev)
		rq->reg_prev->reg_next = rq->reg_next;
	else
		g->reqs = rq->reg_next;
	if (rq->reg_next)
		rq->reg_next->reg_prev = rq->reg_prev;
	rq->reg_prev = rq->reg_next = NULL;
	rq->reg = NULL;
}

/* Report and, when final, forget the request. */
static void reply(struct lwm2m_server *s, struct lwm2m_request *rq, struct lwm2m_reply *rep)
{
	if (rep->notify && rq->client != UINT64_MAX)
		s->st.notifications_out++;
	s->cb.reply(rq, rep, s->cb.ud);
	if (!rep->final)
		return;
	if (rq->state == RQ_OBSERVING || rq->state == RQ_CANCELLING) {
		s->nobs--;
		if (rq->reg && rq->reg->nobs)
			rq->reg->nobs--;
	}
	if (rq->state == RQ_INFLIGHT)
		s->ninflight--;
	srv_tok_del(s, rq);
	srv_unlink_reg(rq);
	if (rq->all_prev)
		rq->all_prev->all_next = rq->all_next;
	else if (s->all == rq)
		s->all = rq->all_next;
	if (rq->all_next)
		rq->all_next->all_prev = rq->all_prev;
	srv_sess_release(rq->session);
	if (rq->xmit)
		lwm2m_udp_cancel(s->udp, rq->xmit);
	rq->xmit = NULL;
	rq->state = RQ_DONE;
	lwm2m_request_free(rq);
}

void srv_reply_status(struct lwm2m_server *s, struct lwm2m_request *rq, const char *status, const char *error,
                      int notify)
{
	struct lwm2m_reply rep = {.status = status, .error = error, .ct = -1, .notify = notify, .final = 1};
	reply(s, rq, &rep);
}

static void token_bytes(uint64_t t, uint8_t b[8])
{
	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)t;
		t >>= 8;
	}
}

static void release_payload(coap_session_t *session, void *p)
{
	(void)session;
	free(p);
}

#define UDP_SZX 6 /* payloads we send to NoSec devices go in 1024-byte blocks when larger */

/* One message of rq to a NoSec device: the request (or its next Block1 part, or the GET for
 * the next Block2 part), or with cancel the GET that ends its observation (RFC 7641 3.6). */
static int udp_send_rq(struct lwm2m_server *s, struct lwm2m_reg *g, struct lwm2m_request *rq, int cancel, int con)
{
	uint8_t buf[1400], tok[8];
	char seg[8];
	struct lwm2m_coapw w;
	token_bytes(rq->token, tok);
	/* an Observe-Composite ends with the same FETCH and body (RFC 8132 2.4), others with a GET */
	int cancel_fetch = cancel && rq->method == COAP_REQUEST_CODE_FETCH;
	lwm2m_coapw_begin(&w, buf, sizeof buf, con ? COAP_MESSAGE_CON : COAP_MESSAGE_NON,
	                  cancel && !cancel_fetch ? COAP_REQUEST_CODE_GET : rq->method, lwm2m_udp_mid(s->udp), tok,
	                  sizeof tok);
	if (cancel)
		lwm2m_coapw_opt_uint(&w, COAP_OPTION_OBSERVE, 1);
	else if (rq->observe >= 0 && rq->bmode != 2)
		lwm2m_coapw_opt_uint(&w, COAP_OPTION_OBSERVE, (uint32_t)rq->observe);
	for (int i = 0; i < rq->path.len; i++) {
		int n = snprintf(seg, sizeof seg, "%u", rq->path.id[i]);
		lwm2m_coapw_opt(&w, COAP_OPTION_URI_PATH, seg, (size_t)n);
	}
	int with_payload = (!cancel || cancel_fetch) && rq->payload && rq->bmode != 2;
	if (with_payload && rq->ct >= 0)
		lwm2m_coapw_opt_uint(&w, COAP_OPTION_CONTENT_FORMAT, (uint32_t)rq->ct);
	for (int i = 0; !cancel && i < rq->nqueries; i++)
		lwm2m_coapw_opt(&w, COAP_OPTION_URI_QUERY, rq->queries[i], strlen(rq->queries[i]));
	if (rq->accept >= 0)
		lwm2m_coapw_opt_uint(&w, COAP_OPTION_ACCEPT, (uint32_t)rq->accept);
	if (!cancel && rq->bmode == 2)
		lwm2m_coapw_opt_uint(&w, COAP_OPTION_BLOCK2, rq->block << 4 | rq->szx);
	const uint8_t *data = with_payload ? rq->payload : NULL;
	size_t len = with_payload ? rq->len : 0;
	if (with_payload && rq->bmode == 1 && !cancel) {
		size_t bs = (size_t)1 << (rq->b1szx + 4), off = (size_t)rq->block * bs;
		int more = off + bs < rq->len;
		lwm2m_coapw_opt_uint(&w, COAP_OPTION_BLOCK1, rq->block << 4 | (more ? 8 : 0) | rq->b1szx);
		if (rq->block == 0)
			lwm2m_coapw_opt_uint(&w, COAP_OPTION_SIZE1, (uint32_t)rq->len);
		data += off;
		len = more ? bs : rq->len - off;
	}
	lwm2m_coapw_payload(&w, data, len);
	if (w.overflow)
		return -1;
	if (!con)
		return lwm2m_udp_send(s->udp, &g->addr, buf, w.len);
	if (rq->xmit)
		lwm2m_udp_cancel(s->udp, rq->xmit);
	rq->xmit = lwm2m_udp_send_con(s->udp, &g->addr, buf, w.len, s->o.ack_timeout, s->o.max_retransmit, rq);
	return rq->xmit ? 0 : -1;
}

/* Put rq on the wire on g's session. */
static void send_rq(struct lwm2m_server *s, struct lwm2m_reg *g, struct lwm2m_request *rq)
{
	coap_session_t *cs = g->session;
	if (g->session == NOSEC) {
		rq->token = ++s->next_token;
		rq->bmode = rq->payload && rq->len > (1u << (UDP_SZX + 4)) ? 1 : 0;
		rq->block = 0;
		rq->b1szx = UDP_SZX;
		rq->state = RQ_INFLIGHT;
		rq->since = lwm2m_now();
		rq->session = NOSEC;
		srv_tok_add(s, rq);
		s->ninflight++;
		s->st.requests++;
		if (udp_send_rq(s, g, rq, 0, 1) < 0) {
			s->st.errors++;
			srv_reply_status(s, rq, "send-failed", "unable to build or send the CoAP request", 0);
		}
		return;
	}
	/* a request without payload gets a small buffer: libcoap keeps a copy of it for every
	 * observation (the skeleton PDU of its lg_crcv) */
	size_t maxpdu = coap_session_max_pdu_size(cs);
	if (!rq->payload && maxpdu > 128)
		maxpdu = 128;
	coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, (coap_pdu_code_t)rq->method, coap_new_message_id(cs), maxpdu);
	coap_optlist_t *opts = NULL;
	uint8_t tok[8], buf[8];
	char seg[8];
	if (!pdu)
		goto fail;
	rq->token = ++s->next_token;
	token_bytes(rq->token, tok);
	if (!coap_add_token(pdu, sizeof tok, tok))
		goto fail;
	if (rq->observe >= 0)
		coap_insert_optlist(&opts, coap_new_optlist(COAP_OPTION_OBSERVE,
		                                            coap_encode_var_safe(buf, sizeof buf, (unsigned)rq->observe), buf));
	for (int i = 0; i < rq->path.len; i++) {
		int n = snprintf(seg, sizeof seg, "%u", rq->path.id[i]);
		coap_insert_optlist(&opts, coap_new_optlist(COAP_OPTION_URI_PATH, (size_t)n, (const uint8_t *)seg));
	}
	if (rq->ct >= 0 && rq->payload)
		coap_insert_optlist(&opts, coap_new_optlist(COAP_OPTION_CONTENT_FORMAT,
		                                            coap_encode_var_safe(buf, sizeof buf, (unsigned)rq->ct), buf));
	for (int i = 0; i < rq->nqueries; i++)
		coap_insert_optlist(&opts, coap_new_optlist(COAP_OPTION_URI_QUERY, strlen(rq->queries[i]),
		                                            (const uint8_t *)rq->queries[i]));
	if (rq->accept >= 0)
		coap_insert_optlist(&opts, coap_new_optlist(COAP_OPTION_ACCEPT,
		                                            coap_encode_var_safe(buf, sizeof buf, (unsigned)rq->accept), buf));
	if (opts && !coap_add_optlist_pdu(pdu, &opts))
		goto fail;
	coap_delete_optlist(opts);
	opts = NULL;
	if (rq->payload) {
		/* libcoap splits it into Block1 transfers when it does not fit a datagram */
		uint8_t *p = rq->payload;
		rq->payload = NULL;
		if (!coap_add_data_large_request(cs, pdu, rq->len, p, release_payload, p))
			goto fail;
	}
	rq->state = RQ_INFLIGHT;
	rq->since = lwm2m_now();
	rq->session = srv_sess_ref(cs);
	srv_tok_add(s, rq);
	s->ninflight++;
	s->st.requests++;
	if (coap_send(cs, pdu) == COAP_INVALID_MID) {
		s->st.errors++;
		srv_reply_status(s, rq, "send-failed", "libcoap could not send the request", 0);
	}
	return;
fail:
	coap_delete_optlist(opts);
	if (pdu)
		coap_delete_pdu(pdu);
	s->st.errors++;
	srv_reply_status(s, rq, "send-failed", "unable to build the CoAP request", 0);
}

int srv_reachable(const struct lwm2m_reg *g, double now)
{
	return g->session && !lwm2m_queue_asleep(g, now);
}

void srv_flush_held(struct lwm2m_server *s, struct lwm2m_reg *g)
{
	struct lwm2m_request *rq;
	while (srv_reachable(g, lwm2m_now()) && (rq = lwm2m_queue_pop(g)) != NULL)
		send_rq(s, g, rq);
}

void lwm2m_server_submit(struct lwm2m_server *s, const char *ep, struct lwm2m_request *rq)
{
	struct lwm2m_reg *g = ep ? lwm2m_reg_by_ep(&s->reg, ep) : NULL;
	rq->all_prev = rq->all_next = NULL;
	if (!g) {
		/* not linked: reply() only frees it */
		s->st.errors++;
		srv_reply_status(s, rq, "unknown-endpoint", "no device is registered with this endpoint name", 0);
		return;
	}
	link_rq(s, rq, g);
	if (srv_reachable(g, lwm2m_now()) && !g->q) {
		send_rq(s, g, rq);
		return;
	}
	rq->since = lwm2m_now();
	rq->state = RQ_HELD;
	if (lwm2m_queue_push(g, rq, s->o.queue_max) < 0) {
		s->st.queue_full++;
		srv_reply_status(s, rq, "queue-full", "too many requests are held for this sleeping device", 0);
		return;
	}
	s->st.held++;
	if (srv_reachable(g, lwm2m_now()))
		srv_flush_held(s, g);
}

/* The request (Observe 1) that ends rq's observation, sent on cs, the registration's DTLS
 * session now. libcoap's coap_cancel_observe sends it only on the session the observation was
 * made on (it keeps the request there): a device that came back from another address (a NAT
 * rebinding, a new handshake, then an Update) is reached on another session, where the GET is
 * made here (RFC 7641 3.6: the same token and options). An Observe-Composite FETCH, whose body
 * libcoap kept, cannot be made again: 0. */
static int dtls_cancel(coap_session_t *cs, struct lwm2m_request *rq, coap_pdu_type_t type)
{
	uint8_t tok[8], buf[8];
	char seg[8];
	token_bytes(rq->token, tok);
	if (rq->session == cs) {
		coap_binary_t b = {sizeof tok, tok};
		return coap_cancel_observe(cs, &b, type) != 0;
	}
	if (rq->method != COAP_REQUEST_CODE_GET)
		return 0;
	coap_pdu_t *pdu = coap_pdu_init(type, COAP_REQUEST_CODE_GET, coap_new_message_id(cs), coap_session_max_pdu_size(cs));
	if (!pdu)
		return 0;
	int ok = coap_add_token(pdu, sizeof tok, tok) &&
	         coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof buf, COAP_OBSERVE_CANCEL), buf);
	for (int i = 0; ok && i < rq->path.len; i++) {
		int n = snprintf(seg, sizeof seg, "%u", rq->path.id[i]);
		ok = coap_add_option(pdu, COAP_OPTION_URI_PATH, (size_t)n, (const uint8_t *)seg) != 0;
	}
	for (int i = 0; ok && i < rq->nqueries; i++)
		ok = coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(rq->queries[i]), (const uint8_t *)rq->queries[i]) != 0;
	if (ok && rq->accept >= 0)
		ok = coap_add_option(pdu, COAP_OPTION_ACCEPT, coap_encode_var_safe(buf, sizeof buf, (unsigned)rq->accept), buf) != 0;
	if (!ok) {
		coap_delete_pdu(pdu);
		return 0;
	}
	if (coap_send(cs, pdu) == COAP_INVALID_MID)
		return 0;
	/* its answer comes on cs: keep it while rq waits for it */
	srv_sess_release(rq->session);
	rq->session = srv_sess_ref(cs);
	return 1;
}

/* End an observation locally; the device learns of it with a cancel when we can reach it. */
void srv_end_observation(struct lwm2m_server *s, struct lwm2m_request *rq, const char *why, int tell_device)
{
	if (tell_device && rq->session == NOSEC && rq->reg && rq->reg->session == NOSEC)
		udp_send_rq(s, rq->reg, rq, 1, 0);
	else if (tell_device && rq->session && rq->session != NOSEC && rq->reg && rq->reg->session &&
	         rq->reg->session != NOSEC)
		dtls_cancel(rq->reg->session, rq, COAP_MESSAGE_NON);
	srv_reply_status(s, rq, "cancelled", why, 1);
}

int lwm2m_server_cancel_observe(struct lwm2m_server *s, const char *ep, const char *path, uint64_t client, jv cmd)
{
	struct lwm2m_reg *g = lwm2m_reg_by_ep(&s->reg, ep);
	struct lwm2m_request *rq;
	for (rq = g ? g->reqs : NULL; rq; rq = rq->reg_next) {
		if (rq->observe != 0 || rq->client != client || (rq->state != RQ_OBSERVING && rq->state != RQ_HELD &&
		                                                 rq->state != RQ_INFLIGHT))
			continue;
		jv cmdo = lwm2m_request_cmd(rq);
		const char *p = jl_str(cmdo, "path");
		jv paths = jl_get(cmdo, "paths");
		int match = p && strcmp(p, path) == 0;
		if (!match && jv_get_kind(paths) == JV_KIND_ARRAY) {
			jv d = jv_dump_string(jv_copy(paths), 0);
			match = strcmp(jv_string_value(d), path) == 0;
			jv_free(d);
		}
		jv_free(paths);
		jv_free(cmdo);
		if (match)
			break;
	}
	if (!rq) {
		jv_free(cmd);
		return -1;
	}
	/* on the device's session now, which a DTLS device that moved has changed */
	if (rq->state == RQ_OBSERVING && rq->session && g->session && (rq->session == NOSEC) == (g->session == NOSEC)) {
		if (rq->session == NOSEC ? udp_send_rq(s, g, rq, 1, 1) == 0
		                         : dtls_cancel(g->session, rq, COAP_MESSAGE_CON)) {
			/* the answer to the cancelling GET goes to the cancel-observe command */
			rq->state = RQ_CANCELLING;
			jv_free(rq->cancel_cmd);
			rq->cancel_cmd = cmd;
			rq->since = lwm2m_now();
			return 0;
		}
	}
	/* held, in flight, or unreachable: forget it here; a later notification gets a Reset */
	struct lwm2m_request *c = lwm2m_request_new(cmd, client);
	if (c) {
		struct lwm2m_reply rep = {.status = "cancelled", .error = "forgotten locally", .ct = -1, .final = 1};
		s->cb.reply(c, &rep, s->cb.ud);
		lwm2m_request_free(c);
	}
	if (rq->state == RQ_HELD) {
		/* take it out of the held list */
		struct lwm2m_queue *q = g->q;
		struct lwm2m_request **pp;
		for (pp = q ? &q->head : NULL; pp && *pp; pp = &(*pp)->held_next)
			if (*pp == rq) {
				*pp = rq->held_next;
				if (q->tail == rq) {
					q->tail = NULL;
					for (struct lwm2m_request *t = q->head; t; t = t->held_next)
						q->tail = t;
				}
				if (--q->len == 0) {
					free(q);
					g->q = NULL;
				}
				break;
			}
		rq->state = RQ_NEW;
	}
	srv_end_observation(s, rq, "cancelled by cancel-observe", 0);
	return 0;
}

unsigned long lwm2m_server_client_requests(const struct lwm2m_server *s, uint64_t client)
{
	unsigned long n = 0;
	for (const struct lwm2m_request *rq = s->all; rq; rq = rq->all_next)
		n += rq->client == client;
	return n;
}

void lwm2m_server_client_gone(struct lwm2m_server *s, uint64_t client)
{
	struct lwm2m_request *rq, *next;
	unsigned long nobs = 0, npending = 0;
	for (rq = s->all; rq; rq = next) {
		next = rq->all_next;
		if (rq->client != client)
			continue;
		if (rq->state == RQ_OBSERVING) {
			/* nobody will read its notifications any more */
			rq->client = UINT64_MAX;
			nobs++;
			srv_end_observation(s, rq, "the connection that made it closed", 1);
		} else {
			rq->client = UINT64_MAX; /* answers are dropped */
			npending++;
		}
	}
	if (nobs || npending)
		log_info("control connection %llu closed: %lu observation%s cancelled on the devices, "
		         "the answers to %lu request%s in progress will be dropped",
		         (unsigned long long)client, nobs, nobs == 1 ? "" : "s", npending, npending == 1 ? "" : "s");
}

/* ---- incoming responses ---- */

struct lwm2m_reg *srv_session_reg(coap_session_t *cs)
{
	if (cs)
		return coap_session_get_app_data(cs);
	/* a datagram on our own socket: the NoSec registration at its address */
	return lwm2m_srv && lwm2m_srv->from ? lwm2m_reg_by_addr(&lwm2m_srv->reg, lwm2m_srv->from) : NULL;
}

void srv_touch(struct lwm2m_server *s, struct lwm2m_reg *g)
{
	if (!g)
		return;
	if (lwm2m_queue_touch(g, lwm2m_now(), s->o.awake_time)) {
		srv_emit(s, "wake", g, jv_null());
	}
	if (g->q)
		srv_flush_held(s, g);
}

static uint64_t token_of(const coap_pdu_t *pdu)
{
	coap_bin_const_t t = coap_pdu_get_token(pdu);
	if (t.length != 8)
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | t.s[i];
	return v;
}

int srv_opt_uint(const coap_pdu_t *pdu, coap_option_num_t num, unsigned *out)
{
	coap_opt_iterator_t it;
	coap_opt_t *o = coap_check_option(pdu, num, &it);
	if (!o)
		return 0;
	*out = coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
	return 1;
}

/* A response or notification as a reply (data points into rcv); *has_obs when it carries Observe. */
static void decode_reply(const coap_pdu_t *rcv, struct lwm2m_reply *rep, int *has_obs)
{
	coap_pdu_code_t c = coap_pdu_get_code(rcv);
	memset(rep, 0, sizeof *rep);
	rep->code = (int)(c >> 5) * 100 + (int)(c & 0x1f);
	rep->ct = -1;
	unsigned v, obs;
	if (srv_opt_uint(rcv, COAP_OPTION_CONTENT_FORMAT, &v))
		rep->ct = (int)v;
	size_t len = 0, off = 0, total = 0;
	const uint8_t *data = NULL;
	if (coap_get_data_large(rcv, &len, &data, &off, &total)) {
		rep->data = data;
		rep->len = len;
	}
	*has_obs = srv_opt_uint(rcv, COAP_OPTION_OBSERVE, &obs);
	coap_opt_iterator_t it;
	coap_opt_filter_t f;
	coap_option_filter_clear(&f);
	coap_option_filter_set(&f, COAP_OPTION_LOCATION_PATH);
	coap_option_iterator_init(rcv, &it, &f);
	coap_opt_t *o;
	size_t ll = 0;
	while ((o = coap_option_next(&it)) != NULL && ll + coap_opt_length(o) + 2 < sizeof rep->location) {
		rep->location[ll++] = '/';
		memcpy(rep->location + ll, coap_opt_value(o), coap_opt_length(o));
		ll += coap_opt_length(o);
	}
	rep->location[ll] = 0;
	if (rep->code >= 400)
		rep->error = coap_response_phrase(c);
}

void srv_deliver(struct lwm2m_server *s, struct lwm2m_request *rq, struct lwm2m_reply *rep, int has_obs)
{
	switch (rq->state) {
	case RQ_INFLIGHT:
		s->st.responses++;
		s->ninflight--;
		if (rq->observe == 0 && has_obs && rep->code / 100 == 2) {
			rq->state = RQ_OBSERVING;
			compact_cmd(rq);
			s->nobs++;
			if (rq->reg)
				rq->reg->nobs++;
			rep->final = 0;
		} else {
			rq->state = RQ_NEW; /* finished */
			rep->final = 1;
		}
		reply(s, rq, rep);
		break;
	case RQ_OBSERVING:
		s->st.notifications_in++;
		rep->notify = 1;
		/* RFC 7641: a notification without Observe, or an error, ends it */
		rep->final = !has_obs || rep->code / 100 != 2;
		reply(s, rq, rep);
		break;
	case RQ_CANCELLING: {
		/* the answer to the cancelling GET goes to the cancel-observe command */
		if (jv_is_valid(rq->cancel_cmd)) {
			struct lwm2m_request *c = lwm2m_request_new(jv_copy(rq->cancel_cmd), rq->client);
			if (c) {
				struct lwm2m_reply r2 = *rep;
				r2.final = 1;
				s->cb.reply(c, &r2, s->cb.ud);
				lwm2m_request_free(c);
			}
		}
		srv_reply_status(s, rq, "cancelled", "cancelled by cancel-observe", 1);
		break;
	}
	default:
		break;
	}
}

/* libcoap 4.3.1 acknowledges a CON response as soon as the response handler returns (OK: an ACK,
 * FAIL: a Reset), with no way to say "not yet". The handler holds the ACK back by making the
 * message it was given look non-confirmable (coap_send_ack skips those; handle_response does
 * nothing else with it before freeing it); ack_send sends the ACK later. A retransmission of
 * the message meanwhile is dropped by libcoap as a duplicate, or comes here again (ack_wait). */
static void hold_ack(const coap_pdu_t *rcv)
{
	coap_pdu_set_type((coap_pdu_t *)rcv, COAP_MESSAGE_NON);
}

static coap_response_t on_response(coap_session_t *cs, const coap_pdu_t *sent, const coap_pdu_t *rcv, const coap_mid_t mid)
{
	struct lwm2m_server *s = lwm2m_srv;
	(void)sent;
	(void)mid;
	struct lwm2m_request *rq = srv_tok_find(s, token_of(rcv));
	if (!rq || rq->state == RQ_DONE || rq->state == RQ_HELD || rq->session == NOSEC) {
		log_debug("response with an unknown token from %s: reset", coap_session_str(cs));
		return COAP_RESPONSE_FAIL;
	}
	uint16_t id = (uint16_t)coap_pdu_get_mid(rcv);
	int con = coap_pdu_get_type(rcv) == COAP_MESSAGE_CON;
	if (con && rq->ack_wait && rq->ack_mid == id) {
		hold_ack(rcv); /* a retransmission of what waits for its line to be written */
		return COAP_RESPONSE_OK;
	}
	coap_opt_iterator_t it;
	coap_opt_t *o = coap_check_option(rcv, COAP_OPTION_BLOCK2, &it);
	/* as on our socket (udp_response): a CON message whose line goes to a client is acknowledged
	 * once the line is written; block-wise parts are acknowledged part by part, by libcoap */
	int defer = con && s->cb.out_pos && s->cb.flush && rq->client != UINT64_MAX && rq->bmode == 0 && !o;
	srv_touch(s, srv_session_reg(cs));
	if (rq->state == RQ_DONE || srv_obs_stale(rq, rcv))
		return COAP_RESPONSE_OK;
	struct lwm2m_reply rep;
	int has_obs;
	decode_reply(rcv, &rep, &has_obs);
	if (defer) {
		if (srv_ack_after(s, cs, NULL, id, rq, &rep, has_obs) != 0)
			hold_ack(rcv);
		return COAP_RESPONSE_OK;
	}
	uint8_t *body = NULL;
	if (o && rep.code / 100 == 2) {
		/* libcoap has asked for the next part already, if there is one */
		if (srv_block2_part(s, rq, o, &rep, &has_obs) != 0)
			return COAP_RESPONSE_OK;
		body = rq->body;
		rq->body = NULL;
		rq->body_len = 0;
	}
	srv_deliver(s, rq, &rep, has_obs);
	free(body);
	return COAP_RESPONSE_OK;
}

/* The device never acknowledged rq's message (reason COAP_NACK_TOO_MANY_RETRIES), or reset it. */
void srv_nack(struct lwm2m_server *s, struct lwm2m_request *rq, coap_nack_reason_t reason)
{
	if (!rq || (rq->state != RQ_INFLIGHT && rq->state != RQ_CANCELLING))
		return;
	const char *status = "timeout", *why = "no answer after CoAP retransmissions";
	if (reason == COAP_NACK_RST) {
		status = "reset";
		why = "the device answered with a CoAP Reset";
	} else if (reason != COAP_NACK_TOO_MANY_RETRIES) {
		status = "send-failed";
		why = "the message could not be delivered";
	}
	if (reason == COAP_NACK_TOO_MANY_RETRIES)
		s->st.timeouts++;
	else
		s->st.errors++;
	if (rq->state == RQ_CANCELLING) {
		if (jv_is_valid(rq->cancel_cmd)) {
			struct lwm2m_request *c = lwm2m_request_new(jv_copy(rq->cancel_cmd), rq->client);
			if (c) {
				struct lwm2m_reply r2 = {.status = status, .error = why, .ct = -1, .final = 1};
				s->cb.reply(c, &r2, s->cb.ud);
				lwm2m_request_free(c);
			}
		}
		srv_reply_status(s, rq, "cancelled", "cancelled by cancel-observe", 1);
		return;
	}
	srv_reply_status(s, rq, status, why, 0);
}

static void on_nack(coap_session_t *cs, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid)
{
	(void)cs;
	(void)mid;
	if (sent)
		srv_nack(lwm2m_srv, srv_tok_find(lwm2m_srv, token_of(sent)), reason);
}

static void udp_send_empty(struct lwm2m_server *s, const union lwm2m_addr *to, int type, coap_mid_t mid)
{
	uint8_t b[4];
	struct lwm2m_coapw w;
	lwm2m_coapw_begin(&w, b, sizeof b, type, 0, (uint16_t)mid, NULL, 0);
	lwm2m_udp_send(s->udp, to, b, w.len);
}

/* Encode a response libcoap's handlers filled in, and send it. */
static void udp_send_pdu(struct lwm2m_server *s, const union lwm2m_addr *to, coap_pdu_t *resp)
{
	uint8_t buf[1400];
	struct lwm2m_coapw w;
	coap_bin_const_t tok = coap_pdu_get_token(resp);
	lwm2m_coapw_begin(&w, buf, sizeof buf, coap_pdu_get_type(resp), coap_pdu_get_code(resp),
	                  (uint16_t)coap_pdu_get_mid(resp), tok.s, tok.length);
	coap_opt_iterator_t it;
	coap_opt_t *o;
	coap_option_iterator_init(resp, &it, COAP_OPT_ALL);
	while ((o = coap_option_next(&it)) != NULL)
		lwm2m_coapw_opt(&w, it.number, coap_opt_value(o), coap_opt_length(o));
	size_t len = 0;
	const uint8_t *data = NULL;
	if (coap_get_data(resp, &len, &data))
		lwm2m_coapw_payload(&w, data, len);
	if (w.overflow)
		log_warn("response to %s too large for a datagram: dropped", srv_peer_str(NULL));
	else if (s->reg.jdefer)
		lwm2m_udp_send_later(s->udp, to, buf, w.len); /* after the journal's lines (udp_before_flush) */
	else
		lwm2m_udp_send(s->udp, to, buf, w.len);
}

/* A request on a DTLS session. libcoap 4.3.1 is told to hand Block1 parts over one by one (no
 * COAP_BLOCK_SINGLE_BODY): with it, it would take in a body of any size (up to 2^20 parts)
 * before a handler saw any of it. The parts are put together here, as on our socket, and the
 * handler gets the whole request. libcoap answers 2.31 (and its Block1) itself to a part that
 * is not the last, unless the handler's code is an error. */
static void dtls_request(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req,
                         const coap_string_t *query, coap_pdu_t *resp, coap_method_handler_t h)
{
	coap_opt_iterator_t it;
	coap_opt_t *o = coap_check_option(req, COAP_OPTION_BLOCK1, &it);
	if (!o) {
		h(res, cs, req, query, resp);
		return;
	}
	union lwm2m_addr from;
	unsigned b1 = 0;
	srv_addr_from_session(cs, &from);
	coap_pdu_t *whole = srv_block1_add(lwm2m_srv, cs, &from, req, o, resp, &b1);
	if (!whole)
		return;
	/* the answer echoes the last part (before the handler adds a payload) */
	uint8_t v[4];
	coap_add_option(resp, COAP_OPTION_BLOCK1, coap_encode_var_safe(v, sizeof v, b1), v);
	h(res, cs, whole, query, resp);
	coap_delete_pdu(whole);
}

static void dtls_register(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req,
                          const coap_string_t *query, coap_pdu_t *resp)
{
	dtls_request(res, cs, req, query, resp, srv_hnd_register);
}

static void dtls_other(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                       coap_pdu_t *resp)
{
	dtls_request(res, cs, req, query, resp, srv_hnd_other);
}

static void udp_request(struct lwm2m_server *s, const union lwm2m_addr *from, const coap_pdu_t *req)
{
	coap_pdu_type_t type = coap_pdu_get_type(req);
	coap_mid_t mid = coap_pdu_get_mid(req);
	coap_pdu_code_t method = coap_pdu_get_code(req);
	if (type != COAP_MESSAGE_CON && type != COAP_MESSAGE_NON)
		return;
	coap_opt_iterator_t it;
	coap_opt_filter_t f;
	coap_opt_t *o;
	int nseg = 0, is_rd = 0;
	coap_option_filter_clear(&f);
	coap_option_filter_set(&f, COAP_OPTION_URI_PATH);
	coap_option_iterator_init(req, &it, &f);
	while ((o = coap_option_next(&it)) != NULL) {
		if (nseg++ == 0)
			is_rd = coap_opt_length(o) == 2 && memcmp(coap_opt_value(o), "rd", 2) == 0;
	}
	is_rd = is_rd && nseg == 1;
	coap_bin_const_t tok = coap_pdu_get_token(req);
	coap_pdu_t *resp = coap_pdu_init(type == COAP_MESSAGE_CON ? COAP_MESSAGE_ACK : COAP_MESSAGE_NON, 0,
	                                 type == COAP_MESSAGE_CON ? mid : lwm2m_udp_mid(s->udp), 1400);
	if (!resp || !coap_add_token(resp, tok.length, tok.s)) {
		if (resp)
			coap_delete_pdu(resp);
		return;
	}
	/* a retransmitted Register whose answer was lost gets that answer again, not a new registration */
	struct lwm2m_reg *g = is_rd && type == COAP_MESSAGE_CON ? lwm2m_reg_by_addr(&s->reg, from) : NULL;
	if (g && g->has_reg_mid && g->reg_mid == (uint16_t)mid && lwm2m_now() - g->registered < 250) {
		char id[9];
		lwm2m_reg_id_str(g->id, id);
		srv_set_code(resp, 201);
		coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 2, (const uint8_t *)"rd");
		coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 8, (const uint8_t *)id);
		udp_send_pdu(s, from, resp);
		coap_delete_pdu(resp);
		return;
	}
	coap_pdu_t *whole = NULL;
	unsigned b1 = 0;
	o = coap_check_option(req, COAP_OPTION_BLOCK1, &it);
	if (o && !(whole = srv_block1_add(s, NULL, from, req, o, resp, &b1))) {
		udp_send_pdu(s, from, resp);
		coap_delete_pdu(resp);
		return;
	}
	const coap_pdu_t *r = whole ? whole : req;
	if (whole) {
		/* the answer echoes the last part (before the handler adds a payload) */
		uint8_t v[4];
		coap_add_option(resp, COAP_OPTION_BLOCK1, coap_encode_var_safe(v, sizeof v, b1), v);
	}
	if (is_rd)
		method == COAP_REQUEST_CODE_POST ? srv_hnd_register(NULL, NULL, r, NULL, resp) : srv_set_code(resp, 405);
	else if (method == COAP_REQUEST_CODE_POST || method == COAP_REQUEST_CODE_DELETE || method == COAP_REQUEST_CODE_GET)
		srv_hnd_other(NULL, NULL, r, NULL, resp);
	else
		srv_set_code(resp, 405);
	if (whole)
		coap_delete_pdu(whole);
	udp_send_pdu(s, from, resp);
	coap_delete_pdu(resp);
}

/* A response, a notification, an ACK or a Reset on our socket. */
static void udp_response(struct lwm2m_server *s, const union lwm2m_addr *from, const coap_pdu_t *pdu)
{
	coap_pdu_type_t type = coap_pdu_get_type(pdu);
	coap_mid_t mid = coap_pdu_get_mid(pdu);
	if (type == COAP_MESSAGE_ACK || type == COAP_MESSAGE_RST) {
		struct lwm2m_request *rq = lwm2m_udp_acked(s->udp, from, (uint16_t)mid);
		if (rq)
			rq->xmit = NULL;
		if (type == COAP_MESSAGE_RST) {
			srv_nack(s, rq, COAP_NACK_RST);
			return;
		}
		if (coap_pdu_get_code(pdu) == 0)
			return; /* empty ACK: a separate response follows */
	} else if (coap_pdu_get_code(pdu) == 0) {
		if (type == COAP_MESSAGE_CON)
			udp_send_empty(s, from, COAP_MESSAGE_RST, mid); /* CoAP ping */
		return;
	}
	struct lwm2m_request *rq = srv_tok_find(s, token_of(pdu));
	if (!rq || rq->state == RQ_DONE || rq->state == RQ_HELD || rq->session != NOSEC || !rq->reg ||
	    !lwm2m_addr_equal(&rq->reg->addr, from)) {
		log_debug("response with an unknown token from %s: reset", srv_peer_str(NULL));
		if (type != COAP_MESSAGE_ACK)
			udp_send_empty(s, from, COAP_MESSAGE_RST, mid);
		return;
	}
	coap_opt_iterator_t it;
	int con = type == COAP_MESSAGE_CON;
	if (con && rq->ack_wait && rq->ack_mid == (uint16_t)mid)
		return; /* a retransmission of what waits for its line to be written: acknowledged then */
	unsigned b1 = 0;
	if (rq->payload && coap_pdu_get_code(pdu) == COAP_RESPONSE_CODE(413) &&
	    srv_opt_uint(pdu, COAP_OPTION_BLOCK1, &b1) && (b1 & 7) < rq->b1szx && rq->len > 1u << ((b1 & 7) + 4)) {
		/* RFC 7959 2.9.3: the device takes smaller bodies (Wakaama's client with -S) and names
		 * its block size; the request goes again from its start in parts of that size (only
		 * ever smaller, so this ends) */
		if (con)
			udp_send_empty(s, from, COAP_MESSAGE_ACK, mid);
		srv_touch(s, rq->reg);
		rq->bmode = 1;
		rq->block = 0;
		rq->b1szx = b1 & 7;
		if (udp_send_rq(s, rq->reg, rq, 0, 1) < 0)
			srv_nack(s, rq, COAP_NACK_NOT_DELIVERABLE);
		return;
	}
	/* A confirmable message whose line goes to a client is acknowledged once the line is written
	 * (srv_ack_after), so a reader that falls behind slows the devices down instead of growing a
	 * queue: each waits for its ACK. Block-wise transfers are acknowledged part by part. */
	int defer = con && s->cb.out_pos && s->cb.flush && rq->client != UINT64_MAX && rq->bmode == 0 &&
	            !coap_check_option(pdu, COAP_OPTION_BLOCK2, &it);
	if (con && !defer)
		udp_send_empty(s, from, COAP_MESSAGE_ACK, mid);
	srv_touch(s, rq->reg);
	if (rq->state == RQ_DONE)
		return;
	if (srv_obs_stale(rq, pdu)) {
		if (defer)
			udp_send_empty(s, from, COAP_MESSAGE_ACK, mid); /* its line was written before */
		return;
	}
	struct lwm2m_reply rep;
	int has_obs;
	decode_reply(pdu, &rep, &has_obs);
	if (defer) {
		if (srv_ack_after(s, NOSEC, from, (uint16_t)mid, rq, &rep, has_obs) == 0)
			lwm2m_udp_send_empty_later(s->udp, from, COAP_MESSAGE_ACK, mid);
		return;
	}
	if (rq->bmode == 1) {
		if (rep.code == 231) {
			int has_b1 = srv_opt_uint(pdu, COAP_OPTION_BLOCK1, &b1);
			if (has_b1 && b1 >> 4 < rq->block)
				return; /* a retransmitted answer to a part sent before */
			size_t next = (size_t)(rq->block + 1) << (rq->b1szx + 4);
			if (!has_b1 || b1 >> 4 != rq->block || next >= rq->len) {
				srv_block_abort(s, rq, "2.31 Continue that does not match the Block1 part sent");
				return;
			}
			/* RFC 7959 2.3: the device may ask for smaller parts; the rest comes in that size */
			if ((b1 & 7) < rq->b1szx)
				rq->b1szx = b1 & 7;
			rq->block = (uint32_t)(next >> (rq->b1szx + 4));
			if (udp_send_rq(s, rq->reg, rq, 0, 1) < 0)
				srv_nack(s, rq, COAP_NACK_NOT_DELIVERABLE);
			return;
		}
		rq->bmode = 0;
	}
	coap_opt_t *o = coap_check_option(pdu, COAP_OPTION_BLOCK2, &it);
	if (o && rep.code / 100 == 2) {
		int r = srv_block2_part(s, rq, o, &rep, &has_obs);
		if (r < 0)
			return;
		if (r > 0) {
			if (udp_send_rq(s, rq->reg, rq, 0, 1) < 0)
				srv_nack(s, rq, COAP_NACK_NOT_DELIVERABLE);
			return;
		}
	}
	uint8_t *body = rq->body;
	if (body) {
		rep.data = body;
		rep.len = rq->body_len;
		rq->body = NULL;
		rq->body_len = 0;
	}
	srv_deliver(s, rq, &rep, has_obs);
	free(body);
}

static void udp_recv(void *ud, const union lwm2m_addr *from, const coap_pdu_t *pdu, const uint8_t *raw, size_t len)
{
	struct lwm2m_server *s = ud;
	if (!pdu) {
		s->st.bad_packets++;
		/* RFC 7252 4.2: a confirmable message we cannot parse is rejected with a Reset */
		if (len >= 4 && (raw[0] >> 6) == 1 && ((raw[0] >> 4) & 3) == COAP_MESSAGE_CON)
			udp_send_empty(s, from, COAP_MESSAGE_RST, raw[2] << 8 | raw[3]);
		return;
	}
	s->from = from;
	coap_pdu_code_t c = coap_pdu_get_code(pdu);
	if (c != 0 && c < 32)
		udp_request(s, from, pdu);
	else
		udp_response(s, from, pdu);
	s->from = NULL;
}

/* The answers of a round go out once the changes they acknowledge are in the journal: one
 * write(2) for the round's lines instead of one each. */
static int udp_before_flush(void *ud)
{
	struct lwm2m_server *s = ud;
	if (lwm2m_registry_journal_flush(&s->reg) == 0)
		return 0;
	s->st.save_errors++;
	log_error("unable to journal registrations in %s.journal: %s (their answers are dropped)", s->state_file,
	          strerror(errno));
	return -1;
}

static void udp_fail(void *ud, void *owner, int reset)
{
	struct lwm2m_request *rq = owner;
	rq->xmit = NULL;
	srv_nack(ud, rq, reset ? COAP_NACK_RST : COAP_NACK_TOO_MANY_RETRIES);
}

/* Every request from a registered device shows it is awake (queue mode). */
static int on_event(coap_session_t *cs, const coap_event_t ev)
{
	if (lwm2m_srv)
		lwm2m_dtls_event(lwm2m_srv->dtls, cs, ev);
	return 0;
}

/* While lwm2m_server_io hands libcoap the DTLS endpoint's event several times, the reads that
 * find the socket empty are counted here rather than logged (libcoap warns of each). */
static struct {
	int on, after_eagain;
	unsigned empty;
} dtls_batch;

static void coap_logger(coap_log_t level, const char *message)
{
	if (dtls_batch.on && level == LOG_WARNING) {
		if (strstr(message, "coap_network_read: ") && strstr(message, strerror(EAGAIN))) {
			dtls_batch.empty++;
			dtls_batch.after_eagain = 1;
			return;
		}
		if (dtls_batch.after_eagain && strstr(message, "read failed")) {
			dtls_batch.after_eagain = 0;
			return;
		}
	}
	dtls_batch.after_eagain = 0;
	int l = level <= LOG_ERR ? LOG_LVL_ERROR : level <= LOG_WARNING ? LOG_LVL_WARN
	                                         : level <= LOG_INFO    ? LOG_LVL_INFO
	                                                                : LOG_LVL_DEBUG;
	size_t n = strlen(message);
	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_msg(l, "libcoap: %.*s", (int)n, message);
}

/* ---- set-up, ticks, teardown ---- */

static void restore_expired(struct lwm2m_reg *g, void *ud)
{
	struct lwm2m_server *s = ud;
	s->st.expires++;
	srv_emit(s, "expire", g, jv_object_set(jv_object(), jv_string("restored"), jv_true()));
}

static int resolve_listen(const char *spec, coap_address_t *addr)
{
	union lwm2m_addr a;
	char buf[300];
	if (lwm2m_addr_parse(spec, &a) < 0) {
		/* ":5683" and "5683" mean every IPv4 address */
		const char *port = spec[0] == ':' ? spec + 1 : spec;
		if (snprintf(buf, sizeof buf, "0.0.0.0:%s", port) >= (int)sizeof buf || lwm2m_addr_parse(buf, &a) < 0)
			return -1;
	}
	coap_address_init(addr);
	if (a.sa.sa_family == AF_INET) {
		addr->size = sizeof a.sin;
		addr->addr.sin = a.sin;
	} else {
		addr->size = sizeof a.sin6;
		addr->addr.sin6 = a.sin6;
	}
	return 0;
}

/* libcoap 4.3.1 keeps its endpoint socket to itself, with the system's default receive queue
 * (~208 KiB, a few hundred datagrams). Every DTLS handshake flight is 1-3 datagrams, and after a
 * gateway restart every device handshakes at once; a flight lost to a full queue costs its
 * device a DTLS retransmission timeout (1 s, then 2, 4...). Give it the queue lwm2m_udp gives
 * NoSec datagrams, once fd is checked to be a datagram socket bound to the DTLS address. */
static void dtls_rcvbuf(int fd, const coap_address_t *want)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int type = 0, rcv = 4 << 20;
	socklen_t tl = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_DGRAM ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family != want->addr.sa.sa_family)
		goto unknown;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&ss, *w = &want->addr.sin;
		if (a->sin_addr.s_addr != w->sin_addr.s_addr || (w->sin_port && a->sin_port != w->sin_port))
			goto unknown;
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss, *w = &want->addr.sin6;
		if (memcmp(&a->sin6_addr, &w->sin6_addr, sizeof a->sin6_addr) ||
		    (w->sin6_port && a->sin6_port != w->sin6_port))
			goto unknown;
	} else {
		goto unknown;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) < 0)
		log_warn("DTLS socket: unable to set its receive queue: %s", strerror(errno));
	return;
unknown:
	log_warn("DTLS socket not found; its receive queue stays the system's default");
}

static int dtls_setup(struct lwm2m_server *s)
{
	coap_address_t addr;
	if (resolve_listen(s->o.dtls_listen, &addr) < 0) {
		log_error("bad DTLS listen address %s (want ADDR:PORT)", s->o.dtls_listen);
		errno = EINVAL;
		return -1;
	}
	struct lwm2m_dtls_opts d = {s->o.dtls_cert, s->o.dtls_key, s->o.dtls_ca, s->o.max_handshakes,
	                            s->o.max_idle_sessions};
	char err[512];
	if (!(s->dtls = lwm2m_dtls_new(s->ctx, &s->o.security, &d, err, sizeof err))) {
		log_error("%s", err);
		errno = EINVAL;
		return -1;
	}
	/* socket(2) takes the lowest free descriptor: the endpoint's socket will be this one */
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (probe >= 0)
		close(probe);
	if (!coap_new_endpoint(s->ctx, &addr, COAP_PROTO_DTLS)) {
		log_error("unable to listen on dtls %s: %s", s->o.dtls_listen, strerror(errno));
		errno = EIO;
		return -1;
	}
	if (probe >= 0)
		dtls_rcvbuf(probe, &addr);
	return 0;
}

int lwm2m_server_dtls_reload(struct lwm2m_server *s, char *err, size_t errlen)
{
	return s->dtls ? lwm2m_dtls_reload(s->dtls, err, errlen) : 0;
}

struct lwm2m_security *lwm2m_server_set_security(struct lwm2m_server *s, struct lwm2m_security *sec)
{
	struct lwm2m_security *old = s->o.security;
	s->o.security = sec;
	return old;
}

struct lwm2m_server *lwm2m_server_new(const struct lwm2m_server_opts *o, const struct lwm2m_server_cb *cb,
                                      int *usage)
{
	coap_address_t addr;
	*usage = 0;
	if (*o->listen && resolve_listen(o->listen, &addr) < 0) {
		log_error("bad listen address %s (want ADDR:PORT)", o->listen);
		*usage = 1;
		return NULL;
	}
	struct lwm2m_server *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	lwm2m_srv = s;
	s->epfd = -1;
	s->o = *o;
	s->cb = *cb;
	lwm2m_registry_init(&s->reg);
	s->next_token = ((uint64_t)arc4random() << 32) | arc4random();
	coap_startup();
	coap_set_log_handler(coap_logger);
	coap_set_log_level(o->coap_log_level);
	s->ctx = coap_new_context(NULL);
	if (!s->ctx) {
		log_error("unable to create the CoAP context");
		free(s);
		return NULL;
	}
	/* libcoap sends our large requests in Block1 parts and asks for a device's Block2 parts; it
	 * hands over each part it gets, and the bodies are put together here, with a bound (a
	 * single body it would assemble without one) */
	coap_context_set_block_mode(s->ctx, COAP_BLOCK_USE_LIBCOAP);
	if (o->dtls_listen && dtls_setup(s) < 0) {
		*usage = errno == EINVAL;
		coap_free_context(s->ctx);
		lwm2m_dtls_free(s->dtls);
		free(s);
		return NULL;
	}
	if (*o->listen) {
		union lwm2m_addr a;
		memset(&a, 0, sizeof a);
		memcpy(&a, &addr.addr, addr.size < sizeof a ? addr.size : sizeof a);
		s->udp = lwm2m_udp_open(&a, udp_recv, udp_fail, s);
		if (s->udp)
			lwm2m_udp_before_flush(s->udp, udp_before_flush);
		if (!s->udp) {
			log_error("unable to listen on udp %s: %s", o->listen, strerror(errno));
			coap_free_context(s->ctx);
			free(s);
			return NULL;
		}
	}
	struct epoll_event ev = {.events = EPOLLIN};
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, coap_context_get_coap_fd(s->ctx), &ev) < 0 ||
	    (s->udp && epoll_ctl(s->epfd, EPOLL_CTL_ADD, lwm2m_udp_fd(s->udp), &ev) < 0)) {
		log_error("unable to set up epoll: %s", strerror(errno));
		if (s->epfd >= 0)
			close(s->epfd);
		lwm2m_udp_free(s->udp);
		coap_free_context(s->ctx);
		free(s);
		return NULL;
	}
	coap_resource_t *r = coap_resource_init(coap_make_str_const("rd"), 0);
	coap_register_handler(r, COAP_REQUEST_POST, dtls_register);
	coap_add_resource(s->ctx, r);
	r = coap_resource_unknown_init2(dtls_other, 0);
	coap_register_handler(r, COAP_REQUEST_POST, dtls_other);
	coap_register_handler(r, COAP_REQUEST_DELETE, dtls_other);
	coap_register_handler(r, COAP_REQUEST_GET, dtls_other);
	coap_add_resource(s->ctx, r);
	coap_register_response_handler(s->ctx, on_response);
	coap_register_nack_handler(s->ctx, on_nack);
	coap_register_event_handler(s->ctx, on_event);

	if (o->state_dir) {
		if (fs_mkdir_p(o->state_dir) < 0) {
			log_error("unable to create state directory %s: %s", o->state_dir, strerror(errno));
			lwm2m_server_free(s);
			return NULL;
		}
		snprintf(s->state_file, sizeof s->state_file, "%s/registrations.jsonl", o->state_dir);
		long n = lwm2m_registry_load(&s->reg, s->state_file, lwm2m_now(), restore_expired, s);
		if (n < 0 && errno != ENOENT) {
			log_error("unable to read %s: %s", s->state_file, strerror(errno));
			lwm2m_server_free(s);
			return NULL;
		}
		if (n > 0)
			log_info("restored %ld registrations from %s", n, s->state_file);
		if (n >= 0)
			s->dirty = 1; /* expired ones dropped */
	}
	s->last_save = s->last_tick = lwm2m_now();
	return s;
}

static void free_reg_cb(struct lwm2m_reg *g, void *ud)
{
	(void)ud;
	while (lwm2m_queue_pop(g) != NULL)
		;
	srv_detach_session(g);
}

void lwm2m_server_free(struct lwm2m_server *s)
{
	if (!s)
		return;
	struct lwm2m_request *rq, *next;
	/* held requests are on s->all too: empty the queues before freeing them, not after */
	size_t b;
	for (struct lwm2m_reg *g = lwm2m_reg_first(&s->reg, &b); g; g = lwm2m_reg_next(&s->reg, g, &b))
		while (lwm2m_queue_pop(g) != NULL)
			;
	for (rq = s->all; rq; rq = next) {
		next = rq->all_next;
		srv_sess_release(rq->session);
		if (rq->xmit)
			lwm2m_udp_cancel(s->udp, rq->xmit);
		lwm2m_request_free(rq);
	}
	s->all = NULL;
	lwm2m_registry_free(&s->reg, free_reg_cb, s);
	while (s->b1)
		srv_block1_free(s, s->b1);
	lwm2m_udp_free(s->udp);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s->tok);
	for (size_t i = 0; i < s->nacks; i++)
		srv_sess_release(s->acks[i].sess);
	s->nacks = 0;
	if (s->ctx)
		coap_free_context(s->ctx);
	coap_cleanup();
	lwm2m_srv = NULL;
	lwm2m_dtls_free(s->dtls);
	free(s->acks);
	free(s);
}

int lwm2m_server_fd(const struct lwm2m_server *s)
{
	return s->epfd;
}

void lwm2m_server_io(struct lwm2m_server *s, int read_datagrams)
{
	/* coap_io_process(ctx, COAP_IO_NO_WAIT) reads one datagram per call, and each call first
	 * walks every session (coap_io_prepare_io). With a session per registered device that walk
	 * dominates, so do what coap_io_process does, split (coap_io(3), the "own epoll"
	 * interface): read a batch of datagrams, and prepare (retransmissions, idle sessions,
	 * re-arming libcoap's timer) when its timer fired, or every 100 ms. A new CON request arms
	 * the timer itself (coap_wait_ack). */
	struct epoll_event ev[16];
	int epfd = coap_context_get_coap_fd(s->ctx), timer = 0;
	if (read_datagrams && s->udp) {
		s->reg.jdefer = 1;
		lwm2m_udp_recv(s->udp, IO_BATCH);
		s->reg.jdefer = 0;
		lwm2m_udp_flush(s->udp);
	}
	for (int done = 0; read_datagrams && done < IO_BATCH;) {
		int n = epoll_wait(epfd, ev, (int)(sizeof ev / sizeof ev[0]), 0);
		if (n <= 0)
			break;
		/* each coap_io_do_epoll call reads one datagram per event and then walks every session
		 * (it ends with coap_io_prepare_epoll): O(DTLS devices) per datagram, since all DTLS
		 * sessions share the endpoint's socket. So the endpoint's event goes in s->dtls_rep
		 * times, a count that follows how many datagrams the last call found waiting. */
		struct epoll_event batch[16 + DTLS_REP_MAX];
		int nb = 0, reps = 0;
		for (int i = 0; i < n; i++) {
			timer |= ev[i].data.ptr == NULL;
			batch[nb++] = ev[i];
			if (ev[i].data.ptr && !reps)
				for (reps = 1; reps < s->dtls_rep; reps++)
					batch[nb++] = ev[i];
		}
		dtls_batch.on = reps > 1;
		dtls_batch.empty = 0;
		coap_io_do_epoll(s->ctx, batch, (size_t)nb);
		dtls_batch.on = dtls_batch.after_eagain = 0;
		if (reps) {
			unsigned used = (unsigned)reps - (dtls_batch.empty < (unsigned)reps ? dtls_batch.empty : (unsigned)reps);
			s->dtls_rep = used == (unsigned)reps ? (reps * 2 > DTLS_REP_MAX ? DTLS_REP_MAX : reps * 2)
			                                     : (int)used + 1;
		}
		done += nb;
	}
	if (s->cb.flush) {
		s->cb.flush(s->cb.ud);
		if (s->nacks)
			srv_acks_due(s);
	}
	if (s->udp)
		lwm2m_udp_flush(s->udp);
	coap_tick_t now;
	coap_ticks(&now);
	if (timer || now - s->last_prepare >= COAP_TICKS_PER_SECOND / 10) {
		coap_io_prepare_epoll(s->ctx, now);
		s->last_prepare = now;
	}
}

void lwm2m_server_sync(struct lwm2m_server *s)
{
	if ((!s->dirty && !s->reg.jlines) || !s->state_file[0])
		return;
	if (lwm2m_registry_save(&s->reg, s->state_file) < 0) {
		s->st.save_errors++;
		log_error("unable to save registrations to %s: %s", s->state_file, strerror(errno));
		return;
	}
	s->st.saves++;
	s->dirty = 0;
	s->last_save = lwm2m_now();
}

static void held_expired(struct lwm2m_request *rq, void *ud)
{
	struct lwm2m_server *s = ud;
	s->st.queue_expired++;
	rq->state = RQ_NEW;
	srv_reply_status(s, rq, "queue-expired", "held for a sleeping device longer than the queue TTL", 0);
}

int lwm2m_server_tick(struct lwm2m_server *s)
{
	double now = lwm2m_now();
	if (now - s->last_tick >= 0.25) {
		s->last_tick = now;
		struct lwm2m_reg *g, **victims = NULL;
		size_t b, nv = 0, cap = 0;
		for (g = lwm2m_reg_first(&s->reg, &b); g; g = lwm2m_reg_next(&s->reg, g, &b)) {
			if (g->updated + g->lt <= now) {
				/* collected first: dropping unlinks from the table we walk */
				if (nv == cap) {
					size_t ncap = cap ? cap * 2 : 64;
					struct lwm2m_reg **nvv = realloc(victims, ncap * sizeof *nvv);
					if (!nvv)
						break;
					victims = nvv;
					cap = ncap;
				}
				victims[nv++] = g;
				continue;
			}
			if (lwm2m_queue_check_sleep(g, now)) {
				srv_emit(s, "sleep", g, jv_null());
			}
			if (g->q)
				lwm2m_queue_expire(g, now - s->o.queue_ttl, held_expired, s);
		}
		for (size_t i = 0; i < nv; i++) {
			s->st.expires++;
			srv_emit(s, "expire", victims[i], jv_null());
			srv_drop_reg(s, victims[i], NULL, "the registration expired");
		}
		free(victims);
		struct lwm2m_request *rq, *next;
		for (rq = s->all; rq; rq = next) {
			next = rq->all_next;
			double limit = rq->timeout > 0 ? rq->timeout : s->o.req_timeout;
			if ((rq->state == RQ_INFLIGHT || rq->state == RQ_CANCELLING) && now - rq->since >= limit) {
				s->st.timeouts++;
				if (rq->state == RQ_CANCELLING) {
					srv_reply_status(s, rq, "cancelled", "cancelled by cancel-observe", 1);
					continue;
				}
				srv_reply_status(s, rq, "timeout", "no answer in time", 0);
			}
		}
	}
	if (s->dirty && now - s->last_save >= s->o.sync_interval) {
		/* Every change is in the journal already: a whole save costs O(registrations), so it
		 * waits until the journal is as long as the registry (O(1) per change however many
		 * devices); until then the journal is made durable. */
		if (s->reg.jlines > s->reg.count + 1024 || s->reg.jfd < 0) {
			lwm2m_server_sync(s);
		} else if (lwm2m_registry_journal_sync(&s->reg) < 0) {
			s->st.save_errors++;
			log_error("unable to sync %s.journal: %s", s->state_file, strerror(errno));
		} else {
			s->dirty = 0;
			s->last_save = now;
		}
	}
	/* Block1 bodies whose next part never came (RFC 7959: EXCHANGE_LIFETIME would be 247 s) */
	for (struct block1 *b = s->b1, *next; b; b = next) {
		next = b->next;
		if (now - b->since > 60)
			srv_block1_free(s, b);
	}
	int ms = s->udp ? lwm2m_udp_timers(s->udp) : -1;
	return ms >= 0 && ms < 250 ? ms : 250;
}

const struct lwm2m_registry *lwm2m_server_registry(const struct lwm2m_server *s)
{
	return &s->reg;
}

struct lwm2m_reg *lwm2m_server_find(struct lwm2m_server *s, const char *ep)
{
	return lwm2m_reg_by_ep(&s->reg, ep);
}

jv lwm2m_server_reg_json(const struct lwm2m_server *s, const struct lwm2m_reg *g)
{
	(void)s;
	jv o = lwm2m_reg_json(g);
	if (g->queue)
		o = jv_object_set(o, jv_string("asleep"), jv_bool(lwm2m_queue_asleep(g, lwm2m_now())));
	if (!g->session)
		o = jv_object_set(o, jv_string("reachable"), jv_false());
	o = jv_object_set(o, jv_string("expires"), jv_number(srv_round_ms(g->updated + g->lt)));
	return o;
}

struct lwm2m_stats *lwm2m_server_counters(struct lwm2m_server *s)
{
	return &s->st;
}

jv lwm2m_server_stats(const struct lwm2m_server *s)
{
	jv o = jv_object();
#define N(k, v) o = jv_object_set(o, jv_string(k), jv_number((double)(v)))
	N("registrations", s->reg.count);
	size_t b, sleeping = 0;
	double now = lwm2m_now();
	for (struct lwm2m_reg *g = lwm2m_reg_first(&s->reg, &b); g; g = lwm2m_reg_next(&s->reg, g, &b))
		sleeping += g->queue && lwm2m_queue_asleep(g, now);
	N("sleeping", sleeping);
	N("observations", s->nobs);
	N("in_flight", s->ninflight);
	N("registers", s->st.registers);
	N("updates", s->st.updates);
	N("deregisters", s->st.deregisters);
	N("expires", s->st.expires);
	N("rejected_registrations", s->st.rejected_registrations);
	N("requests", s->st.requests);
	N("responses", s->st.responses);
	N("timeouts", s->st.timeouts);
	N("notifications_in", s->st.notifications_in);
	N("notifications_out", s->st.notifications_out);
	N("held", s->st.held);
	N("queue_expired", s->st.queue_expired);
	N("queue_full", s->st.queue_full);
	N("sends", s->st.sends);
	N("errors", s->st.errors);
	N("dropped_lines", s->st.dropped_lines);
	N("saves", s->st.saves);
	N("save_errors", s->st.save_errors);
	N("refused_per_address", s->st.refused_per_address);
#undef N
	return o;
}
