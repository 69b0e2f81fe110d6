#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include "lwm2m_udp.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define OBUF_MAX 1400 /* the largest message lwm2m_udp_send_later takes */
#define DGRAM_MAX 4096 /* larger datagrams get 4.13 with Size1 (RFC 7959 2.9.3): send them in blocks */

struct lwm2m_xmit {
	union lwm2m_addr to;
	uint16_t mid;
	int left;               /* retransmissions left */
	double due, timeout;    /* monotonic seconds */
	void *owner;
	size_t heap;            /* index in the heap */
	struct lwm2m_xmit *next; /* hash chain */
	size_t len;
	uint8_t b[];
};

struct lwm2m_udp {
	int fd;
	lwm2m_udp_recv_fn *recv;
	lwm2m_udp_fail_fn *fail;
	void *ud;
	uint16_t next_mid;
	coap_pdu_t *pdu; /* reused for every datagram */
	struct lwm2m_xmit **heap;
	size_t nheap, capheap;
	struct lwm2m_xmit **hash;
	size_t nhash;
	uint8_t (*bufs)[DGRAM_MAX];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	union lwm2m_addr from[BATCH];
	/* empty messages waiting for lwm2m_udp_flush */
	struct mmsghdr omsgs[BATCH];
	struct iovec oiov[BATCH];
	union lwm2m_addr oto[BATCH];
	uint8_t (*obuf)[OBUF_MAX];
	int nout;
	/* called before the waiting messages go out; they are dropped if it fails */
	int (*before_flush)(void *ud);
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct lwm2m_udp *lwm2m_udp_open(const union lwm2m_addr *bind_to, lwm2m_udp_recv_fn *recv, lwm2m_udp_fail_fn *fail,
                                 void *ud)
{
	struct lwm2m_udp *u = calloc(1, sizeof *u);
	if (!u)
		return NULL;
	u->fd = -1;
	u->bufs = malloc(BATCH * sizeof *u->bufs);
	u->obuf = malloc(BATCH * sizeof *u->obuf);
	u->pdu = coap_pdu_init(COAP_MESSAGE_CON, 0, 0, 65536);
	if (!u->bufs || !u->obuf || !u->pdu)
		goto fail;
	u->recv = recv;
	u->fail = fail;
	u->ud = ud;
	u->next_mid = (uint16_t)arc4random();
	u->fd = socket(bind_to->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		goto fail;
	int one = 1, rcv = 4 << 20;
	setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* a burst of Registers waits here while we handle the previous batch (capped by rmem_max) */
	setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	socklen_t al = bind_to->sa.sa_family == AF_INET ? sizeof bind_to->sin : sizeof bind_to->sin6;
	if (bind(u->fd, &bind_to->sa, al) < 0)
		goto fail;
	for (int i = 0; i < BATCH; i++) {
		u->iov[i].iov_base = u->bufs[i];
		u->iov[i].iov_len = DGRAM_MAX;
	}
	return u;
fail:;
	int e = errno;
	lwm2m_udp_free(u);
	errno = e;
	return NULL;
}

void lwm2m_udp_free(struct lwm2m_udp *u)
{
	if (!u)
		return;
	if (u->fd >= 0)
		lwm2m_udp_flush(u);
	for (size_t i = 0; i < u->nheap; i++)
		free(u->heap[i]);
	free(u->heap);
	free(u->hash);
	if (u->pdu)
		coap_delete_pdu(u->pdu);
	if (u->fd >= 0)
		close(u->fd);
	free(u->bufs);
	free(u->obuf);
	free(u);
}

int lwm2m_udp_fd(const struct lwm2m_udp *u)
{
	return u->fd;
}

uint16_t lwm2m_udp_mid(struct lwm2m_udp *u)
{
	return u->next_mid++;
}

int lwm2m_udp_send(struct lwm2m_udp *u, const union lwm2m_addr *to, const uint8_t *b, size_t n)
{
	socklen_t al = to->sa.sa_family == AF_INET ? sizeof to->sin : sizeof to->sin6;
	for (;;) {
		ssize_t r = sendto(u->fd, b, n, 0, &to->sa, al);
		if (r >= 0)
			return 0;
		if (errno != EINTR)
			break;
	}
	/* EAGAIN: the socket buffer is full; the peer retransmits, and so do we */
	log_debug("unable to send %zu bytes: %s", n, strerror(errno));
	return -1;
}

void lwm2m_udp_before_flush(struct lwm2m_udp *u, int (*fn)(void *ud))
{
	u->before_flush = fn;
}

void lwm2m_udp_flush(struct lwm2m_udp *u)
{
	if (u->nout && u->before_flush && u->before_flush(u->ud) < 0) {
		/* what they acknowledge is not kept: the peers retransmit */
		u->nout = 0;
		return;
	}
	int off = 0;
	while (off < u->nout) {
		int n = sendmmsg(u->fd, u->omsgs + off, (unsigned)(u->nout - off), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN: the socket buffer is full; the peers retransmit */
			log_debug("unable to send %d messages: %s", u->nout - off, strerror(errno));
			break;
		}
		off += n;
	}
	u->nout = 0;
}

static uint8_t *out_slot(struct lwm2m_udp *u, const union lwm2m_addr *to, size_t n)
{
	if (u->nout == BATCH)
		lwm2m_udp_flush(u);
	int i = u->nout++;
	u->oto[i] = *to;
	u->oiov[i].iov_base = u->obuf[i];
	u->oiov[i].iov_len = n;
	struct msghdr *h = &u->omsgs[i].msg_hdr;
	memset(h, 0, sizeof *h);
	h->msg_name = &u->oto[i];
	h->msg_namelen = to->sa.sa_family == AF_INET ? sizeof to->sin : sizeof to->sin6;
	h->msg_iov = &u->oiov[i];
	h->msg_iovlen = 1;
	return u->obuf[i];
}

void lwm2m_udp_send_empty_later(struct lwm2m_udp *u, const union lwm2m_addr *to, int type, uint16_t mid)
{
	uint8_t *b = out_slot(u, to, 4);
	b[0] = (uint8_t)(0x40 | type << 4);
	b[1] = 0;
	b[2] = (uint8_t)(mid >> 8);
	b[3] = (uint8_t)mid;
}

int lwm2m_udp_send_later(struct lwm2m_udp *u, const union lwm2m_addr *to, const uint8_t *b, size_t n)
{
	if (n > OBUF_MAX)
		return lwm2m_udp_send(u, to, b, n);
	memcpy(out_slot(u, to, n), b, n);
	return 0;
}

/* A datagram too large for our buffer: 4.13 with Size1 asks a CON sender to use Block1. */
static void too_large(struct lwm2m_udp *u, const union lwm2m_addr *from, const uint8_t *raw)
{
	unsigned tkl = raw[0] & 15;
	if ((raw[0] >> 6) != 1 || ((raw[0] >> 4) & 3) != COAP_MESSAGE_CON || tkl > 8)
		return;
	uint8_t b[32];
	struct lwm2m_coapw w;
	lwm2m_coapw_begin(&w, b, sizeof b, COAP_MESSAGE_ACK, COAP_RESPONSE_CODE(413), (uint16_t)(raw[2] << 8 | raw[3]),
	                  raw + 4, tkl);
	lwm2m_coapw_opt_uint(&w, COAP_OPTION_SIZE1, DGRAM_MAX - 64);
	if (!w.overflow)
		lwm2m_udp_send(u, from, b, w.len);
}

int lwm2m_udp_recv(struct lwm2m_udp *u, int max)
{
	int done = 0;
	while (done < max) {
		int want = max - done < BATCH ? max - done : BATCH;
		for (int i = 0; i < want; i++) {
			struct msghdr *h = &u->msgs[i].msg_hdr;
			memset(h, 0, sizeof *h);
			h->msg_name = &u->from[i];
			h->msg_namelen = sizeof u->from[i];
			h->msg_iov = &u->iov[i];
			h->msg_iovlen = 1;
		}
		int n = recvmmsg(u->fd, u->msgs, (unsigned)want, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("unable to read datagrams: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			size_t len = u->msgs[i].msg_len;
			const uint8_t *raw = u->bufs[i];
			const union lwm2m_addr *from = &u->from[i];
			if (u->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				if (len >= 4)
					too_large(u, from, raw);
				u->recv(u->ud, from, NULL, raw, 0);
				continue;
			}
			int ok = len >= 4 && coap_pdu_parse(COAP_PROTO_UDP, raw, len, u->pdu);
			u->recv(u->ud, from, ok ? u->pdu : NULL, raw, len);
		}
		done += n;
		if (n < want)
			break;
	}
	return done;
}

/* ---- retransmission: a heap by due time, a hash by (peer, Message ID) ---- */

static size_t xhash(const struct lwm2m_udp *u, const union lwm2m_addr *a, uint16_t mid)
{
	uint64_t h = (uint64_t)mid << 16 ^ a->sin.sin_port;
	if (a->sa.sa_family == AF_INET)
		h ^= (uint64_t)a->sin.sin_addr.s_addr << 32;
	return (size_t)((h * 0x9E3779B97F4A7C15ULL) >> 20) & (u->nhash - 1);
}

static void heap_swap(struct lwm2m_udp *u, size_t i, size_t j)
{
	struct lwm2m_xmit *t = u->heap[i];
	u->heap[i] = u->heap[j];
	u->heap[j] = t;
	u->heap[i]->heap = i;
	u->heap[j]->heap = j;
}

static void heap_up(struct lwm2m_udp *u, size_t i)
{
	while (i > 0 && u->heap[(i - 1) / 2]->due > u->heap[i]->due) {
		heap_swap(u, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct lwm2m_udp *u, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < u->nheap && u->heap[l]->due < u->heap[m]->due)
			m = l;
		if (r < u->nheap && u->heap[r]->due < u->heap[m]->due)
			m = r;
		if (m == i)
			return;
		heap_swap(u, i, m);
		i = m;
	}
}

static void heap_del(struct lwm2m_udp *u, struct lwm2m_xmit *x)
{
	size_t i = x->heap;
	u->nheap--;
	if (i != u->nheap) {
		u->heap[i] = u->heap[u->nheap];
		u->heap[i]->heap = i;
		heap_down(u, i);
		heap_up(u, i);
	}
}

static void hash_del(struct lwm2m_udp *u, struct lwm2m_xmit *x)
{
	for (struct lwm2m_xmit **pp = &u->hash[xhash(u, &x->to, x->mid)]; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			return;
		}
}

static int grow(struct lwm2m_udp *u)
{
	if (u->nheap < u->capheap)
		return 0;
	size_t n = u->capheap ? u->capheap * 2 : 256;
	struct lwm2m_xmit **h = realloc(u->heap, n * sizeof *h), **t = calloc(n, sizeof *t);
	if (h)
		u->heap = h;
	if (!h || !t) {
		free(t);
		return -1;
	}
	u->capheap = n;
	struct lwm2m_xmit **old = u->hash;
	size_t on = u->nhash;
	u->hash = t;
	u->nhash = n;
	for (size_t i = 0; i < on; i++)
		for (struct lwm2m_xmit *x = old[i], *next; x; x = next) {
			next = x->next;
			size_t k = xhash(u, &x->to, x->mid);
			x->next = t[k];
			t[k] = x;
		}
	free(old);
	return 0;
}

struct lwm2m_xmit *lwm2m_udp_send_con(struct lwm2m_udp *u, const union lwm2m_addr *to, const uint8_t *b, size_t n,
                                      double ack_timeout, int max_retransmit, void *owner)
{
	struct lwm2m_xmit *x = malloc(sizeof *x + n);
	if (!x || grow(u) < 0) {
		free(x);
		return NULL;
	}
	x->to = *to;
	x->mid = (uint16_t)(b[2] << 8 | b[3]);
	x->left = max_retransmit;
	/* RFC 7252 4.8: the first timeout is random between ACK_TIMEOUT and 1.5 times it */
	x->timeout = ack_timeout * (1 + (arc4random() % 1000) / 2000.0);
	x->due = mono() + x->timeout;
	x->owner = owner;
	x->len = n;
	memcpy(x->b, b, n);
	size_t k = xhash(u, to, x->mid);
	x->next = u->hash[k];
	u->hash[k] = x;
	x->heap = u->nheap;
	u->heap[u->nheap++] = x;
	heap_up(u, x->heap);
	lwm2m_udp_send(u, to, b, n);
	return x;
}

void lwm2m_udp_cancel(struct lwm2m_udp *u, struct lwm2m_xmit *x)
{
	if (!x)
		return;
	hash_del(u, x);
	heap_del(u, x);
	free(x);
}

void *lwm2m_udp_acked(struct lwm2m_udp *u, const union lwm2m_addr *from, uint16_t mid)
{
	if (!u->nhash)
		return NULL;
	for (struct lwm2m_xmit *x = u->hash[xhash(u, from, mid)]; x; x = x->next)
		if (x->mid == mid && lwm2m_addr_equal(&x->to, from)) {
			void *owner = x->owner;
			lwm2m_udp_cancel(u, x);
			return owner;
		}
	return NULL;
}

int lwm2m_udp_timers(struct lwm2m_udp *u)
{
	double now = mono();
	while (u->nheap && u->heap[0]->due <= now) {
		struct lwm2m_xmit *x = u->heap[0];
		if (x->left-- <= 0) {
			void *owner = x->owner;
			lwm2m_udp_cancel(u, x);
			u->fail(u->ud, owner, 0);
			continue;
		}
		x->timeout *= 2;
		x->due = now + x->timeout;
		heap_down(u, 0);
		lwm2m_udp_send(u, &x->to, x->b, x->len);
	}
	if (!u->nheap)
		return -1;
	double ms = (u->heap[0]->due - now) * 1000 + 1;
	return ms > 1e6 ? 1000000 : (int)ms;
}

/* ---- the encoder ---- */

static void put(struct lwm2m_coapw *w, const void *p, size_t n)
{
	if (w->overflow || w->len + n > w->cap) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void lwm2m_coapw_begin(struct lwm2m_coapw *w, uint8_t *buf, size_t cap, int type, unsigned code, uint16_t mid,
                       const uint8_t *tok, size_t tkl)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->last = 0;
	w->overflow = tkl > 8;
	uint8_t h[4] = {(uint8_t)(0x40 | type << 4 | (tkl & 15)), (uint8_t)code, (uint8_t)(mid >> 8), (uint8_t)mid};
	put(w, h, 4);
	if (tkl)
		put(w, tok, tkl);
}

static size_t ext(unsigned v, uint8_t *nib, uint8_t *e)
{
	if (v < 13) {
		*nib = (uint8_t)v;
		return 0;
	}
	if (v < 269) {
		*nib = 13;
		e[0] = (uint8_t)(v - 13);
		return 1;
	}
	*nib = 14;
	e[0] = (uint8_t)((v - 269) >> 8);
	e[1] = (uint8_t)(v - 269);
	return 2;
}

void lwm2m_coapw_opt(struct lwm2m_coapw *w, unsigned num, const void *val, size_t len)
{
	uint8_t h[5], dn, ln;
	size_t n = 1;
	if (num < w->last || len > 65535 + 269) {
		w->overflow = 1;
		return;
	}
	n += ext(num - w->last, &dn, h + n);
	n += ext((unsigned)len, &ln, h + n);
	h[0] = (uint8_t)(dn << 4 | ln);
	put(w, h, n);
	put(w, val, len);
	w->last = num;
}

void lwm2m_coapw_opt_uint(struct lwm2m_coapw *w, unsigned num, uint32_t v)
{
	uint8_t b[4];
	size_t n = 0;
	for (int sh = 24; sh >= 0; sh -= 8)
		if (n || (v >> sh) & 0xff)
			b[n++] = (uint8_t)(v >> sh);
	lwm2m_coapw_opt(w, num, b, n);
}

void lwm2m_coapw_payload(struct lwm2m_coapw *w, const void *p, size_t n)
{
	if (!n)
		return;
	uint8_t m = 0xff;
	put(w, &m, 1);
	put(w, p, n);
}
