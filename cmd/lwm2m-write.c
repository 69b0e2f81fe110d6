#define _GNU_SOURCE
/* lwm2m-write: turn shadow deltas into LwM2M Writes through lwm2m-listen, and report what the
 * device accepted or refused as shadow updates. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		{"verbose", no_argument, 0, 'v'},         {"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},            {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	const char *control = getenv("LWM2M_CONTROL"), *objdir = NULL;
	struct writer_opts wo = {0, 10000, 256};
	int ready_fd = -1, c;
	log_init(argv[0]);
	stdout_full_buffer(); /* flushed before every poll */
	if (!control || !*control)
		control = "var/lwm2m.sock";
	while ((c = getopt_long(argc, argv, "C:t:m:p:o:d:vqhV", opts, NULL)) != -1) {
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
			ready_fd = (int)number_arg(optarg, 0, 65535, "file descriptor");
			break;
		case 'v':
			log_more();
			break;
		case 'q':
			log_less();
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("lwm2m-write (lwm2m-gw) %s\n", VERSION);
			return 0;
		default:
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
	int rc = 0, input_open = 1;

	/* At the end of the input, wait for the registration list (the writes it lets go out) and
	 * for the answers to the writes sent. */
	while (!stop && (input_open || (ctl_connected(ctl) && (!writer_listed(wr) || writer_in_flight(wr) > 0)))) {
		struct pollfd fds[2];
		int timeout = ctl_poll_setup(ctl, &fds[0]);
		fds[1].fd = input_open ? STDIN_FILENO : -1;
		fds[1].events = POLLIN;
		fds[1].revents = 0;
		if (fflush(stdout) == EOF)
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		if (poll(fds, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_error("unable to poll: %s", strerror(errno));
			rc = EXIT_TEMPORARY;
			break;
		}
		int k = ctl_poll_done(ctl, &fds[0]);
		jv line;
		while (jv_is_valid(line = ctl_next(ctl)))
			writer_control_line(wr, line);
		if (k == 1) {
			writer_connected(wr);
			ready_notify(&ready_fd);
		} else if (k < 0) {
			writer_disconnected(wr);
		}
		if (input_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = lr_fill(&in);
			if (r < 0 && errno != EAGAIN && errno != EINTR) {
				log_error("unable to read stdin: %s", strerror(errno));
				rc = EXIT_TEMPORARY;
				break;
			}
			jv d;
			int t;
			while ((t = jsonl_next_object(&in, &d)) != JSONL_NONE) {
				if (t == JSONL_BAD) {
					rc = EXIT_NEGATIVE;
					continue;
				}
				const char *why = NULL;
				if (writer_delta(wr, d, &why) < 0) {
					log_warn("line %lu: %s", in.lineno, why);
					rc = EXIT_NEGATIVE;
				}
			}
			if (in.eof)
				input_open = 0;
		}
	}
	size_t left = writer_pending(wr);
	if (left)
		log_info("%zu desired value%s not written at exit (they stay in the shadow's delta)", left,
		         left == 1 ? "" : "s");
	lr_free(&in);
	writer_free(wr);
	ctl_free(ctl);
	stdout_flush_or_die();
	return rc;
}
