/* Unit checks of the CoRE link-format parser: RFC 6690 and LwM2M Register payloads, hostile input. */
#include "corelink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static int parse(const char *s, struct lwm2m_links *l, char *err)
{
	/* copy without the terminator, so reading past the end is caught by ASan */
	size_t n = strlen(s);
	char *buf = malloc(n ? n : 1);
	memcpy(buf, s, n);
	int rc = lwm2m_links_parse(buf, n, l, err, 128);
	free(buf);
	return rc;
}

static void test_rfc6690(void)
{
	/* RFC 6690 section 5 example */
	const char *s = "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\",\n"
	                "</sensors/light>;rt=\"light-lux\";if=\"sensor\";obs";
	struct corelink_iter it;
	struct corelink l;
	corelink_iter_init(&it, s, strlen(s));
	CHECK(corelink_next(&it, &l) == 1);
	CHECK(l.uri_len == 13 && memcmp(l.uri, "/sensors/temp", 13) == 0);
	CHECK(l.nparams == 2);
	const struct corelink_param *p = corelink_param(&l, "rt");
	CHECK(p && p->quoted && p->value_len == 13 && memcmp(p->value, "temperature-c", 13) == 0);
	CHECK(corelink_next(&it, &l) == 1);
	p = corelink_param(&l, "obs");
	CHECK(p && p->value == NULL);
	CHECK(corelink_next(&it, &l) == 0);
}

static void test_lwm2m(void)
{
	struct lwm2m_links l;
	char err[128];
	/* LwM2M 1.1 Core, Register example with an rt="oma.lwm2m" root and content formats */
	CHECK(parse("</>;rt=\"oma.lwm2m\";ct=\"110 11542\", </1/0>,</3/0>;ver=1.1,</3303>,</3303/0>, </5>", &l, err) == 0);
	CHECK(l.nobjects == 5);
	CHECK(l.objects[0] == (1u << 16 | 0));
	CHECK(l.objects[1] == (3u << 16 | 0));
	CHECK(l.objects[2] == (5u << 16 | 0xffff));
	CHECK(l.objects[3] == (3303u << 16 | 0));
	CHECK(l.objects[4] == (3303u << 16 | 0xffff));
	CHECK(l.nct == 2 && l.ct[0] == 110 && l.ct[1] == 11542);
	CHECK(l.root[0] == 0);
	lwm2m_links_free(&l);

	/* an alternate path: objects are under it, others ignored */
	CHECK(parse("</lwm2m>;rt=\"oma.lwm2m\",</lwm2m/1/0>,</lwm2m/3/0>,</other/4/0>", &l, err) == 0);
	CHECK(strcmp(l.root, "/lwm2m") == 0);
	CHECK(l.nobjects == 2 && l.objects[1] == (3u << 16));
	lwm2m_links_free(&l);

	/* duplicates collapse; resources and odd paths are ignored; 1.0 ct= unquoted */
	CHECK(parse("</3/0>,</3/0>,</3/0/1>,</>;ct=11543,</65535/0>,</a/b>", &l, err) == 0);
	CHECK(l.nobjects == 1);
	lwm2m_links_free(&l);

	CHECK(parse("", &l, err) == 0 && l.nobjects == 0);
	lwm2m_links_free(&l);
}

static void test_bad(void)
{
	struct lwm2m_links l;
	char err[128];
	const char *bad[] = {"<", "</3/0", "</3/0>;", "</3/0>;rt=\"x", "</3/0></4/0>", "/3/0", "</3/0>,", "</3 /0>",
	                     "</3/0>;=x", "</3/0>;a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p;q"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse(bad[i], &l, err);
		if (rc != -1)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(rc == -1 && err[0]);
		lwm2m_links_free(&l);
	}
	/* random bytes and mutated payloads never crash or read out of bounds */
	srand(1);
	const char *seed = "</>;rt=\"oma.lwm2m\";ct=\"110 112\",</1/0>,</3/0>;ver=1.1,</3303/0>";
	size_t n = strlen(seed);
	for (int round = 0; round < 20000; round++) {
		char buf[128];
		size_t len = (size_t)rand() % sizeof buf;
		if (round % 2) {
			for (size_t i = 0; i < len; i++)
				buf[i] = "<>/;,=\"\\ 0139ab"[rand() % 16];
		} else {
			len = n;
			memcpy(buf, seed, n);
			for (int k = 0; k < 3; k++)
				buf[rand() % n] = (char)(rand() % 256);
			len = (size_t)rand() % (n + 1);
		}
		char *p = malloc(len ? len : 1);
		memcpy(p, buf, len);
		if (lwm2m_links_parse(p, len, &l, err, sizeof err) == 0)
			lwm2m_links_free(&l);
		free(p);
	}
	/* too many links is refused, not swallowed */
	size_t big = (CORELINK_MAX_LINKS + 10) * 7;
	char *p = malloc(big + 1), *q = p;
	for (int i = 0; i < CORELINK_MAX_LINKS + 10; i++)
		q += sprintf(q, "%s</3/%d>", i ? "," : "", i % 10);
	CHECK(lwm2m_links_parse(p, (size_t)(q - p), &l, err, sizeof err) == -1);
	free(p);
}

int main(void)
{
	test_rfc6690();
	test_lwm2m();
	test_bad();
	if (failures) {
		fprintf(stderr, "test_corelink: %d failures\n", failures);
		return 1;
	}
	return 0;
}
