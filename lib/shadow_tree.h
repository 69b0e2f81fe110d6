/* The local store's documents as trees that shadow-put changes in place: the same AWS IoT
 * Device Shadow semantics as shadow_apply (lib/shadow_doc.c), without rebuilding jq objects.
 * jq 1.6 keeps an object's keys in insertion order (a replaced key keeps its place, a deleted
 * one that comes back goes last) and prints them so; a tree node keeps its children in that
 * order and each leaf as its compact JSON text, so the document's text is byte for byte what
 * json_out (and jv_dump_string) gives for the document shadow_apply builds. */
#ifndef SHADOW_TREE_H
#define SHADOW_TREE_H

#include <jv.h>
#include <stddef.h>
#include <time.h>

#include "json_out.h"
#include "shadow_doc.h"

struct shadow_tdoc;

/* The tree of a stored document (borrowed; jv_null() for a shadow that does not exist yet).
 * NULL when memory ran out. */
struct shadow_tdoc *shadow_tdoc_from_jv(jv doc);
void shadow_tdoc_free(struct shadow_tdoc *d);

/* The state of a request line, parsed straight from its text. */
struct shadow_rtree;

/* The common update line the quick way: a line of plain ASCII with no backslash escapes and no
 * arrays, no duplicate keys, and a state that shadow_check_update accepts. Then 1, with *req
 * the line's thing, shadow, clientToken and version (all the rest of shadow-put reads) and
 * *state its state. 0 for any other line: parse and check it with jsonl and shadow_doc. */
int shadow_rtree_parse(const char *line, size_t len, jv *req, struct shadow_rtree **state);
void shadow_rtree_free(struct shadow_rtree *r);

/* shadow_apply on the tree: req (borrowed) is a checked update, its state in fast when the line
 * was parsed by shadow_rtree_parse (else NULL: req's own). On success returns 0, appends
 * to line what shadow-put prints for it (shadow_tag(accepted body, thing, shadow, "accepted")
 * as compact JSON text and a newline) and sets *delta to the /update/delta body (or
 * jv_invalid()). On a rejection returns -1 with *err set and d unchanged; code 500 means memory
 * ran out and d may be spoilt (free it, read the document again). */
int shadow_tdoc_apply(struct shadow_tdoc *d, jv req, const struct shadow_rtree *fast, time_t now,
                      const char *thing, const char *shadow, struct jbuf *line, jv *delta,
                      struct shadow_error *err);

/* Append the document's JSON text (no newline). 0, or -1 when memory ran out. */
int shadow_tdoc_append(struct jbuf *b, const struct shadow_tdoc *d);

#endif
