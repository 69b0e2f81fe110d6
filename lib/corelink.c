#include "corelink.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void corelink_iter_init(struct corelink_iter *it, const char *data, size_t len)
{
	it->p = data;
	it->end = data + len;
	it->nlinks = 0;
	it->err[0] = 0;
}

static int fail(struct corelink_iter *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct corelink_iter *it, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(it->err, sizeof it->err, fmt, ap);
	va_end(ap);
	it->p = it->end;
	return -1;
}

static void skip_ws(struct corelink_iter *it)
{
	while (it->p < it->end && (*it->p == ' ' || *it->p == '\t' || *it->p == '\r' || *it->p == '\n'))
		it->p++;
}

/* RFC 5987 parmname characters, plus '*' for ext params */
static int parmname_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$&+-.^_`|~*", c) != NULL;
}

int corelink_next(struct corelink_iter *it, struct corelink *out)
{
	skip_ws(it);
	if (it->p >= it->end)
		return 0;
	if (it->nlinks > 0) {
		if (*it->p != ',')
			return fail(it, "expected ',' between links");
		it->p++;
		skip_ws(it);
	}
	if (it->p >= it->end || *it->p != '<')
		return fail(it, "expected '<' to start a link");
	if (++it->nlinks > CORELINK_MAX_LINKS)
		return fail(it, "more than %d links", CORELINK_MAX_LINKS);
	const char *u = ++it->p;
	const char *gt = memchr(u, '>', (size_t)(it->end - u));
	if (!gt)
		return fail(it, "unterminated '<'");
	for (const char *q = u; q < gt; q++)
		if ((unsigned char)*q <= ' ' || *q == '<' || *q == '"')
			return fail(it, "invalid character in link target");
	out->uri = u;
	out->uri_len = (size_t)(gt - u);
	out->nparams = 0;
	it->p = gt + 1;
	for (;;) {
		skip_ws(it);
		if (it->p >= it->end || *it->p == ',')
			return 1;
		if (*it->p != ';')
			return fail(it, "expected ';' or ',' after a link");
		it->p++;
		skip_ws(it);
		const char *n = it->p;
		while (it->p < it->end && parmname_char(*it->p))
			it->p++;
		if (it->p == n)
			return fail(it, "empty parameter name");
		if (out->nparams == CORELINK_MAX_PARAMS)
			return fail(it, "more than %d parameters on a link", CORELINK_MAX_PARAMS);
		struct corelink_param *pr = &out->params[out->nparams++];
		pr->name = n;
		pr->name_len = (size_t)(it->p - n);
		pr->value = NULL;
		pr->value_len = 0;
		pr->quoted = 0;
		skip_ws(it);
		if (it->p >= it->end || *it->p != '=')
			continue;
		it->p++;
		skip_ws(it);
		if (it->p < it->end && *it->p == '"') {
			const char *v = ++it->p;
			while (it->p < it->end && *it->p != '"') {
				if (*it->p == '\\' && it->p + 1 < it->end)
					it->p++;
				it->p++;
			}
			if (it->p >= it->end)
				return fail(it, "unterminated quoted string");
			pr->value = v;
			pr->value_len = (size_t)(it->p - v);
			pr->quoted = 1;
			it->p++;
		} else {
			const char *v = it->p;
			while (it->p < it->end && *it->p != ';' && *it->p != ',' && (unsigned char)*it->p > ' ')
				it->p++;
			pr->value = v;
			pr->value_len = (size_t)(it->p - v);
		}
	}
}

const struct corelink_param *corelink_param(const struct corelink *l, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < l->nparams; i++)
		if (l->params[i].name_len == n && strncasecmp(l->params[i].name, name, n) == 0)
			return &l->params[i];
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* "/3/0" relative to root; 1 and *key set when it names an object or an instance. */
static int object_key(const char *u, size_t n, uint32_t *key)
{
	unsigned long id[2];
	int k = 0;
	size_t i = 0;
	while (i < n) {
		if (u[i] != '/' || k == 2)
			return 0;
		i++;
		if (i >= n || u[i] < '0' || u[i] > '9')
			return 0;
		unsigned long v = 0;
		while (i < n && u[i] >= '0' && u[i] <= '9') {
			v = v * 10 + (unsigned long)(u[i++] - '0');
			if (v > 65534)
				return 0;
		}
		id[k++] = v;
	}
	if (k == 0)
		return 0;
	*key = (uint32_t)(id[0] << 16) | (k == 2 ? (uint32_t)id[1] : LWM2M_LINK_NOINST);
	return 1;
}

static int param_is(const struct corelink_param *p, const char *s)
{
	return p && p->value && p->value_len == strlen(s) && memcmp(p->value, s, p->value_len) == 0;
}

static void parse_ct(const struct corelink_param *p, struct lwm2m_links *out)
{
	if (!p || !p->value)
		return;
	size_t i = 0;
	while (i < p->value_len && out->nct < LWM2M_LINKS_MAX_CT) {
		while (i < p->value_len && p->value[i] == ' ')
			i++;
		unsigned long v = 0;
		size_t start = i;
		while (i < p->value_len && p->value[i] >= '0' && p->value[i] <= '9' && v <= 65535)
			v = v * 10 + (unsigned long)(p->value[i++] - '0');
		if (i == start || v > 65535)
			return;
		out->ct[out->nct++] = (uint16_t)v;
	}
}

int lwm2m_links_parse(const char *data, size_t len, struct lwm2m_links *out, char *err, size_t errlen)
{
	struct corelink_iter it;
	struct corelink l;
	size_t cap = 0;
	int k;

	memset(out, 0, sizeof *out);
	/* first pass: the alternate root path (rt="oma.lwm2m"), which may follow the objects */
	corelink_iter_init(&it, data, len);
	while ((k = corelink_next(&it, &l)) == 1) {
		if (!param_is(corelink_param(&l, "rt"), "oma.lwm2m"))
			continue;
		size_t n = l.uri_len;
		while (n > 0 && l.uri[n - 1] == '/')
			n--;
		if (n >= sizeof out->root) {
			snprintf(err, errlen, "alternate path too long");
			return -1;
		}
		memcpy(out->root, l.uri, n);
		out->root[n] = 0;
		parse_ct(corelink_param(&l, "ct"), out);
		break;
	}
	if (k < 0) {
		snprintf(err, errlen, "link format: %s", it.err);
		return -1;
	}
	size_t rootlen = strlen(out->root);
	corelink_iter_init(&it, data, len);
	while ((k = corelink_next(&it, &l)) == 1) {
		const char *u = l.uri;
		size_t n = l.uri_len;
		if (rootlen > 0) {
			if (n <= rootlen || memcmp(u, out->root, rootlen) != 0 || u[rootlen] != '/')
				continue;
			u += rootlen;
			n -= rootlen;
		}
		uint32_t key;
		if (!object_key(u, n, &key))
			continue;
		if (out->nobjects == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			uint32_t *no = realloc(out->objects, ncap * sizeof *no);
			if (!no) {
				snprintf(err, errlen, "out of memory");
				lwm2m_links_free(out);
				return -1;
			}
			out->objects = no;
			cap = ncap;
		}
		out->objects[out->nobjects++] = key;
	}
	if (k < 0) {
		snprintf(err, errlen, "link format: %s", it.err);
		lwm2m_links_free(out);
		return -1;
	}
	out->nobjects = lwm2m_objects_sort(out->objects, out->nobjects);
	return 0;
}

size_t lwm2m_objects_sort(uint32_t *objects, size_t n)
{
	if (n < 2)
		return n;
	qsort(objects, n, sizeof *objects, cmp_u32);
	size_t w = 1;
	for (size_t i = 1; i < n; i++)
		if (objects[i] != objects[w - 1])
			objects[w++] = objects[i];
	return w;
}

void lwm2m_links_free(struct lwm2m_links *l)
{
	free(l->objects);
	l->objects = NULL;
	l->nobjects = 0;
}
