/* What SenML JSON and SenML CBOR share: base names, base time, and one value per record,
 * typed from the object model where that is unambiguous (LwM2M TS Core 1.1, 7.4.4/7.4.5). */
#include "lwm2m_codec_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void senml_begin(struct senml_state *st, const struct lwm2m_path *base, const char *fmt)
{
	memset(st, 0, sizeof *st);
	st->base = base;
	st->fmt = fmt;
	st->times = jv_object();
	st->out = jv_object();
}

int senml_fail(struct senml_state *st, const char *fmt, ...)
{
	char buf[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	jv_free(st->out);
	st->out = codec_err("%s: record %d: %s", st->fmt, st->idx + 1, buf);
	return -1;
}

int senml_record(struct senml_state *st, const struct senml_rec *r)
{
	char ps[LWM2M_PATH_STRLEN], name[2 * sizeof st->bn];
	if (r->has_bn) {
		if (r->bnlen >= sizeof st->bn || memchr(r->bn, 0, r->bnlen))
			return senml_fail(st, "bad base name");
		memcpy(st->bn, r->bn, r->bnlen);
		st->bnlen = r->bnlen;
	}
	if (r->has_bt)
		st->bt = r->bt;
	size_t nlen = st->bnlen;
	memcpy(name, st->bn, nlen);
	if (r->has_n) {
		if (r->nlen >= sizeof name - nlen || memchr(r->n, 0, r->nlen))
			return senml_fail(st, "bad name");
		memcpy(name + nlen, r->n, r->nlen);
		nlen += r->nlen;
	}
	struct lwm2m_path p;
	if (codec_name_to_path(name, nlen, &p) < 0)
		return senml_fail(st, "name \"%.*s\" is not an LwM2M path", (int)(nlen > 40 ? 40 : nlen),
		                  name);
	PATHSTR(&p, ps);
	if (r->nvals == 0)
		return senml_fail(st, "%s has no value", ps);
	if (r->nvals > 1)
		return senml_fail(st, "%s: more than one value", ps);
	double t = st->bt + r->t;
	jv prev = jv_object_get(jv_copy(st->times), jv_string(ps));
	bool older = jv_get_kind(prev) == JV_KIND_NUMBER && jv_number_value(prev) > t;
	jv_free(prev);
	jv v;
	switch (r->kind) {
	case SENML_NUM: v = codec_from_number(&p, r->num); break;
	case SENML_STR: v = codec_from_text(&p, (const char *)r->s, r->slen); break;
	case SENML_BOOL: v = jv_bool(r->b); break;
	case SENML_DATA: v = codec_from_bytes(&p, r->s, r->slen); break;
	case SENML_OBJLNK: v = jv_string_sized((const char *)r->s, (int)r->slen); break;
	default: return senml_fail(st, "%s has no value", ps);
	}
	if (!jv_is_valid(v)) {
		jv m = jv_invalid_get_msg(v);
		senml_fail(st, "%s: %s", ps, jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "bad value");
		jv_free(m);
		return -1;
	}
	if (older) {
		jv_free(v);
		return 0;
	}
	st->times = jv_object_set(st->times, jv_string(ps), jv_number(t));
	st->out = codec_store(st->out, st->base, &p, v, st->fmt);
	return jv_is_valid(st->out) ? 0 : -1;
}

jv senml_end(struct senml_state *st)
{
	jv_free(st->times);
	return st->out;
}

void senml_names(const struct codec_vals *vs, size_t i, char *bn, size_t bnsize, char *n,
                 size_t nsize)
{
	bn[0] = 0;
	if (i == 0 && vs->prefix.len > 0) {
		lwm2m_path_str(&vs->prefix, bn, bnsize);
		size_t l = strlen(bn);
		if (l + 1 < bnsize) {
			bn[l] = '/';
			bn[l + 1] = 0;
		}
	}
	codec_rel_name(&vs->prefix, &vs->v[i].path, n, nsize);
}
