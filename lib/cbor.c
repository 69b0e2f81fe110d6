#include "cbor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CBOR_MAX_CHUNKS 4096

void cbor_reader_init(struct cbor_reader *r, const uint8_t *data, size_t len)
{
	r->p = data;
	r->end = data + len;
	r->err = NULL;
}

bool cbor_at_end(const struct cbor_reader *r)
{
	return r->p == r->end;
}

static int fail(struct cbor_reader *r, const char *why)
{
	r->err = why;
	return -1;
}

static double half_to_double(uint16_t h)
{
	int e = (h >> 10) & 0x1f;
	double m = h & 0x3ff;
	double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m == 0 ? INFINITY : NAN) : ldexp(m + 1024, e - 25);
	return (h & 0x8000) ? -v : v;
}

int cbor_read(struct cbor_reader *r, struct cbor_item *it)
{
	memset(it, 0, sizeof *it);
	if (r->p >= r->end)
		return fail(r, "truncated CBOR");
	uint8_t ib = *r->p++;
	int major = ib >> 5, ai = ib & 0x1f;
	uint64_t v = 0;
	if (ai < 24) {
		v = (uint64_t)ai;
	} else if (ai <= 27) {
		size_t n = (size_t)1 << (ai - 24);
		if ((size_t)(r->end - r->p) < n)
			return fail(r, "truncated CBOR");
		for (size_t i = 0; i < n; i++)
			v = v << 8 | *r->p++;
	} else if (ai == 31) {
		if (major == 0 || major == 1 || major == 6)
			return fail(r, "malformed CBOR (indefinite length on an integer or tag)");
		if (major == 7) {
			it->type = CBOR_BREAK;
			return 0;
		}
		it->indef = true;
	} else {
		return fail(r, "malformed CBOR (reserved additional information)");
	}
	it->val = v;
	switch (major) {
	case 0: it->type = CBOR_UINT; break;
	case 1: it->type = CBOR_NEGINT; break;
	case 2:
	case 3:
		it->type = major == 2 ? CBOR_BYTES : CBOR_TEXT;
		if (!it->indef) {
			if ((uint64_t)(r->end - r->p) < v)
				return fail(r, "truncated CBOR (string longer than the payload)");
			it->str = r->p;
			it->len = (size_t)v;
			r->p += v;
		}
		break;
	case 4: it->type = CBOR_ARRAY; break;
	case 5: it->type = CBOR_MAP; break;
	case 6: it->type = CBOR_TAG; break;
	case 7:
		if (ai == 25 || ai == 26 || ai == 27) {
			it->type = CBOR_FLOAT;
			if (ai == 25) {
				it->f = half_to_double((uint16_t)v);
			} else if (ai == 26) {
				uint32_t u = (uint32_t)v;
				float f;
				memcpy(&f, &u, 4);
				it->f = f;
			} else {
				memcpy(&it->f, &v, 8);
			}
		} else if (v == 20 || v == 21) {
			it->type = CBOR_BOOL;
			it->b = v == 21;
		} else if (v == 22) {
			it->type = CBOR_NULL;
		} else if (v == 23) {
			it->type = CBOR_UNDEFINED;
		} else {
			it->type = CBOR_SIMPLE;
		}
		break;
	}
	return 0;
}

int cbor_more(struct cbor_reader *r, const struct cbor_item *it, uint64_t *left)
{
	if (!it->indef) {
		if (*left == 0)
			return 0;
		(*left)--;
		return 1;
	}
	if (r->p >= r->end)
		return fail(r, "truncated CBOR (no break after an indefinite-length item)");
	if (*r->p == 0xff) {
		r->p++;
		return 0;
	}
	return 1;
}

int cbor_string(struct cbor_reader *r, const struct cbor_item *it, const uint8_t **s, size_t *n,
                uint8_t **owned)
{
	*owned = NULL;
	if (!it->indef) {
		*s = it->str;
		*n = it->len;
		return 0;
	}
	struct obuf b = {0};
	for (int chunks = 0;; chunks++) {
		struct cbor_item c;
		if (chunks > CBOR_MAX_CHUNKS) {
			free(b.p);
			return fail(r, "too many chunks in an indefinite-length string");
		}
		if (cbor_read(r, &c) < 0) {
			free(b.p);
			return -1;
		}
		if (c.type == CBOR_BREAK)
			break;
		if (c.type != it->type || c.indef) {
			free(b.p);
			return fail(r, "malformed CBOR (bad chunk in an indefinite-length string)");
		}
		obuf_put(&b, c.str, c.len);
	}
	if (b.err) {
		free(b.p);
		return fail(r, "out of memory");
	}
	*owned = b.p;
	*s = b.p ? b.p : (const uint8_t *)"";
	*n = b.len;
	return 0;
}

int cbor_skip(struct cbor_reader *r, const struct cbor_item *it, int depth)
{
	if (depth <= 0)
		return fail(r, "CBOR nested too deeply");
	switch (it->type) {
	case CBOR_BYTES:
	case CBOR_TEXT:
		if (it->indef) {
			const uint8_t *s;
			size_t n;
			uint8_t *owned;
			if (cbor_string(r, it, &s, &n, &owned) < 0)
				return -1;
			free(owned);
		}
		return 0;
	case CBOR_ARRAY:
	case CBOR_MAP: {
		uint64_t left = it->val;
		int k;
		while ((k = cbor_more(r, it, &left)) == 1) {
			for (int i = 0; i < (it->type == CBOR_MAP ? 2 : 1); i++) {
				struct cbor_item c;
				if (cbor_read(r, &c) < 0 || cbor_skip(r, &c, depth - 1) < 0)
					return -1;
				if (c.type == CBOR_BREAK)
					return fail(r, "malformed CBOR (unexpected break)");
			}
		}
		return k;
	}
	case CBOR_TAG: {
		struct cbor_item c;
		if (cbor_read(r, &c) < 0)
			return -1;
		if (c.type == CBOR_BREAK)
			return fail(r, "malformed CBOR (unexpected break)");
		return cbor_skip(r, &c, depth - 1);
	}
	default:
		return 0;
	}
}

void cbor_put_head(struct obuf *o, int major, uint64_t v)
{
	uint8_t b[9];
	size_t n;
	b[0] = (uint8_t)(major << 5);
	if (v < 24) {
		b[0] |= (uint8_t)v;
		n = 1;
	} else if (v <= 0xff) {
		b[0] |= 24;
		b[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		b[0] |= 25;
		n = 3;
	} else if (v <= 0xffffffffu) {
		b[0] |= 26;
		n = 5;
	} else {
		b[0] |= 27;
		n = 9;
	}
	for (size_t i = 1; i < n && n > 2; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	obuf_put(o, b, n);
}

void cbor_put_uint(struct obuf *o, uint64_t v)
{
	cbor_put_head(o, 0, v);
}

void cbor_put_int(struct obuf *o, int64_t v)
{
	if (v >= 0)
		cbor_put_head(o, 0, (uint64_t)v);
	else
		cbor_put_head(o, 1, (uint64_t)(-1 - v));
}

void cbor_put_bytes(struct obuf *o, const void *p, size_t n)
{
	cbor_put_head(o, 2, n);
	obuf_put(o, p, n);
}

void cbor_put_text(struct obuf *o, const char *s, size_t n)
{
	cbor_put_head(o, 3, n);
	obuf_put(o, s, n);
}

void cbor_put_array(struct obuf *o, size_t n)
{
	cbor_put_head(o, 4, n);
}

void cbor_put_map(struct obuf *o, size_t n)
{
	cbor_put_head(o, 5, n);
}

void cbor_put_bool(struct obuf *o, bool b)
{
	obuf_byte(o, b ? 0xf5 : 0xf4);
}

void cbor_put_null(struct obuf *o)
{
	obuf_byte(o, 0xf6);
}

/* The half-precision bits for f when it is exactly representable, else -1. */
static int32_t exact_half(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	uint32_t sign = (u >> 16) & 0x8000;
	int e = (int)((u >> 23) & 0xff) - 127;
	uint32_t m = u & 0x7fffff;
	if ((u & 0x7fffffff) == 0)
		return (int32_t)sign;
	if (e == 128)
		return -1;
	if (e >= -14 && e <= 15) {
		if (m & 0x1fff)
			return -1;
		return (int32_t)(sign | (uint32_t)(e + 15) << 10 | m >> 13);
	}
	if (e >= -24 && e < -14) {
		uint32_t full = m | 0x800000;
		int shift = -e - 1; /* value / 2^-24 = full >> (-(e + 1)) */
		if (full & ((1u << shift) - 1))
			return -1;
		return (int32_t)(sign | full >> shift);
	}
	return -1;
}

void cbor_put_float(struct obuf *o, double d)
{
	float f = (float)d;
	if ((double)f == d || isnan(d)) {
		int32_t h = exact_half(f);
		if (h >= 0) {
			uint8_t b[3] = {0xf9, (uint8_t)(h >> 8), (uint8_t)h};
			obuf_put(o, b, 3);
			return;
		}
		uint32_t u;
		memcpy(&u, &f, 4);
		uint8_t b[5] = {0xfa, (uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
		obuf_put(o, b, 5);
		return;
	}
	uint64_t u;
	memcpy(&u, &d, 8);
	uint8_t b[9];
	b[0] = 0xfb;
	for (int i = 0; i < 8; i++)
		b[1 + i] = (uint8_t)(u >> (8 * (7 - i)));
	obuf_put(o, b, 9);
}

int cbor_number(struct cbor_reader *r, const struct cbor_item *it, double *d)
{
	switch (it->type) {
	case CBOR_UINT: *d = (double)it->val; return 0;
	case CBOR_NEGINT: *d = -1.0 - (double)it->val; return 0;
	case CBOR_FLOAT: *d = it->f; return 0;
	case CBOR_TAG:
		break;
	default:
		return fail(r, "not a number");
	}
	struct cbor_item c;
	if (cbor_read(r, &c) < 0)
		return -1;
	if (it->val == 1 && (c.type == CBOR_UINT || c.type == CBOR_NEGINT || c.type == CBOR_FLOAT))
		return cbor_number(r, &c, d);
	if (it->val == 4 && c.type == CBOR_ARRAY && !c.indef && c.val == 2) {
		/* [exponent, mantissa]: mantissa * 10^exponent */
		struct cbor_item e, m;
		if (cbor_read(r, &e) < 0 || cbor_read(r, &m) < 0)
			return -1;
		if ((e.type != CBOR_UINT && e.type != CBOR_NEGINT) || e.val > 400 ||
		    (m.type != CBOR_UINT && m.type != CBOR_NEGINT))
			return fail(r, "bad decimal fraction");
		double ex = e.type == CBOR_UINT ? (double)e.val : -1.0 - (double)e.val;
		double mv = m.type == CBOR_UINT ? (double)m.val : -1.0 - (double)m.val;
		*d = mv * pow(10, ex);
		return 0;
	}
	return fail(r, "not a number (unsupported tag)");
}
