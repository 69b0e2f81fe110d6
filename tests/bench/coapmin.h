/* A minimal CoAP (RFC 7252) message encoder and parser for the benchmark load generator.
 * Only what a simulated LwM2M device needs: header, token, options in ascending order, payload.
 * Header-only so every bench program can include it without touching the project's lib/. */
#ifndef COAPMIN_H
#define COAPMIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { COAP_CON = 0, COAP_NON = 1, COAP_ACK = 2, COAP_RST = 3 };

#define COAP_CODE(c, d) ((uint8_t)(((c) << 5) | (d)))
enum {
	CM_GET = 1, CM_POST = 2, CM_PUT = 3, CM_DELETE = 4,
	CM_CREATED = COAP_CODE(2, 1), CM_DELETED = COAP_CODE(2, 2), CM_CHANGED = COAP_CODE(2, 4),
	CM_CONTENT = COAP_CODE(2, 5), CM_NOT_FOUND = COAP_CODE(4, 4),
	CM_NOT_ALLOWED = COAP_CODE(4, 5), CM_NOT_ACCEPTABLE = COAP_CODE(4, 6),
};

enum {
	CO_OBSERVE = 6, CO_LOCATION_PATH = 8, CO_URI_PATH = 11, CO_CONTENT_FORMAT = 12,
	CO_URI_QUERY = 15, CO_ACCEPT = 17,
};

struct cm_writer {
	uint8_t *buf;
	size_t cap, len;
	unsigned last_opt;
	int overflow;
};

static inline void cm_put(struct cm_writer *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static inline void cm_begin(struct cm_writer *w, uint8_t *buf, size_t cap, int type, uint8_t code,
                            uint16_t mid, const uint8_t *tok, size_t tkl)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->last_opt = 0;
	w->overflow = tkl > 8;
	if (w->overflow)
		return;
	uint8_t h[4] = {(uint8_t)(0x40 | (type << 4) | tkl), code, (uint8_t)(mid >> 8), (uint8_t)mid};
	cm_put(w, h, 4);
	cm_put(w, tok, tkl);
}

/* Options must be added in ascending number order (equal numbers repeat the option). */
static inline void cm_opt(struct cm_writer *w, unsigned num, const void *val, size_t len)
{
	unsigned delta = num - w->last_opt;
	uint8_t h[5];
	size_t n = 1;
	uint8_t dn, ln;
	if (delta < 13) {
		dn = (uint8_t)delta;
	} else if (delta < 269) {
		dn = 13;
		h[n++] = (uint8_t)(delta - 13);
	} else {
		dn = 14;
		h[n++] = (uint8_t)((delta - 269) >> 8);
		h[n++] = (uint8_t)(delta - 269);
	}
	if (len < 13) {
		ln = (uint8_t)len;
	} else if (len < 269) {
		ln = 13;
		h[n++] = (uint8_t)(len - 13);
	} else {
		ln = 14;
		h[n++] = (uint8_t)((len - 269) >> 8);
		h[n++] = (uint8_t)(len - 269);
	}
	h[0] = (uint8_t)(dn << 4 | ln);
	cm_put(w, h, n);
	cm_put(w, val, len);
	w->last_opt = num;
}

/* An unsigned integer option in its shortest form (0 is the empty value). */
static inline void cm_opt_uint(struct cm_writer *w, unsigned num, uint32_t v)
{
	uint8_t b[4];
	size_t n = 0;
	if (v > 0xffffff)
		b[n++] = (uint8_t)(v >> 24);
	if (v > 0xffff)
		b[n++] = (uint8_t)(v >> 16);
	if (v > 0xff)
		b[n++] = (uint8_t)(v >> 8);
	if (v > 0)
		b[n++] = (uint8_t)v;
	cm_opt(w, num, b, n);
}

static inline void cm_payload(struct cm_writer *w, const void *p, size_t n)
{
	if (n == 0)
		return;
	uint8_t m = 0xff;
	cm_put(w, &m, 1);
	cm_put(w, p, n);
}

/* A parsed message: pointers into the datagram. */
#define CM_MAX_OPTS 24
struct cm_msg {
	int type;
	uint8_t code;
	uint16_t mid;
	uint8_t tkl;
	const uint8_t *tok;
	unsigned nopt;
	struct { uint16_t num; uint16_t len; const uint8_t *val; } opt[CM_MAX_OPTS];
	const uint8_t *payload;
	size_t plen;
};

/* 0 on success, -1 on a malformed message (RFC 7252 3.1 format errors). */
static inline int cm_parse(struct cm_msg *m, const uint8_t *d, size_t n)
{
	if (n < 4 || (d[0] >> 6) != 1)
		return -1;
	m->type = (d[0] >> 4) & 3;
	m->tkl = d[0] & 15;
	m->code = d[1];
	m->mid = (uint16_t)(d[2] << 8 | d[3]);
	if (m->tkl > 8 || 4u + m->tkl > n)
		return -1;
	m->tok = d + 4;
	m->nopt = 0;
	m->payload = NULL;
	m->plen = 0;
	size_t i = 4u + m->tkl;
	unsigned num = 0;
	while (i < n) {
		if (d[i] == 0xff) {
			if (i + 1 >= n)
				return -1;
			m->payload = d + i + 1;
			m->plen = n - i - 1;
			return 0;
		}
		unsigned dl = d[i] >> 4, ll = d[i] & 15;
		i++;
		if (dl == 15 || ll == 15)
			return -1;
		if (dl == 13) {
			if (i >= n) return -1;
			dl = 13u + d[i++];
		} else if (dl == 14) {
			if (i + 1 >= n) return -1;
			dl = 269u + (unsigned)(d[i] << 8 | d[i + 1]);
			i += 2;
		}
		if (ll == 13) {
			if (i >= n) return -1;
			ll = 13u + d[i++];
		} else if (ll == 14) {
			if (i + 1 >= n) return -1;
			ll = 269u + (unsigned)(d[i] << 8 | d[i + 1]);
			i += 2;
		}
		num += dl;
		if (i + ll > n || num > 0xffff)
			return -1;
		if (m->nopt < CM_MAX_OPTS) {
			m->opt[m->nopt].num = (uint16_t)num;
			m->opt[m->nopt].len = (uint16_t)ll;
			m->opt[m->nopt].val = d + i;
			m->nopt++;
		}
		i += ll;
	}
	return 0;
}

/* Value of the first option num as an unsigned integer; def when absent. */
static inline uint32_t cm_get_uint(const struct cm_msg *m, unsigned num, uint32_t def)
{
	for (unsigned k = 0; k < m->nopt; k++) {
		if (m->opt[k].num != num)
			continue;
		uint32_t v = 0;
		for (unsigned j = 0; j < m->opt[k].len && j < 4; j++)
			v = v << 8 | m->opt[k].val[j];
		return v;
	}
	return def;
}

static inline int cm_has(const struct cm_msg *m, unsigned num)
{
	for (unsigned k = 0; k < m->nopt; k++)
		if (m->opt[k].num == num)
			return 1;
	return 0;
}

/* The Uri-Path (or Location-Path) joined with '/', with a leading '/'. */
static inline void cm_path(const struct cm_msg *m, unsigned num, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = 0;
	for (unsigned k = 0; k < m->nopt; k++) {
		if (m->opt[k].num != num)
			continue;
		if (n + 1u + m->opt[k].len + 1u > cap)
			break;
		out[n++] = '/';
		memcpy(out + n, m->opt[k].val, m->opt[k].len);
		n += m->opt[k].len;
		out[n] = 0;
	}
	if (n == 0 && cap > 1) {
		out[0] = '/';
		out[1] = 0;
	}
}

#endif
