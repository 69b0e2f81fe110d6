/* Block-wise transfers (RFC 7959) with devices: request bodies in Block1 parts, on our socket and
 * on DTLS sessions, and answers in Block2 parts. */
#include "lwm2m_server_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- request bodies in Block1 parts, on our socket and on DTLS sessions ---- */

void srv_block1_free(struct lwm2m_server *s, struct block1 *b)
{
	for (struct block1 **pp = &s->b1; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	free(b->buf);
	free(b);
}

/* The whole body of a Block1 transfer as one request PDU (Block1 and Size1 left out). */
static coap_pdu_t *block1_request(const coap_pdu_t *req, const uint8_t *body, size_t len)
{
	coap_bin_const_t tok = coap_pdu_get_token(req);
	coap_pdu_t *p = coap_pdu_init(coap_pdu_get_type(req), coap_pdu_get_code(req), coap_pdu_get_mid(req), len + 1024);
	if (!p || !coap_add_token(p, tok.length, tok.s))
		goto fail;
	coap_opt_iterator_t it;
	coap_opt_t *o;
	coap_option_iterator_init(req, &it, COAP_OPT_ALL);
	while ((o = coap_option_next(&it)) != NULL)
		if (it.number != COAP_OPTION_BLOCK1 && it.number != COAP_OPTION_SIZE1 &&
		    !coap_add_option(p, it.number, coap_opt_length(o), coap_opt_value(o)))
			goto fail;
	if (len && !coap_add_data(p, len, body))
		goto fail;
	return p;
fail:
	if (p)
		coap_delete_pdu(p);
	return NULL;
}

static void block1_refuse(coap_session_t *cs, coap_pdu_t *resp, int code, const char *why)
{
	log_info("request from %s refused: %s", srv_peer_str(cs), why);
	srv_diag(resp, code, why);
}

/* 4.13 with Size1, the largest body taken (RFC 7959 2.9.3), at the part that would pass it or
 * at a first part whose Size1 announces more: the rest of the body is never taken in. */
static void block1_too_large(coap_session_t *cs, coap_pdu_t *resp, size_t at, size_t size1)
{
	uint8_t v[4];
	if (size1)
		log_warn("request from %s refused: request body too large: Size1 %zu in its first Block1 part, "
		         "more than the %u bytes taken (4.13)", srv_peer_str(cs), size1, MAX_PAYLOAD);
	else
		log_warn("request from %s refused: request body too large: its Block1 part at byte %zu goes past "
		         "the %u bytes taken (4.13)", srv_peer_str(cs), at, MAX_PAYLOAD);
	coap_add_option(resp, COAP_OPTION_SIZE1, coap_encode_var_safe(v, sizeof v, MAX_PAYLOAD), v);
	srv_diag(resp, 413, "request body too large");
}

/* Collect a Block1 part from the peer at from on session cs (NULL: our socket). Returns the
 * whole request once the last part is in (*b1 set to the option to echo), NULL when resp is the
 * answer already (2.31 Continue or an error). A body in progress holds at most MAX_PAYLOAD.
 * Size1 is optional (RFC 7959 4, and many devices leave it out): without it the bound is met
 * at the part that would pass it. */
coap_pdu_t *srv_block1_add(struct lwm2m_server *s, coap_session_t *cs, const union lwm2m_addr *from,
                           const coap_pdu_t *req, coap_opt_t *opt, coap_pdu_t *resp, unsigned *b1)
{
	unsigned v = coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt));
	unsigned num = v >> 4, more = v & 8, szx = v & 7;
	void *sess = cs ? (void *)cs : NOSEC;
	size_t len = 0;
	const uint8_t *data = NULL;
	struct block1 *b;
	coap_get_data(req, &len, &data);
	for (b = s->b1; b && !(b->sess == sess && lwm2m_addr_equal(&b->from, from)); b = b->next)
		;
	if (szx == 7) {
		srv_diag(resp, 400, "Block1 size exponent 7 is reserved");
		return NULL;
	}
	unsigned size1 = 0;
	int has_size1 = srv_opt_uint(req, COAP_OPTION_SIZE1, &size1);
	if (num == 0 && has_size1 && size1 > MAX_PAYLOAD) {
		if (b)
			srv_block1_free(s, b);
		block1_too_large(cs, resp, 0, size1);
		return NULL;
	}
	if (num == 0) {
		if (!b) {
			b = calloc(1, sizeof *b);
			if (!b) {
				srv_diag(resp, 500, "out of memory");
				return NULL;
			}
			b->from = *from;
			b->sess = sess;
			b->next = s->b1;
			s->b1 = b;
		}
		b->len = 0;
		b->next_num = 0;
	}
	if (b && more && num + 1 == b->next_num) {
		/* the part taken last, again: its 2.31 was lost */
		uint8_t vb[4];
		srv_set_code(resp, 231);
		coap_add_option(resp, COAP_OPTION_BLOCK1, coap_encode_var_safe(vb, sizeof vb, v), vb);
		return NULL;
	}
	if (!b || num != b->next_num) {
		block1_refuse(cs, resp, 408, "Block1 block without the blocks before it");
		return NULL;
	}
	if (b->len + len > MAX_PAYLOAD) {
		size_t at = b->len;
		srv_block1_free(s, b);
		block1_too_large(cs, resp, at, 0);
		return NULL;
	}
	uint8_t *nb = realloc(b->buf, b->len + len + 1);
	if (!nb) {
		srv_block1_free(s, b);
		srv_diag(resp, 500, "out of memory");
		return NULL;
	}
	b->buf = nb;
	if (len)
		memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->next_num = num + 1;
	b->since = lwm2m_now();
	*b1 = v & ~8u;
	if (more) {
		/* 2.31 Continue echoes the part taken, M set */
		uint8_t vb[4];
		srv_set_code(resp, 231);
		coap_add_option(resp, COAP_OPTION_BLOCK1, coap_encode_var_safe(vb, sizeof vb, v), vb);
		return NULL;
	}
	coap_pdu_t *whole = block1_request(req, b->buf, b->len);
	srv_block1_free(s, b);
	if (!whole)
		srv_diag(resp, 500, "out of memory");
	return whole;
}

#define BLOCK2_MAX (1u << 20) /* a Block2 body from a device larger than this is refused */

static size_t pow2_at_least(size_t n)
{
	size_t c = 1024;
	while (c < n)
		c <<= 1;
	return c;
}

/* The device broke a block-wise transfer (RFC 7959): the partial body is dropped, a request
 * fails with bad-response, an observation ends (the device is told). */
void srv_block_abort(struct lwm2m_server *s, struct lwm2m_request *rq, const char *why)
{
	log_warn("block-wise answer from %s (%s) abandoned: %s", rq->reg ? rq->reg->ep : "?",
	         srv_peer_str(rq->session != NOSEC ? rq->session : NULL), why);
	free(rq->body);
	rq->body = NULL;
	rq->body_len = 0;
	rq->bmode = 0;
	if (rq->state == RQ_OBSERVING) {
		s->st.errors++;
		srv_end_observation(s, rq, why, 1);
	} else if (rq->state == RQ_INFLIGHT) {
		s->st.errors++;
		srv_reply_status(s, rq, "bad-response", why, 0);
	} else {
		srv_nack(s, rq, COAP_NACK_NOT_DELIVERABLE);
	}
}

/* Take a Block2 part (option o) of a 2.xx answer to rq, from our socket or a DTLS session (where
 * libcoap 4.3.1 asks for the parts and hands over each, retransmitted ones again). 0: the body
 * is whole, in rep (rq->body, the caller's to free); 1: more parts follow (rq->block is the next
 * to ask for); -1: nothing to deliver (a stray or repeated part, or the transfer was abandoned
 * and rq may be gone). */
int srv_block2_part(struct lwm2m_server *s, struct lwm2m_request *rq, coap_opt_t *o, struct lwm2m_reply *rep,
                    int *has_obs)
{
	unsigned v = coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
	unsigned num = v >> 4, szx = v & 7;
	char why[96];
	if (szx == 7) {
		srv_block_abort(s, rq, "Block2 size exponent 7 is reserved");
		return -1;
	}
	/* parts are placed by offset: the device may answer with smaller blocks (RFC 7959 2.4) */
	size_t bs = (size_t)1 << (szx + 4), off = (size_t)num * bs;
	if (num == 0 && (rq->bmode != 2 || *has_obs)) {
		/* a new body; a new notification replaces a transfer in progress (RFC 7959 3.4) */
		rq->body_len = 0;
		rq->body_obs = (uint8_t)*has_obs;
	} else if (rq->bmode != 2 || off < rq->body_len) {
		return -1; /* a stray part, or one already taken (retransmitted) */
	} else if (off > rq->body_len) {
		snprintf(why, sizeof why, "Block2 part at byte %zu when %u bytes came before it", off, rq->body_len);
		srv_block_abort(s, rq, why);
		return -1;
	}
	if ((v & 8) && rep->len != bs) {
		snprintf(why, sizeof why, "Block2 part of %zu bytes, not %zu, and not the last", rep->len, bs);
		srv_block_abort(s, rq, why);
		return -1;
	}
	if (rq->body_len + rep->len > BLOCK2_MAX) {
		srv_block_abort(s, rq, "Block2 body larger than 1 MiB");
		return -1;
	}
	/* the buffer is always a power of two (>= 1 KiB): one realloc per doubling, not per part */
	size_t need = rq->body_len + rep->len + 1;
	if (!rq->body || need > pow2_at_least(rq->body_len + 1)) {
		uint8_t *nb = realloc(rq->body, pow2_at_least(need));
		if (!nb) {
			srv_block_abort(s, rq, "out of memory for the Block2 body");
			return -1;
		}
		rq->body = nb;
	}
	if (rep->len)
		memcpy(rq->body + rq->body_len, rep->data, rep->len);
	rq->body_len += (uint32_t)rep->len;
	if (v & 8) {
		/* RFC 7959 2.4: the next part is asked for (without Observe, RFC 7959 3.4) */
		rq->bmode = 2;
		rq->szx = (uint8_t)szx;
		rq->block = num + 1;
		return 1;
	}
	rq->bmode = 0;
	*has_obs = rq->body_obs;
	rep->data = rq->body;
	rep->len = rq->body_len;
	return 0;
}
