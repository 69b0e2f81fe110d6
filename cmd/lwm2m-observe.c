#define _GNU_SOURCE
/* lwm2m-observe: observe the configured resources of every registered device and print each value
 * received as a shadow update. */
#include <fcntl.h>
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
	           "                       (per-path Observe if the device refuses it, leaves it unanswered twice, or is 1.0)\n"
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

struct loop_arg {
	struct observer *ob;
	int subscribe;
};

static int on_event(void *arg, jv ev, unsigned long lineno)
{
	struct loop_arg *a = arg;
	(void)lineno;
	if (jl_str(ev, "event"))
		observer_event(a->ob, ev);
	else
		jv_free(ev); /* lwm2m-listen's answers to stdin commands share its stdout */
	return 0;
}

static void on_control_line(void *arg, jv line)
{
	observer_control_line(((struct loop_arg *)arg)->ob, line);
}

static void on_connected(void *arg)
{
	struct loop_arg *a = arg;
	observer_connected(a->ob, a->subscribe);
}

static void on_round_end(void *arg)
{
	struct loop_arg *a = arg;
	observer_flush(a->ob);
}

static void on_disconnected(void *arg)
{
	observer_disconnected(((struct loop_arg *)arg)->ob);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, 0, 'C'}, {"config", required_argument, 0, 'c'},
		{"subscribe", no_argument, 0, 's'},     {"shadow", required_argument, 0, 'n'},
		{"ready", required_argument, 0, 'd'},   {"composite", no_argument, 0, 'O'},
		CMD_COMMON_LONGOPTS,                    {0, 0, 0, 0},
	};
	const char *control = getenv("LWM2M_CONTROL"), *config = NULL, *shadow = NULL;
	int subscribe = 0, composite = 0, ready_fd = -1, c;
	log_init(argv[0]);
	stdout_full_buffer(); /* flushed before every poll */
	if (!control || !*control)
		control = "var/lwm2m.sock";
	while ((c = getopt_long(argc, argv, "C:c:sn:d:O" CMD_COMMON_SHORTOPTS, opts, NULL)) != -1) {
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
		case 'd':
			ready_fd = cmd_fd_arg(optarg);
			break;
		default:
			if (cmd_common_option(c, usage, "lwm2m-observe (lwm2m-gw) " VERSION))
				break;
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
	struct loop_arg arg = {ob, subscribe};
	struct cmd_ctl_loop l = {.ctl = ctl, .in = &in, .in_open = !subscribe, .ready_fd = ready_fd, .arg = &arg,
	                         .control_line = on_control_line, .connected = on_connected,
	                         .disconnected = on_disconnected, .object = on_event, .round_end = on_round_end};

	while (!stop) {
		if (reload) {
			reload = 0;
			if (config && load_config(&cfg, config, paths, npaths) == 0)
				log_info("configuration reloaded from %s (applies to the next registrations)", config);
		}
		if (cmd_ctl_turn(&l) < 0)
			break;
		if (in.eof) {
			log_debug("end of input");
			break;
		}
	}
	lr_free(&in);
	observer_flush(ob);
	log_debug("%lu values, %lu updates", observer_values(ob), observer_updates(ob));
	observer_free(ob);
	ctl_free(ctl);
	observe_config_free(&cfg);
	stdout_flush_or_die();
	return l.rc;
}
