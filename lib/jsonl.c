#include "jsonl.h"
#include "linereader.h"
#include "log.h"

#include "json_check.h"
#include "json_fast.h"
#include "json_out.h"

#include <errno.h>
#include <stdio_ext.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

jv jsonl_parse_object(const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return jv_invalid_with_msg(jv_string("empty line"));
	/* jq 1.6 leaks on some malformed input (["a" "b"]): only well-formed JSON reaches it; 256 is
	 * jq's own nesting limit */
	char why[96];
	if (json_check((const uint8_t *)line, len, 256, why, sizeof why) < 0)
		return jv_invalid_with_msg(jv_string_fmt("malformed JSON: %s", why));
	jv v = json_fast_parse(line, len);
	if (!jv_is_valid(v))
		v = jv_parse_sized(line, (int)len);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);
		jv out = jv_invalid_with_msg(jv_string_fmt(
		    "malformed JSON: %s", jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unreadable"));
		jv_free(msg);
		return out;
	}
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		jv_free(v);
		return jv_invalid_with_msg(jv_string("not a JSON object"));
	}
	return v;
}

int jsonl_put(FILE *f, jv v)
{
	/* jq's own dump cost more than everything else a filter does with a line (json_out.h) */
	/* a buffer per call: callers may run in several threads */
	char stack[1024];
	struct jbuf b = {.p = stack, .cap = sizeof stack, .borrowed = 1};
	int rc = json_out_append(&b, v) < 0 || jbuf_add(&b, "\n", 1) < 0 ? -1 : 0;
	jv_free(v);
	if (rc == 0)
		rc = jsonl_put_text(f, b.p, b.len);
	else
		errno = ENOMEM;
	if (!b.borrowed)
		free(b.p);
	return rc;
}

int jsonl_put_text(FILE *f, const char *line, size_t len)
{
	/* flush before a line that would not fit, so that every write(2) carries whole lines */
	if (__fpending(f) > 0 && __fpending(f) + len > JSONL_BUFSIZE && fflush(f) == EOF)
		return -1;
	return fwrite(line, 1, len, f) != len || ferror(f) ? -1 : 0;
}

int jsonl_write(FILE *f, jv v)
{
	return jsonl_put(f, v) < 0 || fflush(f) == EOF ? -1 : 0;
}

int jsonl_write_fd(int fd, jv v)
{
	jv s = jv_dump_string(v, 0);
	s = jv_string_append_str(s, "\n");
	const char *p = jv_string_value(s);
	size_t left = (size_t)jv_string_length_bytes(jv_copy(s));
	int rc = 0;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	jv_free(s);
	return rc;
}

jv jl_get(jv obj, const char *key)
{
	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return jv_invalid();
	return jv_object_get(jv_copy(obj), jv_string(key));
}

const char *jl_str(jv obj, const char *key)
{
	jv v = jl_get(obj, key);
	const char *s = NULL;
	/* obj keeps its own reference, so the string outlives this one */
	if (jv_get_kind(v) == JV_KIND_STRING)
		s = jv_string_value(v);
	jv_free(v);
	return s;
}

double jl_num(jv obj, const char *key, double def)
{
	jv v = jl_get(obj, key);
	double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : def;
	jv_free(v);
	return d;
}

int jl_has(jv obj, const char *key)
{
	jv v = jl_get(obj, key);
	int has = jv_is_valid(v);
	jv_free(v);
	return has;
}

jv jl_fmt(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return jv_string(buf);
}

int jsonl_next_object(struct linereader *r, jv *out)
{
	char *line;
	size_t len;
	int k = lr_next(r, &line, &len);
	if (k == LR_NEED_MORE)
		return JSONL_NONE;
	if (k == LR_TOOLONG) {
		log_warn("line %lu: too long, skipped", r->lineno);
		return JSONL_BAD;
	}
	jv v = jsonl_parse_object(line, len);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);
		log_warn("line %lu: %s", r->lineno, jv_string_value(msg));
		jv_free(msg);
		return JSONL_BAD;
	}
	*out = v;
	return JSONL_OBJECT;
}
