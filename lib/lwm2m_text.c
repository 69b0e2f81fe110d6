/* text/plain (0) and application/octet-stream (42): one value, for a resource or a resource
 * instance. Text is typed from the object model; a resource the model does not know stays a
 * string (text says nothing more). Opaque payloads become base64 strings. */
#include "lwm2m_codec_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int single_target(const struct lwm2m_path *base, const char *fmt, char *why, size_t n)
{
	char bs[LWM2M_PATH_STRLEN];
	if (base->len < 3) {
		snprintf(why, n, "%s: a single value cannot answer a request on %s", fmt,
		         PATHSTR(base, bs));
		return -1;
	}
	return 0;
}

static bool parse_int(const char *s, int64_t *v)
{
	char *end;
	if (!*s || !(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
		return false;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*v = x;
	return true;
}

jv lwm2m_text_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	char why[128], ps[LWM2M_PATH_STRLEN];
	if (single_target(base, "text", why, sizeof why) < 0)
		return codec_err("%s", why);
	if (memchr(data, 0, len))
		return codec_err("text: a NUL byte in the payload");
	char *s = malloc(len + 1);
	if (!s)
		return codec_err("out of memory");
	memcpy(s, data, len);
	s[len] = 0;
	PATHSTR(base, ps);
	jv v;
	int64_t i;
	switch (codec_res_type(base, NULL)) {
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME:
		v = parse_int(s, &i) ? jv_number((double)i)
		                     : codec_err("text: %s: \"%.40s\" is not an integer", ps, s);
		break;
	case LWM2M_T_UNSIGNED: {
		char *end;
		errno = 0;
		unsigned long long u = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
		v = (s[0] >= '0' && s[0] <= '9' && !errno && !*end)
		        ? jv_number((double)u)
		        : codec_err("text: %s: \"%.40s\" is not an unsigned integer", ps, s);
		break;
	}
	case LWM2M_T_FLOAT: {
		char *end;
		errno = 0;
		double d = strtod(s, &end);
		bool ok = len && !errno && !*end && isfinite(d) && s[0] != ' ' && s[0] != '\t' &&
		          s[0] != '\n' && strspn(s, "0123456789+-.eE") == len;
		v = ok ? jv_number(d) : codec_err("text: %s: \"%.40s\" is not a float", ps, s);
		break;
	}
	case LWM2M_T_BOOLEAN:
		v = strcmp(s, "1") == 0 ? jv_true() : strcmp(s, "0") == 0 ? jv_false()
		    : codec_err("text: %s: \"%.40s\" is not a boolean (0 or 1)", ps, s);
		break;
	case LWM2M_T_OBJLNK: {
		unsigned a, b;
		int n = 0;
		v = (sscanf(s, "%5u:%5u%n", &a, &b, &n) == 2 && (size_t)n == len && a <= 65535 &&
		     b <= 65535 && s[0] >= '0' && s[0] <= '9')
		        ? jv_string_fmt("%u:%u", a, b)
		        : codec_err("text: %s: \"%.40s\" is not an objlnk (object:instance)", ps, s);
		break;
	}
	case LWM2M_T_OPAQUE: {
		uint8_t *b;
		size_t n;
		if (codec_unb64(s, len, &b, &n) < 0) {
			v = codec_err("text: %s: opaque value is not base64", ps);
		} else {
			v = codec_b64(b, n);
			free(b);
		}
		break;
	}
	default:
		v = codec_from_text(base, s, len);
		break;
	}
	free(s);
	return codec_store(jv_object(), base, base, v, "text");
}

/* Shortest decimal that reads back as the same double. */
static void put_double(double d, struct obuf *o)
{
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	obuf_put(o, buf, strlen(buf));
}

void codec_val_text(const struct codec_val *v, struct obuf *o)
{
	char buf[48];
	switch (v->type) {
	case LWM2M_T_STRING:
	case LWM2M_T_CORELNK:
		obuf_put(o, v->bytes, v->nbytes);
		return;
	case LWM2M_T_OPAQUE: {
		char *s = codec_b64url(v->bytes, v->nbytes);
		if (!s) {
			o->err = true;
			return;
		}
		/* text/plain carries opaque as standard base64 with padding */
		size_t n = strlen(s);
		for (size_t i = 0; i < n; i++)
			s[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
		obuf_put(o, s, n);
		obuf_put(o, "==", (4 - n % 4) % 4);
		free(s);
		return;
	}
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME:
		snprintf(buf, sizeof buf, "%lld", (long long)v->v.i);
		break;
	case LWM2M_T_UNSIGNED:
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)v->v.u);
		break;
	case LWM2M_T_FLOAT:
		put_double(v->v.f, o);
		return;
	case LWM2M_T_BOOLEAN:
		snprintf(buf, sizeof buf, "%d", v->v.b ? 1 : 0);
		break;
	case LWM2M_T_OBJLNK:
		snprintf(buf, sizeof buf, "%u:%u", v->v.lnk[0], v->v.lnk[1]);
		break;
	default:
		buf[0] = 0;
	}
	obuf_put(o, buf, strlen(buf));
}

static int one_value(const struct lwm2m_path *base, const struct codec_vals *vs, const char *fmt,
                     char **err)
{
	char why[128], ps[LWM2M_PATH_STRLEN];
	if (single_target(base, fmt, why, sizeof why) < 0)
		return codec_seterr(err, "%s", why);
	if (vs->n != 1 || vs->v[0].path.len != base->len)
		return codec_seterr(err, "%s carries exactly one value, for %s", fmt, PATHSTR(base, ps));
	return 0;
}

int lwm2m_text_encode(const struct lwm2m_path *base, const struct codec_vals *vs, struct obuf *o,
                      char **err)
{
	if (one_value(base, vs, "text", err) < 0)
		return -1;
	codec_val_text(&vs->v[0], o);
	return 0;
}

jv lwm2m_opaque_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	char why[128];
	if (single_target(base, "opaque", why, sizeof why) < 0)
		return codec_err("%s", why);
	return codec_store(jv_object(), base, base, codec_b64(data, len), "opaque");
}

int lwm2m_opaque_encode(const struct lwm2m_path *base, const struct codec_vals *vs, struct obuf *o,
                        char **err)
{
	char ps[LWM2M_PATH_STRLEN];
	if (one_value(base, vs, "opaque", err) < 0)
		return -1;
	const struct codec_val *v = &vs->v[0];
	if (v->type == LWM2M_T_STRING && !objmodel_resource(base->id[0], base->id[2])) {
		/* a resource the model does not know: the string is the base64 of the bytes */
		uint8_t *b;
		size_t n;
		if (codec_unb64((const char *)v->bytes, v->nbytes, &b, &n) < 0)
			return codec_seterr(err, "%s: expected opaque (a base64 string)", PATHSTR(base, ps));
		obuf_put(o, b, n);
		free(b);
		return 0;
	}
	if (v->type != LWM2M_T_OPAQUE)
		return codec_seterr(err, "%s: opaque content format needs an opaque resource, this one "
		                    "is %s", PATHSTR(base, ps), objmodel_type_name(vs->v[0].type));
	obuf_put(o, vs->v[0].bytes, vs->v[0].nbytes);
	return 0;
}
