/* Unit checks of the registration table's text: the members of an event, the journal and the
 * saved file are written without jq objects (lwm2m_reg_json_text), and must be byte for byte
 * what jq printed for the objects they stand for. Random registrations: odd endpoint names
 * (quotes, backslashes, bytes that are not UTF-8), sms, identities, content formats, objects,
 * IPv4 and IPv6 addresses, times with and without milliseconds. */
#include "corelink.h"
#include "json_out.h"
#include "lwm2m_registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static void rand_str(char *s, size_t max, int ascii)
{
	static const char pick[] = "abcXYZ019-_.:/ \"\\{}";
	size_t n = 1 + (size_t)rand() % max;
	for (size_t i = 0; i < n; i++)
		s[i] = ascii || rand() % 4 ? pick[rand() % (int)(sizeof pick - 1)] : (char)(0x80 + rand() % 128);
	s[n] = 0;
}

static struct lwm2m_reg *rand_reg(struct lwm2m_registry *r)
{
	char ep[64];
	rand_str(ep, 40, rand() % 2);
	struct lwm2m_reg *g = lwm2m_reg_new(r, ep, 0);
	g->lt = rand() % 3 ? 86400 : (uint32_t)rand() * 2u;
	g->version = (uint8_t)(10 + rand() % 3);
	snprintf(g->binding, sizeof g->binding, "%s", rand() % 2 ? "U" : "UQ");
	g->queue = (uint8_t)(rand() % 2);
	g->sec = (uint8_t)(rand() % 4);
	if (rand() % 4 == 0) {
		char s[32];
		rand_str(s, 20, rand() % 2);
		g->sms = strdup(s);
	}
	if (g->sec && rand() % 2) {
		char s[64];
		rand_str(s, 60, rand() % 2);
		g->identity = strdup(s);
	}
	g->nct = (uint8_t)(rand() % 3);
	for (int i = 0; i < g->nct; i++)
		g->ct[i] = (uint16_t)(rand() % 3 ? 11542 : rand() % 65536);
	g->nobjects = (uint32_t)(rand() % 6);
	g->objects = calloc(g->nobjects + 1, sizeof *g->objects);
	for (uint32_t i = 0; i < g->nobjects; i++)
		g->objects[i] = (uint32_t)(rand() % 65535) << 16 | (rand() % 3 ? (uint32_t)(rand() % 65535) : 0xffff);
	/* sorted and unique, as a Register's links give them (and as a load makes them) */
	g->nobjects = (uint32_t)lwm2m_objects_sort(g->objects, g->nobjects);
	if (rand() % 3) {
		g->addr.sin.sin_family = AF_INET;
		g->addr.sin.sin_addr.s_addr = (in_addr_t)rand() * 2654435761u;
		g->addr.sin.sin_port = (in_port_t)rand();
	} else {
		g->addr.sin6.sin6_family = AF_INET6;
		for (int i = 0; i < 16; i++)
			g->addr.sin6.sin6_addr.s6_addr[i] = (uint8_t)(rand() % 3 ? 0 : rand());
		g->addr.sin6.sin6_port = (in_port_t)rand();
	}
	double t = 1763850000 + (double)(rand() % 100000000) / 1000;
	g->registered = rand() % 2 ? t : t + (double)rand() / RAND_MAX / 1000;
	g->updated = rand() % 2 ? g->registered : g->registered + rand() % 100000;
	return g;
}

static int same(const char *what, const char *mine, size_t n, jv o)
{
	jv d = jv_dump_string(o, 0);
	const char *jq = jv_string_value(d);
	int ok = n == strlen(jq) && memcmp(mine, jq, n) == 0;
	if (!ok)
		fprintf(stderr, "%s:\n  mine: %.*s\n  jq:   %s\n", what, (int)n, mine, jq);
	jv_free(d);
	return ok;
}

static void test_members(struct lwm2m_registry *r)
{
	int bad = 0;
	for (int i = 0; i < 5000 && bad < 5; i++) {
		struct lwm2m_reg *g = rand_reg(r);
		struct jbuf b = {0};
		jbuf_add(&b, "{", 1);
		CHECK(lwm2m_reg_json_text(&b, g) == 0);
		jbuf_add(&b, "}", 1);
		bad += !same("members", b.p, b.len, lwm2m_reg_json(g));
		free(b.p);
		lwm2m_reg_free(g);
	}
	CHECK(bad == 0);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 22);
	*len = fread(buf, 1, 1 << 22, f);
	fclose(f);
	return buf;
}

/* The journal's and the saved file's lines, against jq's dump of the same objects; then both
 * read back into the same registrations. */
static void test_files(const char *dir)
{
	char path[4096], jp[4200];
	snprintf(path, sizeof path, "%s/registrations.jsonl", dir);
	snprintf(jp, sizeof jp, "%s.journal", path);
	struct lwm2m_registry r;
	lwm2m_registry_init(&r);
	enum { N = 300 };
	struct lwm2m_reg *gs[N];
	for (int i = 0; i < N; i++) {
		gs[i] = rand_reg(&r);
		if (lwm2m_reg_by_ep(&r, gs[i]->ep)) {
			lwm2m_reg_free(gs[i]);
			gs[i] = NULL;
			continue;
		}
		lwm2m_reg_insert(&r, gs[i]);
		CHECK(lwm2m_registry_journal(&r, path, gs[i], LWM2M_JOURNAL_SET) == 0);
	}
	struct lwm2m_reg *del = NULL;
	for (int i = 0; i < N && !del; i++)
		del = gs[i];
	CHECK(lwm2m_registry_journal(&r, path, del, LWM2M_JOURNAL_DEL) == 0);

	size_t len;
	char *text = slurp(jp, &len), *p = text;
	CHECK(text != NULL);
	int bad = 0;
	for (int i = 0; text && i <= N && bad < 5; i++) {
		if (i < N && !gs[i])
			continue;
		char *nl = memchr(p, '\n', len - (size_t)(p - text));
		CHECK(nl != NULL);
		if (!nl)
			break;
		jv o;
		if (i < N) {
			o = lwm2m_reg_json(gs[i]);
			o = jv_object_set(o, jv_string("registered"), jv_number(gs[i]->registered));
			o = jv_object_set(o, jv_string("updated"), jv_number(gs[i]->updated));
		} else {
			char id[9];
			lwm2m_reg_id_str(del->id, id);
			o = jv_object_set(jv_object(), jv_string("op"), jv_string("del"));
			o = jv_object_set(o, jv_string("ep"), jv_string(del->ep));
			o = jv_object_set(o, jv_string("reg"), jv_string(id));
		}
		bad += !same("journal line", p, (size_t)(nl - p), o);
		p = nl + 1;
	}
	CHECK(bad == 0);
	CHECK(text && p == text + len);
	free(text);

	/* replayed: the same registrations, the deleted one gone */
	struct lwm2m_registry back;
	lwm2m_registry_init(&back);
	CHECK(lwm2m_registry_load(&back, path, 0, NULL, NULL) == (long)r.count - 1);
	size_t bk;
	struct jbuf a = {0}, c = {0};
	int diff = 0;
	for (struct lwm2m_reg *g = lwm2m_reg_first(&r, &bk); g; g = lwm2m_reg_next(&r, g, &bk)) {
		struct lwm2m_reg *h = lwm2m_reg_by_ep(&back, g->ep);
		if (g == del) {
			CHECK(h == NULL);
			continue;
		}
		/* names that were not UTF-8 come back with U+FFFD: compare those by their text */
		if (!h) {
			jv s = jv_string(g->ep);
			size_t xb;
			for (struct lwm2m_reg *x = lwm2m_reg_first(&back, &xb); x && !h; x = lwm2m_reg_next(&back, x, &xb))
				if (strcmp(x->ep, jv_string_value(s)) == 0)
					h = x;
			jv_free(s);
		}
		a.len = c.len = 0;
		CHECK(h != NULL);
		if (!h)
			continue;
		lwm2m_reg_json_text(&a, g);
		lwm2m_reg_json_text(&c, h);
		diff += a.len != c.len || memcmp(a.p, c.p, a.len) != 0 || g->registered != h->registered ||
		        g->updated != h->updated;
	}
	CHECK(diff == 0);

	/* the saved file: one line per registration, each what jq printed */
	CHECK(lwm2m_registry_save(&r, path) == 0);
	text = slurp(path, &len);
	CHECK(text != NULL);
	p = text;
	bad = 0;
	size_t lines = 0;
	for (struct lwm2m_reg *g = lwm2m_reg_first(&r, &bk); text && g && bad < 5; g = lwm2m_reg_next(&r, g, &bk)) {
		char *nl = memchr(p, '\n', len - (size_t)(p - text));
		CHECK(nl != NULL);
		if (!nl)
			break;
		jv o = lwm2m_reg_json(g);
		o = jv_object_set(o, jv_string("registered"), jv_number(g->registered));
		o = jv_object_set(o, jv_string("updated"), jv_number(g->updated));
		bad += !same("saved line", p, (size_t)(nl - p), o);
		p = nl + 1;
		lines++;
	}
	CHECK(bad == 0 && lines == r.count);
	CHECK(text && p == text + len);
	free(text);
	free(a.p);
	free(c.p);
	lwm2m_registry_free(&back, NULL, NULL);
	lwm2m_registry_free(&r, NULL, NULL);
}

static void test_addr(void)
{
	union lwm2m_addr a = {0};
	char buf[64];
	a.sin.sin_family = AF_INET;
	inet_pton(AF_INET, "255.0.10.1", &a.sin.sin_addr);
	a.sin.sin_port = htons(65535);
	lwm2m_addr_str(&a, buf, sizeof buf);
	CHECK(strcmp(buf, "255.0.10.1:65535") == 0);
	lwm2m_addr_str(&a, buf, 8);
	CHECK(strcmp(buf, "255.0.1") == 0);
	a.sin.sin_port = 0;
	inet_pton(AF_INET, "0.0.0.0", &a.sin.sin_addr);
	lwm2m_addr_str(&a, buf, sizeof buf);
	CHECK(strcmp(buf, "0.0.0.0:0") == 0);
	char id[9];
	lwm2m_reg_id_str(0x0a1f0c2bu, id);
	CHECK(strcmp(id, "0a1f0c2b") == 0);
	lwm2m_reg_id_str(0xffffffffu, id);
	CHECK(strcmp(id, "ffffffff") == 0);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/test_registry.XXXXXX";
	const char *d = argc > 1 ? argv[1] : mkdtemp(dir);
	if (!d) {
		perror("mkdtemp");
		return 111;
	}
	srand(11);
	test_addr();
	struct lwm2m_registry r;
	lwm2m_registry_init(&r);
	test_members(&r);
	lwm2m_registry_free(&r, NULL, NULL);
	test_files(d);
	if (argc <= 1) {
		char p[4200];
		snprintf(p, sizeof p, "%s/registrations.jsonl", d);
		unlink(p);
		snprintf(p, sizeof p, "%s/registrations.jsonl.journal", d);
		unlink(p);
		rmdir(d);
	}
	if (failures)
		fprintf(stderr, "%d checks failed\n", failures);
	return failures ? 1 : 0;
}
