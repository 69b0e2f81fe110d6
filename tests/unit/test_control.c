/* Unit checks of lwm2m-listen's notification line: written as text from the observation's
 * command text (lwm2m_control_notify_text) it must be byte for byte what jq prints for the
 * reply object (lwm2m_control_reply_jv). Random commands (ids of every scalar kind, strings
 * with escapes and UTF-8, members in any order, paths of every resource type, "discover"),
 * random replies (codes, content formats, payloads that decode and that do not, Location). */
#include "json_out.h"
#include "lwm2m_codec.h"
#include "lwm2m_control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static jv rand_string(void)
{
	static const char *const pick[] = {"a", "Z", "0", "-", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x7f", "é", "€", "𝄞"};
	char s[128] = "";
	int n = rand() % 12;
	for (int i = 0; i < n; i++)
		strcat(s, pick[rand() % (int)(sizeof pick / sizeof pick[0])]);
	return jv_string(s);
}

static jv rand_scalar(void)
{
	switch (rand() % 7) {
	case 0: return jv_null();
	case 1: return rand() % 2 ? jv_true() : jv_false();
	case 2: return jv_number(rand() % 100000);
	case 3: return jv_number((double)rand() / 7.0 - 1e6);
	case 4: return jv_number(rand() % 2 ? 1e300 * rand() : 1e-300 / (1 + rand()));
	default: return rand_string();
	}
}

static const char *const paths[] = {"/3303/0/5700", "/3/0/9", "/3/0/0", "/3311/0/5850", "/3/0/13", "/3/0/7",
                                    "/3/0/7/1", "/3/0", "/3303/0", "/9999/0/1", "/3/0/7/0", "/1/0/1", "/3303/0/5701"};

static jv rand_cmd(void)
{
	const char *keys[] = {"id", "op", "ep", "path", "paths", "pmin", "format"};
	int order[7] = {0, 1, 2, 3, 4, 5, 6};
	for (int i = 6; i > 0; i--) {
		int j = rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	jv c = jv_object();
	for (int i = 0; i < 7; i++) {
		const char *k = keys[order[i]];
		if (rand() % 5 == 0 && strcmp(k, "path") != 0)
			continue;
		jv v;
		if (!strcmp(k, "id"))
			v = rand_scalar();
		else if (!strcmp(k, "op"))
			v = jv_string(rand() % 10 ? "observe" : rand() % 2 ? "discover" : "read");
		else if (!strcmp(k, "ep"))
			v = rand_string();
		else if (!strcmp(k, "path"))
			v = rand() % 2 ? jv_string("/3303/0/5700")
			    : rand() % 12 ? jv_string(paths[rand() % (int)(sizeof paths / sizeof paths[0])]) : rand_scalar();
		else if (!strcmp(k, "paths"))
			v = rand() % 2 ? jv_array_append(jv_array_append(jv_array(), jv_string("/3/0/9")), rand_string())
			               : rand_scalar();
		else
			v = rand_scalar();
		c = jv_object_set(c, jv_string(k), v);
	}
	/* a key with an escape, now and then */
	if (rand() % 20 == 0)
		c = jv_object_set(c, jv_string("we\"ird"), jv_number(1));
	return c;
}

static size_t rand_payload(char *p, size_t cap, int *ct)
{
	static const int cts[] = {-1, LWM2M_CT_TEXT, LWM2M_CT_TEXT, LWM2M_CT_TEXT, LWM2M_CT_OPAQUE,
	                          LWM2M_CT_SENML_JSON, LWM2M_CT_TLV, LWM2M_CT_LINK, 9999};
	*ct = cts[rand() % (int)(sizeof cts / sizeof cts[0])];
	static const char *const texts[] = {"21.5", "1795415691694124", "-3", "0", "1", "hello", "1e308", "2.5e-7",
	                                    "", "x\"y", "€", "+7", "1.0", "12345678901234567890", "nan"};
	switch (*ct) {
	case LWM2M_CT_SENML_JSON:
		return (size_t)snprintf(p, cap, "[{\"bn\":\"/3303/0/\",\"n\":\"5700\",\"v\":%d.%d}]", rand() % 100, rand() % 10);
	case LWM2M_CT_TLV: {
		size_t n = (size_t)(1 + rand() % 12);
		if (rand() % 2) { /* a single resource 5700 / 9, 4 bytes */
			unsigned char t[] = {0xc4, 0, 0, 0x41, 0xac, 0, 0};
			t[1] = (unsigned char)(rand() % 2 ? 9 : 0x57); /* 9, or 0x57 (not 5700: an id of one byte) */
			memcpy(p, t, 6);
			return 6;
		}
		for (size_t i = 0; i < n; i++)
			p[i] = (char)rand();
		return n;
	}
	default: {
		const char *t = texts[rand() % (int)(sizeof texts / sizeof texts[0])];
		if (rand() % 3 == 0)
			return (size_t)snprintf(p, cap, "%d.%d", rand() % 1000 - 500, rand() % 1000);
		return (size_t)snprintf(p, cap, "%s", t);
	}
	}
}

int main(void)
{
	srand(8);
	int fast = 0, total = 20000;
	struct jbuf b = {0};
	for (int i = 0; i < total; i++) {
		jv cmd = rand_cmd();
		jv text = jv_dump_string(jv_copy(cmd), 0);
		jv_free(cmd);
		char payload[256];
		struct lwm2m_reply rep = {0};
		rep.notify = rand() % 10 != 0;
		static const int codes[] = {205, 205, 205, 205, 203, 231, 404, 500, 0};
		rep.code = codes[rand() % (int)(sizeof codes / sizeof codes[0])];
		if (!rep.code)
			rep.status = "timeout";
		rep.len = rand_payload(payload, sizeof payload, &rep.ct);
		rep.data = (const uint8_t *)payload;
		if (rand() % 30 == 0)
			strcpy(rep.location, "/3303/1");
		if (rand() % 2) { /* the common case: a value of a resource the command observes */
			rep.notify = 1;
			rep.code = 205;
			rep.ct = rand() % 4 ? LWM2M_CT_TEXT : -1;
			rep.len = (size_t)snprintf(payload, sizeof payload, "%d.%d", rand() % 1000 - 500, rand() % 1000);
			rep.location[0] = 0;
		}
		b.len = 0;
		b.failed = 0;
		const char *t = jv_string_value(text);
		int took = lwm2m_control_notify_text(&b, t, strlen(t), &rep);
		if (!took) {
			CHECK(b.len == 0);
		} else {
			fast++;
			jv want = jv_dump_string(lwm2m_control_reply_jv(jv_parse(t), &rep), 0);
			want = jv_string_append_str(want, "\n");
			size_t wl = (size_t)jv_string_length_bytes(jv_copy(want));
			int same = wl == b.len && memcmp(jv_string_value(want), b.p, wl) == 0;
			CHECK(same);
			if (!same)
				fprintf(stderr, "command %s\n  jq:   %s  text: %.*s", t, jv_string_value(want), (int)b.len, b.p);
			jv_free(want);
		}
		jv_free(text);
	}
	free(b.p);
	/* most of them are the common case, written as text */
	printf("%d of %d replies written as text, the same as jq's\n", fast, total);
	CHECK(fast > total / 3);
	return failures != 0;
}
