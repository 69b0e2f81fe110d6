/* The comparison of shadow-put's tree store (lib/shadow_tree.c) with the reference jv semantics
 * (lib/shadow_doc.c) after one request applied to both, shared by tests/unit/test_shadow.c and
 * tests/fuzz/fuzz_shadow_tree.c: the same outcome and error code, the accepted line (the
 * reference's tagged body and a newline), the delta, and the stored document, byte for byte. */
#ifndef SHADOW_AGREE_H
#define SHADOW_AGREE_H

#include "json_out.h"
#include "shadow_doc.h"
#include "shadow_tree.h"

#include <stdlib.h>
#include <string.h>

/* v (borrowed) as compact JSON text, malloc'd. */
static inline char *shadow_text_of(jv v)
{
	struct jbuf b = {0};
	json_out_append(&b, v);
	jbuf_add(&b, "", 1);
	return b.p;
}

/* NULL when they agree, else what differs (static text). r1, acc, d1, e1: shadow_apply's result,
 * accepted body, delta and error; r2, line, d2, e2: shadow_tdoc_apply's (all borrowed). doc and
 * t: the two documents after it. thing: the name both were given. */
static inline const char *shadow_agree(int r1, jv acc, jv d1, const struct shadow_error *e1, int r2,
                                       const struct jbuf *line, jv d2, const struct shadow_error *e2, jv doc,
                                       const struct shadow_tdoc *t, const char *thing)
{
	const char *why = NULL;
	if (r1 != r2 || (r1 < 0 && e1->code != e2->code))
		return "outcome or error code";
	if (r1 == 0) {
		jv tagged = shadow_tag(jv_copy(acc), thing, NULL, "accepted");
		char *al = shadow_text_of(tagged), *x1 = shadow_text_of(d1), *x2 = shadow_text_of(d2);
		size_t n = strlen(al);
		jv_free(tagged);
		if (line->len != n + 1 || memcmp(line->p, al, n) != 0 || line->p[n] != '\n')
			why = "accepted line";
		else if (jv_is_valid(d1) != jv_is_valid(d2) || strcmp(x1, x2) != 0)
			why = "delta";
		free(al);
		free(x1);
		free(x2);
	}
	/* a shadow that does not exist yet is never written */
	if (!why && jv_get_kind(doc) != JV_KIND_NULL) {
		struct jbuf dt = {0};
		char *want = shadow_text_of(doc);
		shadow_tdoc_append(&dt, t);
		if (dt.len != strlen(want) || memcmp(dt.p, want, dt.len) != 0)
			why = "document";
		free(want);
		free(dt.p);
	}
	return why;
}

#endif
