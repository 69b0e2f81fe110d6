#define _GNU_SOURCE
/* lwm2m-write: turn shadow deltas into LwM2M Writes through lwm2m-listen, and report what the
 * device accepted or refused as shadow updates. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdutil.h"
#include "jsonl.h"
#include "linereader.h"
#include "log.h"
#include "lwm2m_ctlclient.h"
#include "objmodel.h"
#include "writer.h"

#ifndef VERSION
#define VERSION "0.1"
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lwm2m-write [-hqvV] [-C path] [-t seconds] [-m n] [-p n] [-o dir] [-d fd]\n"
	           "  -C, --control PATH     lwm2m-listen's control socket (default $LWM2M_CONTROL, else ./var/lwm2m.sock)\n"
	           "  -t, --timeout SECONDS  answer timeout of each write (default: lwm2m-listen's)\n"
	           "  -m, --max-things N     things with pending writes kept (default 10000)\n"
	           "  -p, --max-paths N      pending writes kept per thing (default 256)\n"
	           "  -o, --objects DIR      load more object definitions (OMA DDF XML) from DIR\n"
	           "  -d, --ready FD         write a newline to FD once connected\n"
	           "  -v, --verbose          log more\n"
	           "  -q, --quiet            log less\n"
	           "  -h, --help             print this help\n"
	           "  -V, --version          print the version\n");
}

static int on_delta(void *wr, jv d, unsigned long lineno)
{
	const char *why = NULL;
	if (writer_delta(wr, d, &why) < 0) {
		log_warn("line %lu: %s", lineno, why);
		return -1;
	}
	return 0;
}

static void on_control_line(void *wr, jv line)
{
	writer_control_line(wr, line);
}

static void on_connected(void *wr)
{
	writer_connected(wr);
}

static void on_disconnected(void *wr)
{
	writer_disconnected(wr);
}

static double number_arg(const char *s, double min, double max, const char *what)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (!*s || *end || errno || d < min || d > max)
		die(EXIT_USAGE, "bad %s: %s", what, s);
	return d;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, 0, 'C'},   {"timeout", required_argument, 0, 't'},
		{"max-things", required_argument, 0, 'm'}, {"max-paths", required_argument, 0, 'p'},
		{"objects", required_argument, 0, 'o'},   {"ready", required_argument, 0, 'd'},
		CMD_COMMON_LONGOPTS,                      {0, 0, 0, 0},
	};
	const char *control = getenv("LWM2M_CONTROL"), *objdir = NULL;
	struct writer_opts wo = {0, 10000, 256};
	int ready_fd = -1, c;
	log_init(argv[0]);
	stdout_full_buffer(); /* flushed before every poll */
	if (!control || !*control)
		control = "var/lwm2m.sock";
	while ((c = getopt_long(argc, argv, "C:t:m:p:o:d:" CMD_COMMON_SHORTOPTS, opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			control = optarg;
			break;
		case 't':
			wo.timeout = number_arg(optarg, 0.001, 86400, "timeout");
			break;
		case 'm':
			wo.max_things = (size_t)number_arg(optarg, 1, 1e7, "thing count");
			break;
		case 'p':
			wo.max_paths = (size_t)number_arg(optarg, 1, 1e6, "path count");
			break;
		case 'o':
			objdir = optarg;
			break;
		case 'd':
			ready_fd = cmd_fd_arg(optarg);
			break;
		default:
			if (cmd_common_option(c, usage, "lwm2m-write (lwm2m-gw) " VERSION))
				break;
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (objdir && objmodel_load_dir(objdir) < 0)
		die(EXIT_USAGE, "unable to load object definitions from %s", objdir);

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* a reader that went away is EPIPE: said, and exit 111, not a silent death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);

	struct ctlclient *ctl = ctl_new(control);
	struct writer *wr = ctl ? writer_new(ctl, &wo, stdout) : NULL;
	if (!wr)
		die(EXIT_TEMPORARY, "out of memory");
	struct linereader in;
	lr_init(&in, STDIN_FILENO, 0);
	struct cmd_ctl_loop l = {.ctl = ctl, .in = &in, .in_open = 1, .ready_fd = ready_fd, .arg = wr,
	                         .control_line = on_control_line, .connected = on_connected,
	                         .disconnected = on_disconnected, .object = on_delta};

	/* At the end of the input, wait for the registration list (the writes it lets go out) and
	 * for the answers to the writes sent. */
	while (!stop && (l.in_open || (ctl_connected(ctl) && (!writer_listed(wr) || writer_in_flight(wr) > 0)))) {
		if (cmd_ctl_turn(&l) < 0)
			break;
		if (in.eof)
			l.in_open = 0;
	}
	size_t left = writer_pending(wr);
	if (left)
		log_info("%zu desired value%s not written at exit (they stay in the shadow's delta)", left,
		         left == 1 ? "" : "s");
	lr_free(&in);
	writer_free(wr);
	ctl_free(ctl);
	stdout_flush_or_die();
	return l.rc;
}
