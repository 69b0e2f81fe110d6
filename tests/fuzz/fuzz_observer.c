/* lwm2m-observe's engine (lib/observer.c) as the tool drives it: one input is a session of
 * lines. A line starting with '<' is a line from lwm2m-listen's control socket (the registration
 * list, events, answers and notifications: the ids are 1 for subscribe, 2 for list, then 3, 4,
 * ... in the order the commands go out); "!" is the control connection lost and made again; "!O"
 * turns on Observe-Composite (-O); any other line is a registration event on standard input,
 * parsed as the tool parses its lines. Each line ends a round (the merged updates are printed).
 * The configuration (lwm2m-observe -c, whose loader fuzz_configs covers) has a default rule, a
 * rule with attributes and one with object-level and resource-instance paths. The control socket
 * is real (fuzz_common.h); updates go to /dev/null. */
#include "fuzz_common.h"
#include "jsonl.h"
#include "observe_config.h"
#include "observer.h"

static const char config[] =
	"paths: [/3/0/9, /4/0/2, /3303/0/5700]\n"
	"endpoints:\n"
	"  - match: \"lamp-*\"\n"
	"    paths: [/3311/0/5850, /3311/0/5851, /3/0/9]\n"
	"    attributes: {pmin: 1, pmax: 60}\n"
	"  - match: \"x*\"\n"
	"    paths: [/3303, /3/0/7/1, /3347/1/5501]\n";

static char dir[64], cfgfile[96];
static struct fuzz_ctl fc = {.lfd = -1};
static FILE *devnull;
static struct observe_config cfg;

static void cleanup(void)
{
	observe_config_free(&cfg);
	unlink(fc.path);
	unlink(cfgfile);
	rmdir(dir);
}

static void setup(void)
{
	fuzz_quiet_logs();
	fuzz_tmpdir(dir, sizeof dir, "fuzz-observer");
	fuzz_ctl_listen(&fc, dir);
	snprintf(cfgfile, sizeof cfgfile, "%s/observe.yml", dir);
	fuzz_write_file(cfgfile, config, sizeof config - 1);
	char *err = NULL;
	if (!(devnull = fopen("/dev/null", "w")) || observe_config_default(&cfg) != 0 ||
	    observe_config_load(&cfg, cfgfile, &err) != 0)
		abort();
	atexit(cleanup);
}

static void line(void *arg, const char *s, size_t n)
{
	struct observer *o = arg;
	if (n == 1 && s[0] == '!') {
		observer_disconnected(o);
		observer_connected(o, 1);
	} else if (n == 2 && memcmp(s, "!O", 2) == 0) {
		observer_set_composite(o, 1);
	} else if (n > 0) {
		int control = s[0] == '<';
		jv v = jsonl_parse_object(s + control, n - (size_t)control);
		if (!jv_is_valid(v))
			jv_free(v);
		else if (control)
			observer_control_line(o, v);
		else if (jl_str(v, "event")) /* as lwm2m-observe's on_event */
			observer_event(o, v);
		else
			jv_free(v);
	}
	observer_flush(o);
	fuzz_ctl_drain(&fc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fc.lfd < 0)
		setup();
	struct observer *o = observer_new(fuzz_ctl_connect(&fc), &cfg, NULL, devnull);
	if (!o)
		abort();
	observer_connected(o, 1);
	fuzz_lines(data, size, line, o);
	(void)observer_values(o);
	(void)observer_updates(o);
	observer_free(o);
	fuzz_ctl_close(&fc);
	fflush(devnull);
	return 0;
}
