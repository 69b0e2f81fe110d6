#define _GNU_SOURCE
/* shadow-watch: print a delta line whenever a shadow's desired state differs from its
 * reported state. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdutil.h"
#include "jsonl.h"
#include "log.h"
#include "shadow_backend.h"
#include "shadow_aws.h"
#include "shadow_local.h"
#include "linereader.h"

#ifndef VERSION
#define VERSION "0.1"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: shadow-watch [-hinqvV] [-d fd] [-s dir] [-t pattern]... [pattern ...]\n"
	           "       shadow-watch -a [-hqvV] [-E] [-d fd] [-e endpoint] -c cert -k key [-A cafile]\n"
	           "                    [-B seconds] [-N shadow]... [-t thing]... [thing ...]\n"
	           "  -s, --store DIR      local shadow store (default $SHADOW_STORE, else ./var/shadows)\n"
	           "  -t, --thing PATTERN  watch the things whose names match PATTERN (glob; repeatable)\n"
	           "  -i, --initial        first print the current delta of every shadow (the default)\n"
	           "  -n, --no-initial     print only deltas published from now on\n"
	           "  -d, --ready FD       write a newline to FD once watching\n"
	           );
	shadow_aws_usage(f, 23, 1);
	fprintf(f, "  -N, --shadow NAME    AWS: watch the named shadow NAME too (repeatable)\n"
	           "  -E, --events         AWS: watch the things lwm2m-listen's events on stdin name\n"
	           "  -v, --verbose        log more\n"
	           "  -q, --quiet          log less\n"
	           "  -h, --help           print this help\n"
	           "  -V, --version        print the version\n");
}

struct ctx {
	jv seen;
};

/* Print each version once, and never one older than a version already printed. */
static void emit(void *arg, jv delta)
{
	struct ctx *c = arg;
	const char *thing = jl_str(delta, "thing");
	const char *shadow = jl_str(delta, "shadow");
	double version = jl_num(delta, "version", -1);
	if (!thing || !shadow_seen_newer(&c->seen, thing, shadow, version)) {
		jv_free(delta);
		return;
	}
	if (jsonl_put(stdout, delta) < 0)
		die_sys(EXIT_TEMPORARY, "unable to write to stdout");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, 0, 's'}, {"thing", required_argument, 0, 't'},
		{"initial", no_argument, 0, 'i'},     {"no-initial", no_argument, 0, 'n'},
		{"ready", required_argument, 0, 'd'}, CMD_COMMON_LONGOPTS,
		SHADOW_AWS_LONGOPTS,
		{"shadow", required_argument, 0, 'N'}, {"events", no_argument, 0, 'E'},
		{0, 0, 0, 0},
	};
	const char *store = NULL;
	int initial = 1, ready_fd = -1, events = 0, c;
	struct shadow_aws_opts aws;
	char *names[argc + 1];
	char *patterns[argc + 1];
	struct shadow_select sel = {patterns, 0};
	log_init(argv[0]);
	stdout_full_buffer(); /* flushed before every wait */
	shadow_aws_opts_init(&aws);
	aws.shadows = names;
	while ((c = getopt_long(argc, argv, "s:t:ind:N:E" CMD_COMMON_SHORTOPTS SHADOW_AWS_SHORTOPTS, opts, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 't':
			sel.patterns[sel.n++] = optarg;
			break;
		case 'i':
			initial = 1;
			break;
		case 'n':
			initial = 0;
			break;
		case 'd':
			ready_fd = cmd_fd_arg(optarg);
			break;
		case 'N':
			aws.shadows[aws.nshadows++] = optarg;
			break;
		case 'E':
			events = 1;
			break;
		default:
			if (cmd_common_option(c, usage, "shadow-watch (lwm2m-gw) " VERSION) ||
			    shadow_aws_option(&aws, c, optarg) == 0)
				break;
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++)
		sel.patterns[sel.n++] = argv[i];

	sigset_t unblocked;
	cmd_stop_signals(&unblocked);

	const char *dir = shadow_store_dir(store);
	struct shadow_backend *be;
	if (aws.enabled) {
		char err[512];
		if (sel.n == 0 && !events)
			die(EXIT_USAGE, "AWS IoT: name the things to watch, or give --events");
		aws.watch = 1;
		if (!(be = shadow_aws_open(&aws, err, sizeof err)))
			die(EXIT_USAGE, "AWS IoT: %s", err);
		dir = "AWS IoT";
	} else if (events || aws.nshadows) {
		die(EXIT_USAGE, "--events and --shadow go with --aws");
	} else if (!(be = shadow_local_open(dir))) {
		die_sys(EXIT_TEMPORARY, "unable to open the shadow store %s", dir);
	}
	struct ctx ctx = {jv_object()};
	if (be->ops->watch_start(be, &sel, initial, emit, &ctx) < 0)
		die_sys(EXIT_TEMPORARY, "unable to watch the shadow store %s", dir);
	ready_notify(&ready_fd);
	int rc = 0;
	struct linereader lr;
	lr_init(&lr, STDIN_FILENO, LR_DEFAULT_MAX);
	while (!cmd_stop_requested()) {
		if (fflush(stdout) == EOF)
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		struct pollfd p[2] = {{.fd = be->ops->watch_fd(be), .events = POLLIN},
		                      {.fd = events ? STDIN_FILENO : -1, .events = POLLIN}};
		int n = ppoll(p, 2, NULL, &unblocked);
		if (n > 0 && p[1].revents) {
			/* registration events: AWS subscriptions follow the devices that are here */
			if (lr_fill(&lr) <= 0)
				events = 0; /* end of input (or an error): keep watching what we have */
			char *line;
			size_t len;
			int k;
			while ((k = lr_next(&lr, &line, &len)) != LR_NEED_MORE) {
				if (k == LR_LINE)
					shadow_aws_event(be, line, len, lr.lineno);
				else
					log_warn("event line %lu: too long", lr.lineno);
			}
			if (!p[0].revents)
				continue;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("unable to poll: %s", strerror(errno));
			rc = EXIT_TEMPORARY;
			break;
		}
		if (be->ops->watch_drain(be, emit, &ctx) < 0) {
			log_error("unable to follow the shadow store %s: %s", dir, strerror(errno));
			rc = EXIT_TEMPORARY;
			break;
		}
	}
	be->ops->close(be);
	lr_free(&lr);
	shadow_aws_opts_free(&aws);
	jv_free(ctx.seen);
	stdout_flush_or_die();
	return rc;
}
