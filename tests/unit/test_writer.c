/* lwm2m-write's engine (lib/writer.c) over a real Unix control socket that this test plays as
 * lwm2m-listen: a group write the device refuses as a whole is written again resource by
 * resource, but not a resource whose desired value a later delta refused meanwhile (fuzz_writer
 * found that it was, with no value: the next flush dumped an invalid jv and libjq aborted); with
 * -m, the oldest thing's pending writes are forgotten, and only when the count passes it.
 * Argument: a scratch directory for the socket. */
#include "jsonl.h"
#include "log.h"
#include "lwm2m_ctlclient.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"

static int peer;

static void feed(struct writer *w, const char *line, int control)
{
	jv v = jsonl_parse_object(line, strlen(line));
	const char *why = NULL;
	if (!jv_is_valid(v)) {
		fprintf(stderr, "bad fixture: %s\n", line);
		failures++;
		jv_free(v);
	} else if (control) {
		writer_control_line(w, v);
	} else {
		CHECK(writer_delta(w, v, &why) == 0);
	}
}

/* The write commands sent since the last call, as "id values" lines. */
static void sent(char *out, size_t size)
{
	char buf[8192];
	ssize_t n = recv(peer, buf, sizeof buf - 1, MSG_DONTWAIT);
	size_t len = 0;
	out[0] = 0;
	buf[n > 0 ? n : 0] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		jv c = jsonl_parse_object(line, strlen(line));
		const char *op = jl_str(c, "op");
		if (op && strcmp(op, "write") == 0) {
			jv vals = jv_dump_string(jl_get(c, "values"), JV_PRINT_SORTED);
			len += (size_t)snprintf(out + len, size - len, "%.0f %s\n", jl_num(c, "id", 0), jv_string_value(vals));
			jv_free(vals);
		}
		jv_free(c);
	}
}

/* The id of the list command sent since the last call (what else was sent is dropped). */
static double list_id(void)
{
	char buf[8192];
	ssize_t n = recv(peer, buf, sizeof buf - 1, MSG_DONTWAIT);
	double id = -1;
	buf[n > 0 ? n : 0] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		jv c = jsonl_parse_object(line, strlen(line));
		const char *op = jl_str(c, "op");
		if (op && strcmp(op, "list") == 0)
			id = jl_num(c, "id", -1);
		jv_free(c);
	}
	return id;
}

int main(int argc, char **argv)
{
	char path[100], got[1024];
	log_init("test_writer");
	log_less();
	snprintf(path, sizeof path, "%s/ctl", argc > 1 ? argv[1] : "/tmp");
	unlink(path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0) {
		perror(path);
		return 1;
	}
	struct ctlclient *ctl = ctl_new(path);
	CHECK(ctl && ctl_connect(ctl) == 1);
	peer = accept(lfd, NULL, NULL);
	CHECK(peer >= 0);
	char *text = NULL;
	size_t textlen = 0;
	FILE *out = open_memstream(&text, &textlen);
	struct writer_opts wo = {0, 10, 10};
	struct writer *w = writer_new(ctl, &wo, out);
	writer_connected(w); /* subscribe (id 1) and list (id 2) */
	feed(w, "{\"id\":2,\"op\":\"list\",\"code\":\"2.05\",\"registrations\":[{\"ep\":\"lamp-1\",\"reg\":\"4a1f0c2b\"}]}", 1);
	feed(w, "{\"thing\":\"lamp-1\",\"state\":{\"3311\":{\"0\":{\"5850\":false,\"5851\":10}}}}", 0);
	sent(got, sizeof got);
	CHECK(strcmp(got, "3 {\"/3311/0/5850\":false,\"/3311/0/5851\":10}\n") == 0);
	/* while it is out, the desired on/off becomes a number: refused, no longer pending */
	feed(w, "{\"thing\":\"lamp-1\",\"state\":{\"3311\":{\"0\":{\"5850\":10,\"5851\":10}}}}", 0);
	feed(w, "{\"id\":3,\"op\":\"write\",\"ep\":\"lamp-1\",\"path\":\"/3311/0\",\"code\":\"4.00\",\"error\":\"Bad Request\"}", 1);
	sent(got, sizeof got);
	if (strcmp(got, "4 {\"/3311/0/5851\":10}\n") != 0)
		fprintf(stderr, "sent after the refusal:\n%s", got);
	CHECK(strcmp(got, "4 {\"/3311/0/5851\":10}\n") == 0);
	feed(w, "{\"id\":4,\"op\":\"write\",\"ep\":\"lamp-1\",\"path\":\"/3311/0\",\"code\":\"2.04\"}", 1);
	sent(got, sizeof got);
	CHECK(got[0] == 0);
	CHECK(writer_pending(w) == 0 && writer_in_flight(w) == 0);
	fflush(out);
	/* the refused value recorded as an error, the written one reported */
	CHECK(strstr(text, "\"/3311/0/5850\":{\"code\":\"bad-value\"") != NULL);
	CHECK(strstr(text, "\"reported\":{\"3311\":{\"0\":{\"5851\":10}}") != NULL);
	writer_free(w);

	/* -m 2: the thing whose delta is oldest is forgotten when a third has pending writes; a thing
	 * whose delta settles everything no longer counts (the count is kept apart from libjq's
	 * jv_object_length, which walks the whole table) */
	struct writer_opts wo2 = {0, 2, 10};
	w = writer_new(ctl, &wo2, out);
	writer_connected(w);
	feed(w, "{\"thing\":\"a\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}", 0);
	feed(w, "{\"thing\":\"b\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}", 0);
	CHECK(writer_pending(w) == 2);
	feed(w, "{\"thing\":\"c\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}", 0);
	CHECK(writer_pending(w) == 2); /* a forgotten */
	feed(w, "{\"thing\":\"b\",\"state\":{}}", 0);
	CHECK(writer_pending(w) == 1); /* c */
	feed(w, "{\"thing\":\"d\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}", 0);
	CHECK(writer_pending(w) == 2); /* c and d: nothing forgotten */
	feed(w, "{\"thing\":\"e\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}", 0);
	CHECK(writer_pending(w) == 2); /* c forgotten */
	feed(w, "{\"thing\":\"a\",\"state\":{}}", 0);
	feed(w, "{\"thing\":\"c\",\"state\":{}}", 0);
	CHECK(writer_pending(w) == 2); /* forgotten things settle nothing */
	writer_free(w);

	/* a device that registers gets the writes of its plain and its named shadows, and no other's */
	w = writer_new(ctl, &wo, out);
	writer_connected(w);
	char line[256];
	snprintf(line, sizeof line, "{\"id\":%.0f,\"op\":\"list\",\"code\":\"2.05\",\"registrations\":[]}", list_id());
	feed(w, line, 1);
	feed(w, "{\"thing\":\"lamp-9\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}", 0);
	feed(w, "{\"thing\":\"lamp-9\",\"shadow\":\"dim\",\"state\":{\"3311\":{\"1\":{\"5851\":40}}}}", 0);
	feed(w, "{\"thing\":\"lamp-8\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}", 0);
	sent(got, sizeof got);
	CHECK(got[0] == 0 && writer_pending(w) == 3);
	feed(w, "{\"event\":\"register\",\"ep\":\"lamp-9\",\"reg\":\"r9\"}", 1);
	sent(got, sizeof got);
	CHECK(strstr(got, " {\"/3311/0/5850\":true}\n") && strstr(got, " {\"/3311/1/5851\":40}\n"));
	CHECK(writer_in_flight(w) == 2);
	/* lamp-8's delta settled before it registers: nothing to write */
	feed(w, "{\"thing\":\"lamp-8\",\"state\":{}}", 0);
	feed(w, "{\"event\":\"register\",\"ep\":\"lamp-8\",\"reg\":\"r8\"}", 1);
	sent(got, sizeof got);
	CHECK(got[0] == 0);
	writer_free(w);
	ctl_free(ctl);
	fclose(out);
	free(text);
	close(peer);
	close(lfd);
	unlink(path);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
