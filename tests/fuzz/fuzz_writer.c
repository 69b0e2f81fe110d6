/* lwm2m-write's engine (lib/writer.c) as the tool drives it: one input is a session of lines.
 * A line starting with '<' is a line from lwm2m-listen's control socket (the registration list,
 * events, answers to the writes: the ids are 1 for subscribe, 2 for list, then 3, 4, ... for the
 * writes in the order they go out); "!" is the control connection lost and made again; any other
 * line is a desired-state delta from shadow-watch (standard input), parsed as the tool parses its
 * lines. The control socket is real (fuzz_common.h); updates go to /dev/null. Small -m and -p
 * bounds so that eviction is reached. */
#include "fuzz_common.h"
#include "jsonl.h"
#include "writer.h"

static char dir[64];
static struct fuzz_ctl fc = {.lfd = -1};
static FILE *devnull;

static void cleanup(void)
{
	unlink(fc.path);
	rmdir(dir);
}

static void setup(void)
{
	fuzz_quiet_logs();
	fuzz_tmpdir(dir, sizeof dir, "fuzz-writer");
	fuzz_ctl_listen(&fc, dir);
	if (!(devnull = fopen("/dev/null", "w")))
		abort();
	atexit(cleanup);
}

static void line(void *arg, const char *s, size_t n)
{
	struct writer *w = arg;
	if (n == 1 && s[0] == '!') {
		writer_disconnected(w);
		writer_connected(w);
	} else if (n > 0) {
		int control = s[0] == '<';
		jv v = jsonl_parse_object(s + control, n - (size_t)control);
		const char *why = NULL;
		if (!jv_is_valid(v))
			jv_free(v);
		else if (control)
			writer_control_line(w, v);
		else if (writer_delta(w, v, &why) < 0 && !why)
			abort(); /* a refused line is always said why */
	}
	fuzz_ctl_drain(&fc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fc.lfd < 0)
		setup();
	struct writer_opts wo = {0, 3, 4};
	struct writer *w = writer_new(fuzz_ctl_connect(&fc), &wo, devnull);
	if (!w)
		abort();
	writer_connected(w);
	fuzz_lines(data, size, line, w);
	(void)writer_pending(w);
	(void)writer_in_flight(w);
	(void)writer_listed(w);
	writer_free(w);
	fuzz_ctl_close(&fc);
	fflush(devnull);
	return 0;
}
