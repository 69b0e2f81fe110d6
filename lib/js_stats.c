/* ljs-join's counters (see js_stats.h). */
#include <string.h>

#include "js_stats.h"
#include "jsonl.h"

static const char *const kind_names[JS_REQ_KINDS] = {"JoinReq", "HomeNSReq", "AppSKeyReq", "other"};

void js_stats_count(unsigned long *counter)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

void js_stats_request(struct js_stats *st, const char *type)
{
	int k = JS_REQ_OTHER;
	for (int i = 0; type && i < JS_REQ_OTHER; i++)
		if (strcmp(type, kind_names[i]) == 0)
			k = i;
	js_stats_count(&st->requests[k]);
	js_stats_count(&st->in_flight);
}

void js_stats_result(struct js_stats *st, enum bi_result res)
{
	js_stats_count(&st->results[res]);
	__atomic_sub_fetch(&st->in_flight, 1, __ATOMIC_RELAXED);
}

void js_stats_answer(struct js_stats *st, jv ans)
{
	jv r = jl_get(ans, "Result");
	const char *code = jv_get_kind(r) == JV_KIND_OBJECT ? jl_str(r, "ResultCode") : NULL;
	enum bi_result res = BI_OTHER;
	for (int i = BI_SUCCESS; code && i <= BI_OTHER; i++)
		if (strcmp(code, bi_result_name(i, "1.0")) == 0 || strcmp(code, bi_result_name(i, "1.1")) == 0) {
			res = i;
			break;
		}
	jv_free(r);
	js_stats_count(&st->results[res]);
	__atomic_sub_fetch(&st->in_flight, 1, __ATOMIC_RELAXED);
}

static jv num(const unsigned long *counter)
{
	return jv_number((double)__atomic_load_n(counter, __ATOMIC_RELAXED));
}

jv js_stats_json(const struct js_stats *st)
{
	jv req = jv_object(), res = jv_object();
	for (int i = 0; i < JS_REQ_KINDS; i++)
		req = jv_object_set(req, jv_string(kind_names[i]), num(&st->requests[i]));
	/* MalformedRequest (1.0) and MalformedMessage (1.1) are one counter, under the 1.1 name */
	for (int i = BI_SUCCESS; i <= BI_OTHER; i++)
		res = jv_object_set(res, jv_string(bi_result_name(i, "1.1")), num(&st->results[i]));
	jv o = jv_object();
	o = jv_object_set(o, jv_string("requests"), req);
	o = jv_object_set(o, jv_string("results"), res);
	o = jv_object_set(o, jv_string("mic_failures"), num(&st->results[BI_MIC_FAILED]));
	o = jv_object_set(o, jv_string("devnonce_replays"), num(&st->devnonce_replays));
	o = jv_object_set(o, jv_string("tls_failures"), num(&st->tls_failures));
	o = jv_object_set(o, jv_string("http_errors"), num(&st->http_errors));
	return jv_object_set(o, jv_string("in_flight"), num(&st->in_flight));
}
