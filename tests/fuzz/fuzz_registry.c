/* lwm2m-listen's saved registrations (-S DIR: registrations.jsonl and its journal, read back at
 * start by lwm2m_registry_load): the input up to its first NUL byte is the saved file, the rest
 * (if there is a NUL) the journal. What loads must make sense as lwm2m-listen uses it: its event
 * text (lwm2m_reg_json_text) is byte for byte jq's dump of lwm2m_reg_json, its object list is
 * sorted (lwm2m_reg_has_path searches it), every registration is found by its endpoint and id;
 * and saving it and loading the save gives the same registrations back. */
#include "fuzz_common.h"
#include "json_out.h"
#include "lwm2m_registry.h"

#define NOW 1700000000.0

static char dir[64], file[96], journal[112];
static int ready;

static void cleanup(void)
{
	unlink(file);
	unlink(journal);
	rmdir(dir);
}

static void setup(void)
{
	fuzz_quiet_logs();
	fuzz_tmpdir(dir, sizeof dir, "fuzz-registry"); /* tmpfs when there is one: the save fsyncs */
	snprintf(file, sizeof file, "%s/registrations.jsonl", dir);
	snprintf(journal, sizeof journal, "%s.journal", file);
	atexit(cleanup);
	ready = 1;
}

static void expired(struct lwm2m_reg *g, void *ud)
{
	(void)g;
	(*(size_t *)ud)++;
}

/* The registration's event members as jq prints them (malloc'd). */
static char *event_text(const struct lwm2m_reg *g)
{
	jv s = jv_dump_string(lwm2m_reg_json(g), 0);
	char *t = strdup(jv_string_value(s));
	jv_free(s);
	if (!t)
		abort();
	return t;
}

static void check(const struct lwm2m_registry *r)
{
	size_t b, n = 0;
	for (struct lwm2m_reg *g = lwm2m_reg_first(r, &b); g; g = lwm2m_reg_next(r, g, &b)) {
		n++;
		if (lwm2m_reg_by_ep(r, g->ep) != g || lwm2m_reg_by_id(r, g->id) != g)
			abort();
		for (uint32_t i = 1; i < g->nobjects; i++)
			if (g->objects[i - 1] > g->objects[i])
				abort(); /* lwm2m_reg_has_path would miss some */
		char *want = event_text(g);
		struct jbuf t = {0};
		if (jbuf_add(&t, "{", 1) < 0 || lwm2m_reg_json_text(&t, g) < 0 || jbuf_add(&t, "}", 1) < 0)
			abort();
		if (t.len != strlen(want) || memcmp(t.p, want, t.len) != 0) {
			fprintf(stdout, "text: %.*s\njq:   %s\n", (int)t.len, t.p, want);
			abort();
		}
		free(t.p);
		free(want);
		uint16_t id[2] = {(uint16_t)(g->nobjects ? g->objects[0] >> 16 : 3), 0};
		(void)lwm2m_reg_has_path(g, id, 2);
	}
	if (n != r->count)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	const uint8_t *nul = memchr(data, 0, size);
	size_t saved = nul ? (size_t)(nul - data) : size;
	fuzz_write_file(file, data, saved);
	if (nul)
		fuzz_write_file(journal, nul + 1, size - saved - 1);
	else
		unlink(journal);

	struct lwm2m_registry r;
	size_t gone = 0;
	lwm2m_registry_init(&r);
	long n = lwm2m_registry_load(&r, file, NOW, expired, &gone);
	if (n < 0 || (size_t)n != r.count)
		abort();
	check(&r);

	/* the save, loaded again: the same registrations, none expired now */
	char **before = calloc(r.count + 1, sizeof *before);
	size_t nb = 0, b;
	if (!before)
		abort();
	for (struct lwm2m_reg *g = lwm2m_reg_first(&r, &b); g; g = lwm2m_reg_next(&r, g, &b))
		before[nb++] = event_text(g);
	if (lwm2m_registry_save(&r, file) < 0)
		abort();
	struct lwm2m_registry again;
	size_t gone2 = 0;
	lwm2m_registry_init(&again);
	if (lwm2m_registry_load(&again, file, NOW, expired, &gone2) != (long)nb || gone2)
		abort();
	check(&again);
	for (size_t i = 0; i < nb; i++) {
		b = 0;
		int found = 0;
		for (struct lwm2m_reg *g = lwm2m_reg_first(&again, &b); g && !found; g = lwm2m_reg_next(&again, g, &b)) {
			char *t = event_text(g);
			found = strcmp(t, before[i]) == 0;
			free(t);
		}
		if (!found) {
			fprintf(stdout, "lost in the save: %s\n", before[i]);
			abort();
		}
		free(before[i]);
	}
	free(before);
	lwm2m_registry_free(&again, NULL, NULL);
	lwm2m_registry_free(&r, NULL, NULL);
	return 0;
}
