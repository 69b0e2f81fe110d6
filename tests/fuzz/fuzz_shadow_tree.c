/* shadow-put's local store against the reference: a line is checked and applied twice (create,
 * then update) by jsonl + shadow_doc (jv) and by lib/shadow_tree.c (the quick parse when it
 * takes the line); the documents, result lines and deltas must be the same bytes, and the
 * quick parse must take no line the checks refuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/shadow_agree.h"
#include "json_check.h"
#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	size_t n = size;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	jv req = jsonl_parse_object(line, size);
	struct shadow_error e = {0, NULL};
	int valid = jv_is_valid(req) && shadow_check_update_text(req, size, &e) == 0;
	char why[96];
	jv freq = jv_invalid();
	struct shadow_rtree *rt = NULL;
	int fast = n > 0 && json_check(data, n, 256, why, sizeof why) == 0 && shadow_rtree_parse(line, n, &freq, &rt);
	if (fast && !valid)
		abort();
	if (valid) {
		jv doc = jv_null();
		struct shadow_tdoc *t = shadow_tdoc_from_jv(doc);
		for (int i = 0; i < 2 && t; i++) {
			time_t now = 1700000000 + i;
			jv acc = jv_invalid(), d1 = jv_invalid(), d2 = jv_invalid();
			struct jbuf l2 = {0};
			struct shadow_error e1, e2;
			int r1 = shadow_apply(&doc, req, now, &acc, &d1, &e1);
			int r2 = shadow_tdoc_apply(t, fast ? freq : req, rt, now, "t", NULL, &l2, &d2, &e2);
			const char *diff = shadow_agree(r1, acc, d1, &e1, r2, &l2, d2, &e2, doc, t, "t");
			if (diff) {
				fprintf(stderr, "the tree store and shadow_apply differ: %s\n", diff);
				abort();
			}
			free(l2.p);
			jv_free(acc);
			jv_free(d1);
			jv_free(d2);
		}
		shadow_tdoc_free(t);
		jv_free(doc);
	}
	jv_free(req);
	jv_free(freq);
	shadow_rtree_free(rt);
	return 0;
}
