/* ljs-join's counters: updated from any thread (relaxed atomics), read as one JSON object. */
#ifndef JS_STATS_H
#define JS_STATS_H

#include <jv.h>

#include "bi_msg.h"

enum js_req_kind { JS_REQ_JOIN, JS_REQ_HOMENS, JS_REQ_APPSKEY, JS_REQ_OTHER, JS_REQ_KINDS };

struct js_stats {
	unsigned long requests[JS_REQ_KINDS];
	unsigned long results[BI_OTHER + 1]; /* by enum bi_result */
	unsigned long devnonce_replays;      /* JoinReqs refused for a DevNonce seen before */
	unsigned long tls_failures;          /* TLS connections closed before any request */
	unsigned long http_errors;           /* bodies that are not a JSON object (HTTP 400) */
	unsigned long in_flight;             /* requests taken and not answered yet */
};

/* A request of MessageType type (may be NULL) is taken / its answer is given. */
void js_stats_request(struct js_stats *st, const char *type);
void js_stats_answer(struct js_stats *st, jv ans); /* ans borrowed */
void js_stats_result(struct js_stats *st, enum bi_result res); /* the same, by its result */
void js_stats_count(unsigned long *counter);

/* {"requests":{"JoinReq":..},"results":{"Success":..},"mic_failures":..,...} */
jv js_stats_json(const struct js_stats *st);

#endif
