/* AWS IoT Device Shadow document semantics, on jv values, with no I/O: checking an update,
 * merging it into a stored document, metadata timestamps, versions, and the delta. */
#ifndef SHADOW_DOC_H
#define SHADOW_DOC_H

#include <jv.h>
#include <time.h>

#define SHADOW_MAX_STATE 8192 /* bytes of the compact "state" section */
#define SHADOW_MAX_DEPTH 6    /* levels under desired / reported */
#define SHADOW_MAX_TOKEN 64   /* bytes of a clientToken */
#define SHADOW_THING_MAX 128
#define SHADOW_NAME_MAX 64

/* A rejection as AWS reports it: HTTP status and the service's exact message. */
struct shadow_error {
	int code;
	const char *message;
};

/* [a-zA-Z0-9:_-]{1,128} and [a-zA-Z0-9:_-]{1,64}. */
int shadow_thing_name_ok(const char *s);
int shadow_shadow_name_ok(const char *s);

/* Check an update line (borrowed): thing and shadow names, state shape, version, clientToken,
 * nesting depth, size. 0, or -1 with *err set. */
int shadow_check_update(jv req, struct shadow_error *err);
/* The same for req parsed from text_len bytes of JSON text (a bound of its size). */
int shadow_check_update_text(jv req, size_t text_len, struct shadow_error *err);

/* Apply a checked update (req borrowed) to *doc, the stored document
 * {"state":{"desired":..,"reported":..},"metadata":{..},"version":N,"timestamp":T}
 * (jv_null() when the shadow does not exist yet). On success *doc is replaced by the new
 * document, *accepted gets the /update/accepted body and *delta the /update/delta body, or
 * jv_invalid() when the update publishes no delta (see shadow_delta). On a rejection (version
 * conflict, size) returns -1 with *err set, and *doc is unchanged. */
int shadow_apply(jv *doc, jv req, time_t now, jv *accepted, jv *delta, struct shadow_error *err);

/* The /update/delta body of a stored document (borrowed): {"version","state","metadata",
 * "timestamp"}, state holding the desired attributes that differ from reported; jv_invalid()
 * when desired and reported agree. */
jv shadow_delta(jv doc, time_t now);

/* The /update/rejected body for req (borrowed, may be jv_null()): code, message, timestamp and
 * the request's clientToken when it is a string. */
jv shadow_rejection(jv req, const struct shadow_error *err, time_t now);

/* A record for the pipeline: {"thing":..,["shadow":..,]["result":..,]} followed by the fields
 * of body (consumed). thing may be NULL (a line with no usable thing). */
jv shadow_tag(jv body, const char *thing, const char *shadow, const char *result);

#endif
