/* ljs-join's counters: updated from any thread (relaxed atomics), read as one JSON object. */
#ifndef JS_STATS_H
#define JS_STATS_H

#include <jv.h>
#include <stdint.h>

#include "bi_msg.h"

enum js_req_kind { JS_REQ_JOIN, JS_REQ_HOMENS, JS_REQ_APPSKEY, JS_REQ_OTHER, JS_REQ_KINDS };

/* Where a JoinReq's time goes (server side, microseconds): the whole JoinReq from its body read
 * to its answer ready; its record from queued to durable; one batch's write to the log (O_DSYNC);
 * from durable to the answer being built on the HTTP thread again (waking it); its record from
 * queued to the start of the write that holds it (waiting for a writer: a write in flight, the
 * writer thread's wake-up, room in the log). */
enum js_lat_kind { JS_LAT_JOIN, JS_LAT_STORE, JS_LAT_WRITE, JS_LAT_WAKE, JS_LAT_QUEUE, JS_LAT_KINDS };

/* A latency histogram: 8 buckets per octave of microseconds (quantiles within 9%), to ~2^27 us. */
#define JS_HIST_SUB 8
#define JS_HIST_BUCKETS (JS_HIST_SUB * 27)
struct js_hist {
	unsigned long n[JS_HIST_BUCKETS];
	unsigned long max_us;
};

struct js_stats {
	unsigned long requests[JS_REQ_KINDS];
	unsigned long results[BI_OTHER + 1]; /* by enum bi_result */
	unsigned long devnonce_replays;      /* JoinReqs refused for a DevNonce seen before */
	unsigned long tls_failures;          /* TLS connections closed before any request */
	unsigned long http_errors;           /* bodies that are not a JSON object (HTTP 400) */
	unsigned long in_flight;             /* requests taken and not answered yet */
	unsigned long batches, batched;      /* log writes, and the records they held */
	struct js_hist lat[JS_LAT_KINDS];
};

/* A request of MessageType type (may be NULL) is taken / its answer is given. */
void js_stats_request(struct js_stats *st, const char *type);
void js_stats_answer(struct js_stats *st, jv ans); /* ans borrowed */
void js_stats_result(struct js_stats *st, enum bi_result res); /* the same, by its result */
void js_stats_count(unsigned long *counter);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t js_now_us(void);
/* The latency histograms start over (any thread; a latency counted meanwhile may be lost). */
void js_stats_reset_latency(struct js_stats *st);
/* Count one latency of us microseconds (any thread). */
void js_hist_add(struct js_hist *h, uint64_t us);

/* {"requests":{"JoinReq":..},"results":{"Success":..},"mic_failures":..,...,
 *  "latency_ms":{"join":{"count":..,"p50":..,"p99":..,"p999":..,"max":..},...}} */
jv js_stats_json(const struct js_stats *st);

#endif
