/* Where shadows live, behind one small interface: the local directory store
 * (lib/shadow_local.c) by default, AWS IoT for real. shadow-put and shadow-watch only parse
 * options and lines, and hand them to a backend. */
#ifndef SHADOW_BACKEND_H
#define SHADOW_BACKEND_H

#include <jv.h>
#include <stddef.h>
#include <time.h>

#include "json_out.h"

/* One input line of shadow-put. */
struct shadow_req {
	jv req;             /* the checked update line (owned); jv_null() when the line was refused */
	unsigned long line; /* its line number on input */
	jv result;          /* the result line to print; jv_invalid() until decided */
	char *text;         /* or the result line already as JSON text (newline included, malloc'd;
	                     * result is then jv_true()) */
	size_t text_len;
	struct shadow_rtree *fast; /* the state as lib/shadow_tree.c parsed it, or NULL (req's) */
};

/* Parse and check one update line into r (result set already when refused). */
void shadow_req_init(struct shadow_req *r, const char *line, size_t len, unsigned long lineno);
/* The same for the local store, which needs of req only thing, shadow, clientToken, version
 * and the state: the common line is parsed straight into the store's tree. */
void shadow_req_init_local(struct shadow_req *r, const char *line, size_t len, unsigned long lineno);
/* Set r->result to the accepted record (body consumed, the /update/accepted document). */
void shadow_req_accept(struct shadow_req *r, jv body);
/* The same with the accepted line already written as JSON text (b's content, taken over). */
void shadow_req_accept_text(struct shadow_req *r, struct jbuf *b);
/* 1 if r's result says accepted. */
int shadow_req_accepted(const struct shadow_req *r);
/* Append r's result line, newline included, to b. 0, or -1 when memory ran out. */
int shadow_req_append(struct jbuf *b, const struct shadow_req *r);
/* Set r->result to a rejection with this code and message (AWS's wording). */
void shadow_req_reject(struct shadow_req *r, int code, const char *message, time_t now);
void shadow_req_free(struct shadow_req *r);
/* Borrowed names of a checked request; shadow is NULL for the classic shadow. */
const char *shadow_req_thing(const struct shadow_req *r);
const char *shadow_req_shadow(const struct shadow_req *r);

/* Which things a watcher wants: fnmatch(3) patterns on the thing name; none means all. */
struct shadow_select {
	char **patterns;
	int n;
};
int shadow_select_match(const struct shadow_select *s, const char *thing);
/* 1 if no pattern has glob characters (a backend may then subscribe to each thing alone). */
int shadow_select_literal(const struct shadow_select *s);

/* A delta line ({"thing",["shadow"],"version","state","metadata","timestamp"}, consumed). */
typedef void (*shadow_delta_fn)(void *arg, jv delta);

struct shadow_backend;
struct shadow_backend_ops {
	/* Apply reqs[0..n) in input order (those with a result already set are skipped) and set
	 * every result. A result is set only once the update is durable. 0, or -1 on a system
	 * error, after setting the unapplied results to 500 "Internal service failure". */
	int (*put)(struct shadow_backend *b, struct shadow_req *reqs, size_t n);
	/* Optional: finish work that put deferred (documents held back, durable in the log): a
	 * few milliseconds' worth, or all. How much is left (0: nothing), or -1. */
	int (*flush)(struct shadow_backend *b, int all);
	/* Start watching the selected shadows; with initial, first emit the current delta of
	 * every selected shadow that has one. 0, or -1 with errno. */
	int (*watch_start)(struct shadow_backend *b, const struct shadow_select *sel, int initial,
	                   shadow_delta_fn emit, void *arg);
	/* A descriptor to poll for readability while watching. */
	int (*watch_fd)(struct shadow_backend *b);
	/* Emit whatever arrived. 0, or -1 with errno on a fatal error. */
	int (*watch_drain)(struct shadow_backend *b, shadow_delta_fn emit, void *arg);
	void (*close)(struct shadow_backend *b);
};
struct shadow_backend {
	const struct shadow_backend_ops *ops;
};

/* Versions already printed, per thing and shadow: 1 (and remember it) if version is newer
 * than every one printed for that shadow. *seen is a jv object, jv_object() to start. */
int shadow_seen_newer(jv *seen, const char *thing, const char *shadow, double version);

/* The store directory: dir if given, else $SHADOW_STORE, else ./var/shadows. */
const char *shadow_store_dir(const char *dir);

#endif
