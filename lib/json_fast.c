#include "json_fast.h"

#include <stdlib.h>
#include <string.h>

/* jq 1.6's parser runs a state machine per byte and grows each token through a jv string; for
 * the lines the tools exchange it cost more than all their own work. This one builds the same
 * jv by recursive descent, on text that json_check already found well-formed, and gives up
 * (leaving the line to jq) on anything whose value it would have to reproduce jq's decoding
 * for: backslash escapes. */

struct p {
	const char *s, *end;
	int bail;
};

static void ws(struct p *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static jv value(struct p *p);

/* p->s at the opening quote */
static jv string(struct p *p)
{
	const char *b = ++p->s;
	while (p->s < p->end && *p->s != '"') {
		if (*p->s == '\\') {
			p->bail = 1;
			return jv_invalid();
		}
		p->s++;
	}
	if (p->s >= p->end) {
		p->bail = 1;
		return jv_invalid();
	}
	jv v = jv_string_sized(b, (int)(p->s - b));
	p->s++;
	return v;
}

static jv number(struct p *p)
{
	char buf[64];
	const char *b = p->s;
	while (p->s < p->end && (strchr("0123456789+-.eE", *p->s) != NULL))
		p->s++;
	size_t n = (size_t)(p->s - b);
	if (n == 0 || n >= sizeof buf) {
		p->bail = 1;
		return jv_invalid();
	}
	memcpy(buf, b, n);
	buf[n] = 0;
	return jv_number(strtod(buf, NULL));
}

static jv value(struct p *p)
{
	ws(p);
	if (p->s >= p->end) {
		p->bail = 1;
		return jv_invalid();
	}
	switch (*p->s) {
	case '"':
		return string(p);
	case '{': {
		jv o = jv_object();
		p->s++;
		ws(p);
		if (p->s < p->end && *p->s == '}') {
			p->s++;
			return o;
		}
		while (!p->bail) {
			ws(p);
			if (p->s >= p->end || *p->s != '"') {
				p->bail = 1;
				break;
			}
			jv k = string(p);
			if (p->bail) {
				jv_free(k);
				break;
			}
			ws(p);
			if (p->s >= p->end || *p->s != ':') {
				jv_free(k);
				p->bail = 1;
				break;
			}
			p->s++;
			jv v = value(p);
			if (p->bail) {
				jv_free(k);
				jv_free(v);
				break;
			}
			o = jv_object_set(o, k, v);
			ws(p);
			if (p->s < p->end && *p->s == ',') {
				p->s++;
				continue;
			}
			if (p->s < p->end && *p->s == '}') {
				p->s++;
				return o;
			}
			p->bail = 1;
		}
		jv_free(o);
		return jv_invalid();
	}
	case '[': {
		jv a = jv_array();
		p->s++;
		ws(p);
		if (p->s < p->end && *p->s == ']') {
			p->s++;
			return a;
		}
		while (!p->bail) {
			jv v = value(p);
			if (p->bail) {
				jv_free(v);
				break;
			}
			a = jv_array_append(a, v);
			ws(p);
			if (p->s < p->end && *p->s == ',') {
				p->s++;
				continue;
			}
			if (p->s < p->end && *p->s == ']') {
				p->s++;
				return a;
			}
			p->bail = 1;
		}
		jv_free(a);
		return jv_invalid();
	}
	case 't':
		if (p->end - p->s >= 4 && memcmp(p->s, "true", 4) == 0) {
			p->s += 4;
			return jv_true();
		}
		break;
	case 'f':
		if (p->end - p->s >= 5 && memcmp(p->s, "false", 5) == 0) {
			p->s += 5;
			return jv_false();
		}
		break;
	case 'n':
		if (p->end - p->s >= 4 && memcmp(p->s, "null", 4) == 0) {
			p->s += 4;
			return jv_null();
		}
		break;
	default:
		if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9'))
			return number(p);
	}
	p->bail = 1;
	return jv_invalid();
}

jv json_fast_parse(const char *text, size_t len)
{
	struct p p = {text, text + len, 0};
	jv v = value(&p);
	ws(&p);
	if (p.bail || p.s != p.end) {
		jv_free(v);
		return jv_invalid();
	}
	return v;
}
