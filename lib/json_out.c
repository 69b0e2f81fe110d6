#include "json_out.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Where text goes: a jbuf, a FILE through a small staging buffer, or nowhere (counting). */
struct sink {
	struct jbuf *b;
	FILE *f;
	size_t count;
	int err;
	size_t n;
	char *stage;
};

#define STAGE 4096

int jbuf_grow_add(struct jbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return -1;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		char *p = b->borrowed ? malloc(cap) : realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return -1;
		}
		if (b->borrowed && b->len)
			memcpy(p, b->p, b->len);
		b->borrowed = 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

static void stage_flush(struct sink *k)
{
	if (k->n && fwrite(k->stage, 1, k->n, k->f) != k->n)
		k->err = 1;
	k->n = 0;
}

static void put(struct sink *k, const char *s, size_t n)
{
	k->count += n;
	if (k->b) {
		if (jbuf_add(k->b, s, n) < 0)
			k->err = 1;
	} else if (k->f) {
		if (k->n + n > STAGE) {
			stage_flush(k);
			if (n > STAGE) {
				if (fwrite(s, 1, n, k->f) != n)
					k->err = 1;
				return;
			}
		}
		memcpy(k->stage + k->n, s, n);
		k->n += n;
	}
}

/* jq 1.6 prints printable ASCII as is (escaping " and \), the C0 controls and DEL as \b \t \n
 * \f \r or \u00XX, and everything else (valid UTF-8: jv strings are checked) as is. */
static void put_string(struct sink *k, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	put(k, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		put(k, s + run, i - run);
		run = i + 1;
		char e[6] = {'\\', 0};
		size_t en = 2;
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\t': e[1] = 't'; break;
		case '\n': e[1] = 'n'; break;
		case '\f': e[1] = 'f'; break;
		case '\r': e[1] = 'r'; break;
		default:
			e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
			en = 6;
		}
		put(k, e, en);
	}
	put(k, s + run, len - run);
	put(k, "\"", 1);
}

/* jq's dtoa gives the shortest digits that read back as d; it uses an exponent when the
 * decimal point is 4 or more places left of the digits, or more than 15 right of them. For
 * integers below 1e16 that is the plain integer; for other finite numbers that are not
 * integers (nor subnormal), the first of %.15g, %.16g, %.17g that reads back (the same digits and the same
 * exponent rule). Whatever is left (huge integers, infinities, NaN) goes to jq itself. */
static size_t fmt_number(double d, char *buf, size_t size)
{
	if (d == 0) {
		const char *z = signbit(d) ? "-0" : "0";
		memcpy(buf, z, strlen(z) + 1);
		return strlen(z);
	}
	if (isfinite(d) && fabs(d) < 1e16 && d == (double)(long long)d) {
		char t[24];
		size_t n = 0;
		long long v = (long long)d;
		unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
		while (u) {
			t[n++] = (char)('0' + u % 10);
			u /= 10;
		}
		size_t o = 0;
		if (v < 0)
			buf[o++] = '-';
		while (n)
			buf[o++] = t[--n];
		buf[o] = 0;
		return o;
	}
	/* A number of milliseconds (clock times, "time" of the events) below 2^42 s: r / 1000
	 * reads back as d, and no other decimal with 3 places does (ulp(d) < 0.001), so the digits
	 * of r without its trailing zeros are the shortest that read back, as %.15g would find. */
	if (isfinite(d) && fabs(d) >= 1 && fabs(d) < 4e12) {
		long long r = llround(d * 1000);
		if ((double)r / 1000 == d && r % 1000 != 0) {
			unsigned long long u = r < 0 ? -(unsigned long long)r : (unsigned long long)r;
			unsigned frac = (unsigned)(u % 1000), nd = 3;
			while (frac % 10 == 0) {
				frac /= 10;
				nd--;
			}
			char t[24];
			size_t n = 0, o = 0;
			for (unsigned i = 0; i < nd; i++, frac /= 10)
				t[n++] = (char)('0' + frac % 10);
			t[n++] = '.';
			for (u /= 1000; u; u /= 10)
				t[n++] = (char)('0' + u % 10);
			if (r < 0)
				buf[o++] = '-';
			while (n)
				buf[o++] = t[--n];
			buf[o] = 0;
			return o;
		}
	}
	if (isfinite(d) && d != floor(d) && fabs(d) >= DBL_MIN) {
		for (int prec = 15; prec <= 17; prec++) {
			int n = snprintf(buf, size, "%.*g", prec, d);
			if (n > 0 && (size_t)n < size && (prec == 17 || strtod(buf, NULL) == d))
				return (size_t)n;
		}
	}
	jv s = jv_dump_string(jv_number(d), 0);
	snprintf(buf, size, "%s", jv_string_value(s));
	jv_free(s);
	return strlen(buf);
}

static void put_value(struct sink *k, jv v)
{
	switch (jv_get_kind(v)) {
	case JV_KIND_NULL:
		put(k, "null", 4);
		break;
	case JV_KIND_TRUE:
		put(k, "true", 4);
		break;
	case JV_KIND_FALSE:
		put(k, "false", 5);
		break;
	case JV_KIND_NUMBER: {
		char buf[64];
		size_t n = fmt_number(jv_number_value(v), buf, sizeof buf);
		put(k, buf, n);
		break;
	}
	case JV_KIND_STRING:
		put_string(k, jv_string_value(v), (size_t)jv_string_length_bytes(jv_copy(v)));
		break;
	case JV_KIND_ARRAY: {
		put(k, "[", 1);
		int first = 1;
		jv_array_foreach(v, i, x) {
			if (!first)
				put(k, ",", 1);
			first = 0;
			put_value(k, x);
			jv_free(x);
		}
		put(k, "]", 1);
		break;
	}
	case JV_KIND_OBJECT: {
		put(k, "{", 1);
		int first = 1;
		for (int i = jv_object_iter(v); jv_object_iter_valid(v, i); i = jv_object_iter_next(v, i)) {
			jv key = jv_object_iter_key(v, i);
			jv x = jv_object_iter_value(v, i);
			if (!first)
				put(k, ",", 1);
			first = 0;
			put_string(k, jv_string_value(key), (size_t)jv_string_length_bytes(jv_copy(key)));
			put(k, ":", 1);
			put_value(k, x);
			jv_free(key);
			jv_free(x);
		}
		put(k, "}", 1);
		break;
	}
	default:
		/* an invalid value: jq prints "<invalid>"; nobody should ask */
		put(k, "null", 4);
		break;
	}
}

int json_out_append(struct jbuf *b, jv v)
{
	struct sink k = {.b = b};
	put_value(&k, v);
	return k.err || b->failed ? -1 : 0;
}

int json_out_string(struct jbuf *b, const char *s, size_t n)
{
	struct sink k = {.b = b};
	put_string(&k, s, n);
	return k.err || b->failed ? -1 : 0;
}

int json_out_fput(FILE *f, jv v)
{
	char stage[STAGE];
	struct sink k = {.f = f, .stage = stage};
	put_value(&k, v);
	stage_flush(&k);
	return k.err ? -1 : 0;
}

int json_out_cstring(struct jbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80) {
			/* jv_string's UTF-8 check and replacement of bad bytes, as the jq object had it */
			jv v = jv_string_sized(s, (int)n);
			int rc = json_out_append(b, v);
			jv_free(v);
			return rc;
		}
	return json_out_string(b, s, n);
}

int json_out_number(struct jbuf *b, double d)
{
	char buf[64];
	size_t n = fmt_number(d, buf, sizeof buf);
	return jbuf_add(b, buf, n);
}

size_t json_out_len(jv v)
{
	struct sink k = {0};
	put_value(&k, v);
	return k.count;
}
