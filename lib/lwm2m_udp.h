/* lwm2m-listen's own CoAP-over-UDP socket for NoSec devices: batched reads, an encoder for the
 * messages we send, and RFC 7252 retransmission of our confirmable messages. A libcoap server
 * session per device costs ~1 KiB and, in libcoap 4.3.1, a walk over every session for each new
 * peer; devices on this socket cost a registration record and nothing per datagram. Parsing is
 * libcoap's (coap_pdu_parse), so the request handlers see the same PDUs as on DTLS sessions. */
#ifndef LWM2M_UDP_H
#define LWM2M_UDP_H

#include "lwm2m_registry.h"

#include <coap3/coap.h>
#include <stddef.h>
#include <stdint.h>

struct lwm2m_udp;
struct lwm2m_xmit; /* a confirmable message waiting for its ACK */

/* Called for each datagram: pdu is parsed (NULL when malformed; raw/len are the bytes). */
typedef void lwm2m_udp_recv_fn(void *ud, const union lwm2m_addr *from, const coap_pdu_t *pdu, const uint8_t *raw,
                               size_t len);
/* A confirmable message got no ACK after its retransmissions (reset 0) or a Reset (reset 1). */
typedef void lwm2m_udp_fail_fn(void *ud, void *owner, int reset);

struct lwm2m_udp *lwm2m_udp_open(const union lwm2m_addr *bind, lwm2m_udp_recv_fn *recv, lwm2m_udp_fail_fn *fail,
                                 void *ud);
void lwm2m_udp_free(struct lwm2m_udp *u);
int lwm2m_udp_fd(const struct lwm2m_udp *u);
/* Read and hand over at most max datagrams; returns how many (0: none waiting). */
int lwm2m_udp_recv(struct lwm2m_udp *u, int max);
int lwm2m_udp_send(struct lwm2m_udp *u, const union lwm2m_addr *to, const uint8_t *b, size_t n);
uint16_t lwm2m_udp_mid(struct lwm2m_udp *u);
/* An empty ACK or Reset for mid, sent with the others of this round by lwm2m_udp_flush (one
 * sendmmsg for many). */
void lwm2m_udp_send_empty_later(struct lwm2m_udp *u, const union lwm2m_addr *to, int type, uint16_t mid);
/* A message of up to 1400 bytes, sent likewise with the others of this round. */
int lwm2m_udp_send_later(struct lwm2m_udp *u, const union lwm2m_addr *to, const uint8_t *b, size_t n);
void lwm2m_udp_flush(struct lwm2m_udp *u);
/* fn(ud) runs before lwm2m_udp_flush sends anything; if it fails, the waiting messages are
 * dropped (what they acknowledge is not kept; the peers retransmit). */
void lwm2m_udp_before_flush(struct lwm2m_udp *u, int (*fn)(void *ud));

/* Send a CON message (b holds its Message ID) and retransmit it until acknowledged: after
 * ack_timeout * (1..1.5) seconds, doubling, max_retransmit times; then fail(owner, 0). */
struct lwm2m_xmit *lwm2m_udp_send_con(struct lwm2m_udp *u, const union lwm2m_addr *to, const uint8_t *b, size_t n,
                                      double ack_timeout, int max_retransmit, void *owner);
/* The ACK or Reset for mid from peer arrived: returns the owner and forgets the message
 * (NULL if there was none). */
void *lwm2m_udp_acked(struct lwm2m_udp *u, const union lwm2m_addr *from, uint16_t mid);
void lwm2m_udp_cancel(struct lwm2m_udp *u, struct lwm2m_xmit *x);
/* Retransmit what is due; returns milliseconds until the next one (-1: none). */
int lwm2m_udp_timers(struct lwm2m_udp *u);

/* Building a message: options in ascending number order. */
struct lwm2m_coapw {
	uint8_t *buf;
	size_t cap, len;
	unsigned last;
	int overflow;
};
void lwm2m_coapw_begin(struct lwm2m_coapw *w, uint8_t *buf, size_t cap, int type, unsigned code, uint16_t mid,
                       const uint8_t *tok, size_t tkl);
void lwm2m_coapw_opt(struct lwm2m_coapw *w, unsigned num, const void *val, size_t len);
void lwm2m_coapw_opt_uint(struct lwm2m_coapw *w, unsigned num, uint32_t v);
void lwm2m_coapw_payload(struct lwm2m_coapw *w, const void *p, size_t n);

#endif
