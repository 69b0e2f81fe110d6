/* ljs-join's counters (see js_stats.h). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "js_stats.h"
#include "jsonl.h"

static const char *const kind_names[JS_REQ_KINDS] = {"JoinReq", "HomeNSReq", "AppSKeyReq", "other"};

void js_stats_count(unsigned long *counter)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

uint64_t js_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void js_hist_add(struct js_hist *h, uint64_t us)
{
	/* bucket = 8 * log2(us + 1), from the bit length and the three bits below the top one */
	uint64_t v = us + 1;
	unsigned top = 63u - (unsigned)__builtin_clzll(v);
	unsigned frac = top >= 3 ? (unsigned)(v >> (top - 3)) & 7u : (unsigned)(v << (3 - top)) & 7u;
	unsigned b = top * JS_HIST_SUB + frac;
	if (b >= JS_HIST_BUCKETS)
		b = JS_HIST_BUCKETS - 1;
	__atomic_add_fetch(&h->n[b], 1, __ATOMIC_RELAXED);
	unsigned long m = __atomic_load_n(&h->max_us, __ATOMIC_RELAXED);
	while (us > m && !__atomic_compare_exchange_n(&h->max_us, &m, (unsigned long)us, true, __ATOMIC_RELAXED,
	                                               __ATOMIC_RELAXED))
		;
}

void js_stats_reset_latency(struct js_stats *st)
{
	for (int k = 0; k < JS_LAT_KINDS; k++) {
		for (int b = 0; b < JS_HIST_BUCKETS; b++)
			__atomic_store_n(&st->lat[k].n[b], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->lat[k].max_us, 0, __ATOMIC_RELAXED);
	}
}

/* The q quantile in milliseconds: the upper end of its bucket (never more than the maximum). */
static double hist_q(const struct js_hist *h, unsigned long total, double q)
{
	unsigned long acc = 0;
	double max = (double)__atomic_load_n(&h->max_us, __ATOMIC_RELAXED) / 1000.0;
	for (int b = 0; b < JS_HIST_BUCKETS; b++) {
		acc += __atomic_load_n(&h->n[b], __ATOMIC_RELAXED);
		if (acc && (double)acc >= q * (double)total) {
			/* bucket b holds v = us + 1 in [2^top * (1 + frac/8), 2^top * (1 + (frac+1)/8)) */
			double hi = ldexp(1.0 + (double)(b % JS_HIST_SUB + 1) / JS_HIST_SUB, b / JS_HIST_SUB) - 1.0;
			hi /= 1000.0;
			return hi < max ? hi : max;
		}
	}
	return max;
}

static jv ms(double v)
{
	return jv_number(round(v * 1000.0) / 1000.0);
}

static jv hist_json(const struct js_hist *h)
{
	unsigned long total = 0;
	for (int b = 0; b < JS_HIST_BUCKETS; b++)
		total += __atomic_load_n(&h->n[b], __ATOMIC_RELAXED);
	jv o = jv_object_set(jv_object(), jv_string("count"), jv_number((double)total));
	o = jv_object_set(o, jv_string("p50"), ms(hist_q(h, total, 0.5)));
	o = jv_object_set(o, jv_string("p99"), ms(hist_q(h, total, 0.99)));
	o = jv_object_set(o, jv_string("p999"), ms(hist_q(h, total, 0.999)));
	return jv_object_set(o, jv_string("max"), ms((double)__atomic_load_n(&h->max_us, __ATOMIC_RELAXED) / 1000.0));
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
	o = jv_object_set(o, jv_string("in_flight"), num(&st->in_flight));
	o = jv_object_set(o, jv_string("log_writes"), num(&st->batches));
	o = jv_object_set(o, jv_string("log_records"), num(&st->batched));
	static const char *const lat_names[JS_LAT_KINDS] = {"join", "store", "write", "wake", "queue"};
	jv lat = jv_object();
	for (int i = 0; i < JS_LAT_KINDS; i++)
		lat = jv_object_set(lat, jv_string(lat_names[i]), hist_json(&st->lat[i]));
	return jv_object_set(o, jv_string("latency_ms"), lat);
}
