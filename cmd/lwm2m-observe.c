#define _GNU_SOURCE
/* lwm2m-observe: observe the configured resources of every registered device and print each value
 * received as a shadow update. */
#include <errno.h>
#include <fcntl.h>
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
#include "observe_config.h"
#include "observer.h"

#ifndef VERSION
#define VERSION "0.1"
#endif

static volatile sig_atomic_t stop, reload;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload = 1;
	else
		stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lwm2m-observe [-hOqsvV] [-C path] [-c file] [-n shadow] [-d fd] [path ...]\n"
	           "  -C, --control PATH   lwm2m-listen's control socket (default $LWM2M_CONTROL, else ./var/lwm2m.sock)\n"
	           "  -c, --config FILE    YAML: paths, attributes, and per-endpoint rules\n"
	           "  -s, --subscribe      take registration events from the control socket, not stdin\n"
	           "  -n, --shadow NAME    write to the named shadow NAME (default: the classic shadow)\n"
	           "  -O, --composite      one Observe-Composite per LwM2M 1.1+ device, so its values arrive together\n"
	           "                       (per-path Observe if the device refuses it or is 1.0)\n"
	           "  -d, --ready FD       write a newline to FD once connected\n"
	           "  -v, --verbose        log more\n"
	           "  -q, --quiet          log less\n"
	           "  -h, --help           print this help\n"
	           "  -V, --version        print the version\n");
}

static int load_config(struct observe_config *cfg, const char *file, char **paths, size_t npaths)
{
	char *err = NULL;
	struct observe_config nc;
	if (observe_config_default(&nc) < 0) {
		log_error("out of memory");
		return -1;
	}
	if ((file && observe_config_load(&nc, file, &err) < 0) ||
	    (npaths && observe_config_set_paths(&nc, paths, npaths, &err) < 0)) {
		log_error("%s", err ? err : "bad configuration");
		free(err);
		observe_config_free(&nc);
		return -1;
	}
	observe_config_free(cfg);
	*cfg = nc;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, 0, 'C'}, {"config", required_argument, 0, 'c'},
		{"subscribe", no_argument, 0, 's'},     {"shadow", required_argument, 0, 'n'},
		{"ready", required_argument, 0, 'd'},   {"composite", no_argument, 0, 'O'},
		{"verbose", no_argument, 0, 'v'},
		{"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},       {0, 0, 0, 0},
	};
	const char *control = getenv("LWM2M_CONTROL"), *config = NULL, *shadow = NULL;
	int subscribe = 0, composite = 0, ready_fd = -1, c;
	log_init(argv[0]);
	stdout_full_buffer(); /* flushed before every poll */
	if (!control || !*control)
		control = "var/lwm2m.sock";
	while ((c = getopt_long(argc, argv, "C:c:sn:d:OvqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			control = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 's':
			subscribe = 1;
			break;
		case 'n':
			shadow = optarg;
			break;
		case 'O':
			composite = 1;
			break;
		case 'd': {
			char *end;
			long fd = strtol(optarg, &end, 10);
			if (!*optarg || *end || fd < 0 || fd > 65535)
				die(EXIT_USAGE, "bad file descriptor: %s", optarg);
			ready_fd = (int)fd;
			break;
		}
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
			printf("lwm2m-observe (lwm2m-gw) %s\n", VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	char **paths = argv + optind;
	size_t npaths = (size_t)(argc - optind);
	struct observe_config cfg;
	if (observe_config_default(&cfg) < 0)
		die(EXIT_TEMPORARY, "out of memory");
	if (load_config(&cfg, config, paths, npaths) < 0) {
		observe_config_free(&cfg);
		return EXIT_USAGE;
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* a reader that went away is EPIPE: said, and exit 111, not a silent death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);

	struct ctlclient *ctl = ctl_new(control);
	struct observer *ob = ctl ? observer_new(ctl, &cfg, shadow, stdout) : NULL;
	if (!ob)
		die(EXIT_TEMPORARY, "out of memory");
	observer_set_composite(ob, composite);
	struct linereader in;
	lr_init(&in, STDIN_FILENO, 0);
	int rc = 0, stdin_open = !subscribe;

	while (!stop) {
		if (reload) {
			reload = 0;
			if (config && load_config(&cfg, config, paths, npaths) == 0)
				log_info("configuration reloaded from %s (applies to the next registrations)", config);
		}
		struct pollfd fds[2];
		int timeout = ctl_poll_setup(ctl, &fds[0]);
		fds[1].fd = stdin_open ? STDIN_FILENO : -1;
		fds[1].events = POLLIN;
		fds[1].revents = 0;
		if (fflush(stdout) == EOF)
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		int n = poll(fds, 2, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("unable to poll: %s", strerror(errno));
			rc = EXIT_TEMPORARY;
			break;
		}
		int k = ctl_poll_done(ctl, &fds[0]);
		jv line;
		while (jv_is_valid(line = ctl_next(ctl)))
			observer_control_line(ob, line);
		if (k == 1) {
			observer_connected(ob, subscribe);
			ready_notify(&ready_fd);
		} else if (k < 0) {
			observer_disconnected(ob);
		}
		if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = lr_fill(&in);
			if (r < 0 && errno != EAGAIN && errno != EINTR) {
				log_error("unable to read stdin: %s", strerror(errno));
				rc = EXIT_TEMPORARY;
				break;
			}
			jv ev;
			int t;
			while ((t = jsonl_next_object(&in, &ev)) != JSONL_NONE) {
				if (t == JSONL_BAD) {
					rc = EXIT_NEGATIVE;
					continue;
				}
				if (jl_str(ev, "event"))
					observer_event(ob, ev);
				else
					jv_free(ev); /* lwm2m-listen's answers to stdin commands share its stdout */
			}
			if (in.eof) {
				log_debug("end of input");
				break;
			}
		}
	}
	lr_free(&in);
	observer_free(ob);
	ctl_free(ctl);
	observe_config_free(&cfg);
	stdout_flush_or_die();
	return rc;
}
