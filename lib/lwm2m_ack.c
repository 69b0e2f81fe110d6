/* CON messages from devices acknowledged once their line is written, and stale notifications. */
#include "lwm2m_server_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An empty ACK for message mid, to peer on our socket or on DTLS session sess. */
static void ack_send(struct lwm2m_server *s, void *sess, const union lwm2m_addr *peer, uint16_t mid)
{
	if (sess == NOSEC) {
		lwm2m_udp_send_empty_later(s->udp, peer, COAP_MESSAGE_ACK, mid);
		return;
	}
	/* coap_send_ack answers the message it is given: one made up with the Message ID */
	coap_pdu_t *con = coap_pdu_init(COAP_MESSAGE_CON, 0, mid, 0);
	if (!con)
		return;
	coap_send_ack(sess, con);
	coap_delete_pdu(con);
}

/* Deliver rq's reply to a CON message (mid, from peer on our socket or on DTLS session sess)
 * and say when to acknowledge it. 0: now (the line is written, or there is none); 1: later, with
 * the ACKs of a later round once the line is written (srv_acks_due); -1: never (a notification whose
 * line was not queued, as its client does not read: the device sends it again). */
int srv_ack_after(struct lwm2m_server *s, void *sess, const union lwm2m_addr *peer, uint16_t mid,
                  struct lwm2m_request *rq, struct lwm2m_reply *rep, int has_obs)
{
	uint64_t client = rq->client, token = rq->token, q0 = 0, q1 = 0, w = 0;
	int known = s->cb.out_pos(client, &q0, &w, s->cb.ud) == 0;
	srv_deliver(s, rq, rep, has_obs); /* may free rq */
	if (!known || s->cb.out_pos(client, &q1, &w, s->cb.ud) < 0 || q1 == q0)
		return rep->notify && !rep->final ? -1 : 0;
	if (s->nacks == s->capacks) {
		size_t cap = s->capacks ? s->capacks * 2 : 256;
		struct pending_ack *na = realloc(s->acks, cap * sizeof *na);
		if (!na)
			return 0;
		s->acks = na;
		s->capacks = cap;
	}
	struct pending_ack *a = &s->acks[s->nacks++];
	memset(a, 0, sizeof *a);
	if (peer)
		a->to = *peer;
	a->sess = srv_sess_ref(sess);
	a->client = client;
	a->mark = q1;
	a->token = token;
	a->mid = mid;
	if (!rep->final) {
		rq->ack_wait = 1;
		rq->ack_mid = mid;
	}
	return 1;
}

/* Acknowledge the messages whose lines are written now. */
void srv_acks_due(struct lwm2m_server *s)
{
	uint64_t client = UINT64_MAX, q = 0, w = 0;
	int r = -1;
	size_t k = 0;
	for (size_t i = 0; i < s->nacks; i++) {
		struct pending_ack *a = &s->acks[i];
		if (a->client != client) {
			client = a->client;
			r = s->cb.out_pos(client, &q, &w, s->cb.ud);
		}
		if (r == 0 && w < a->mark) {
			if (k != i)
				s->acks[k] = *a;
			k++;
			continue;
		}
		struct lwm2m_request *rq = srv_tok_find(s, a->token);
		if (rq && rq->ack_wait && rq->ack_mid == a->mid)
			rq->ack_wait = 0;
		/* a client that went away: its observations ended, the device gets a Reset next time */
		if (r == 0)
			ack_send(s, a->sess, &a->to, a->mid);
		srv_sess_release(a->sess);
	}
	s->nacks = k;
}

/* RFC 7641 3.4: a notification is taken only if fresher than the last one; a retransmission (its
 * ACK lost, or held back while its line waited) is not. 1: pdu is such a stale one. */
int srv_obs_stale(struct lwm2m_request *rq, const coap_pdu_t *pdu)
{
	unsigned obs;
	if (!(rq->state == RQ_OBSERVING || (rq->state == RQ_INFLIGHT && rq->observe == 0)) ||
	    !srv_opt_uint(pdu, COAP_OPTION_OBSERVE, &obs))
		return 0;
	double now = lwm2m_now();
	uint32_t v1 = rq->obs_seq, v2 = obs & 0xffffff;
	if (rq->has_obs_seq && !((v1 < v2 && v2 - v1 < (1u << 23)) || (v1 > v2 && v1 - v2 > (1u << 23)) ||
	                         now > rq->obs_at + 128))
		return 1;
	rq->has_obs_seq = 1;
	rq->obs_seq = v2;
	rq->obs_at = now;
	return 0;
}
