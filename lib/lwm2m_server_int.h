/* Shared between the parts of the LwM2M server (lib/lwm2m_server.c and the lib/lwm2m_*.c it
 * uses); not a public interface. */
#ifndef LWM2M_SERVER_INT_H
#define LWM2M_SERVER_INT_H

#include "lwm2m_server.h"
#include "lwm2m_udp.h"

#include <coap3/coap.h>
#include <limits.h>

#define MAX_PAYLOAD (64 * 1024) /* a Register payload larger than this is refused */

struct lwm2m_server {
	struct lwm2m_server_opts o;
	struct lwm2m_server_cb cb;
	coap_context_t *ctx;
	coap_endpoint_t *ep;
	struct lwm2m_registry reg;
	struct lwm2m_stats st;
	struct lwm2m_request **tok;  /* token hash */
	size_t ntok, tokcount;
	struct lwm2m_request *all;   /* every live request */
	uint64_t next_token;
	char state_file[PATH_MAX];
	int dirty;
	double last_save, last_tick, last_flood_log;
	coap_tick_t last_prepare;
	int dtls_rep; /* times the DTLS endpoint's event is handed to libcoap at once (lwm2m_server_io) */
	unsigned long nobs, ninflight;
	struct lwm2m_dtls *dtls;
	struct lwm2m_udp *udp;       /* NoSec devices: our own socket, no libcoap session */
	int epfd;                    /* libcoap's descriptor and udp's */
	const union lwm2m_addr *from; /* the peer of the datagram being handled on udp */
	struct block1 *b1;           /* Block1 bodies arriving (NoSec and DTLS) */
	struct pending_ack *acks;    /* CON messages whose lines are not written yet */
	size_t nacks, capacks;
};

struct pending_ack {
	union lwm2m_addr to;          /* on our socket */
	void *sess;                   /* NOSEC, or the DTLS session (referenced) */
	uint64_t client, mark, token; /* acknowledged once client's written bytes reach mark */
	uint16_t mid;
};

/* A request body arriving in Block1 parts (RFC 7959 2.5) from one peer: its address and its
 * session (NOSEC, or the DTLS session, compared and never dereferenced). */
struct block1 {
	struct block1 *next;
	union lwm2m_addr from;
	void *sess;
	uint32_t next_num;
	double since;
	size_t len;
	uint8_t *buf;
};

/* libcoap calls back without a user pointer for some handlers: one server per process. */
extern struct lwm2m_server *lwm2m_srv;

/* A NoSec device reached over s->udp at g->addr stands for its session with this marker. */
extern char srv_nosec_marker;
#define NOSEC ((void *)&srv_nosec_marker)

/* lib/lwm2m_server.c: sessions, log lines, requests, replies */
void *srv_sess_ref(void *cs);
void srv_sess_release(void *cs);
const char *srv_peer_str(coap_session_t *cs);
double srv_round_ms(double t);
void srv_emit_line(struct lwm2m_server *s, const char *event, struct lwm2m_reg *g, const char *more,
                   size_t nmore, jv extra);
void srv_emit(struct lwm2m_server *s, const char *event, struct lwm2m_reg *g, jv extra);
void srv_unlink_reg(struct lwm2m_request *rq);
void srv_reply_status(struct lwm2m_server *s, struct lwm2m_request *rq, const char *status, const char *error,
                      int notify);
int srv_reachable(const struct lwm2m_reg *g, double now);
void srv_flush_held(struct lwm2m_server *s, struct lwm2m_reg *g);
void srv_end_observation(struct lwm2m_server *s, struct lwm2m_request *rq, const char *why, int tell_device);
struct lwm2m_reg *srv_session_reg(coap_session_t *cs);
void srv_touch(struct lwm2m_server *s, struct lwm2m_reg *g);
int srv_opt_uint(const coap_pdu_t *pdu, coap_option_num_t num, unsigned *out);
void srv_deliver(struct lwm2m_server *s, struct lwm2m_request *rq, struct lwm2m_reply *rep, int has_obs);
void srv_nack(struct lwm2m_server *s, struct lwm2m_request *rq, coap_nack_reason_t reason);

/* lib/lwm2m_token.c: the token table */
void srv_tok_add(struct lwm2m_server *s, struct lwm2m_request *rq);
struct lwm2m_request *srv_tok_find(struct lwm2m_server *s, uint64_t t);
void srv_tok_del(struct lwm2m_server *s, struct lwm2m_request *rq);

/* lib/lwm2m_rd.c: the registration interface (Register, Update, De-register, Send) */
void srv_set_code(coap_pdu_t *resp, int code);
void srv_diag(coap_pdu_t *resp, int code, const char *msg);
void srv_addr_from_session(coap_session_t *cs, union lwm2m_addr *a);
void srv_detach_session(struct lwm2m_reg *g);
void srv_drop_reg(struct lwm2m_server *s, struct lwm2m_reg *g, struct lwm2m_reg *next, const char *why);
void srv_hnd_register(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                      coap_pdu_t *resp);
void srv_hnd_other(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                   coap_pdu_t *resp);

/* lib/lwm2m_block.c: Block1 request bodies and Block2 answers */
void srv_block1_free(struct lwm2m_server *s, struct block1 *b);
coap_pdu_t *srv_block1_add(struct lwm2m_server *s, coap_session_t *cs, const union lwm2m_addr *from,
                           const coap_pdu_t *req, coap_opt_t *opt, coap_pdu_t *resp, unsigned *b1);
void srv_block_abort(struct lwm2m_server *s, struct lwm2m_request *rq, const char *why);
int srv_block2_part(struct lwm2m_server *s, struct lwm2m_request *rq, coap_opt_t *o, struct lwm2m_reply *rep,
                    int *has_obs);

/* lib/lwm2m_ack.c: ACKs held until a message's line is written; stale notifications */
int srv_ack_after(struct lwm2m_server *s, void *sess, const union lwm2m_addr *peer, uint16_t mid,
                  struct lwm2m_request *rq, struct lwm2m_reply *rep, int has_obs);
void srv_acks_due(struct lwm2m_server *s);
int srv_obs_stale(struct lwm2m_request *rq, const coap_pdu_t *pdu);

#endif
