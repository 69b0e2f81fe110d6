/* A strict RFC 8259 syntax check run before libjq parses an untrusted payload: jq 1.6 leaks
 * memory on some malformed input ("a" "b"), and this also bounds nesting and names the byte
 * where the payload goes wrong. */
#include "json_check.h"

#include <stdio.h>

struct jc {
	const uint8_t *p, *end, *start;
	int depth, max_depth;
	char *why;
	size_t whysize;
};

static int jc_fail(struct jc *c, const char *what)
{
	if (c->why)
		snprintf(c->why, c->whysize, "%s at byte %zu", what, (size_t)(c->p - c->start));
	return -1;
}

static void ws(struct jc *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool hex(uint8_t x)
{
	return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F');
}

static int string(struct jc *c)
{
	c->p++; /* the opening quote */
	while (c->p < c->end) {
		uint8_t x = *c->p++;
		if (x == '"')
			return 0;
		if (x < 0x20)
			return jc_fail(c, "control character in a string");
		if (x == '\\') {
			if (c->p >= c->end)
				break;
			x = *c->p++;
			if (x == 'u') {
				for (int i = 0; i < 4; i++, c->p++)
					if (c->p >= c->end || !hex(*c->p))
						return jc_fail(c, "bad \\u escape");
			} else if (!(x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' ||
			             x == 'n' || x == 'r' || x == 't')) {
				return jc_fail(c, "bad escape in a string");
			}
		}
	}
	return jc_fail(c, "unterminated string");
}

static int digits(struct jc *c)
{
	const uint8_t *s = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > s ? 0 : jc_fail(c, "bad number");
}

static int number(struct jc *c)
{
	if (*c->p == '-')
		c->p++;
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (digits(c) < 0)
		return -1;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (digits(c) < 0)
			return -1;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (digits(c) < 0)
			return -1;
	}
	return 0;
}

static int word(struct jc *c, const char *w)
{
	for (; *w; w++, c->p++)
		if (c->p >= c->end || *c->p != (uint8_t)*w)
			return jc_fail(c, "unexpected character");
	return 0;
}

static int value(struct jc *c)
{
	ws(c);
	if (c->p >= c->end)
		return jc_fail(c, "truncated JSON");
	switch (*c->p) {
	case '"': return string(c);
	case 't': return word(c, "true");
	case 'f': return word(c, "false");
	case 'n': return word(c, "null");
	case '[':
	case '{': {
		bool obj = *c->p == '{';
		uint8_t close = obj ? '}' : ']';
		if (++c->depth > c->max_depth)
			return jc_fail(c, "JSON nested too deeply");
		c->p++;
		ws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			c->depth--;
			return 0;
		}
		for (;;) {
			if (obj) {
				ws(c);
				if (c->p >= c->end || *c->p != '"')
					return jc_fail(c, c->p >= c->end ? "truncated JSON" : "expected a key");
				if (string(c) < 0)
					return -1;
				ws(c);
				if (c->p >= c->end || *c->p != ':')
					return jc_fail(c, c->p >= c->end ? "truncated JSON" : "expected ':'");
				c->p++;
			}
			if (value(c) < 0)
				return -1;
			ws(c);
			if (c->p >= c->end)
				return jc_fail(c, "truncated JSON");
			if (*c->p == ',') {
				c->p++;
				continue;
			}
			if (*c->p == close) {
				c->p++;
				c->depth--;
				return 0;
			}
			return jc_fail(c, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	default:
		if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
			return number(c);
		return jc_fail(c, "unexpected character");
	}
}

int json_check(const uint8_t *data, size_t len, int max_depth, char *why, size_t whysize)
{
	struct jc c = {.p = data, .end = data + len, .start = data, .max_depth = max_depth,
	               .why = why, .whysize = whysize};
	if (value(&c) < 0)
		return -1;
	ws(&c);
	if (c.p != c.end)
		return jc_fail(&c, "extra data after the JSON value");
	return 0;
}
