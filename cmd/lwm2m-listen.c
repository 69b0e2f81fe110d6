/* lwm2m-listen: the LwM2M server endpoint. Registrations in, events out, commands to devices. */
#include "log.h"
#include "lwm2m_control.h"
#include "lwm2m_server.h"

#include <coap3/coap.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERSION "0.1"

static volatile sig_atomic_t quit, hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup = 1;
	else
		quit = 1;
}

static const char usage_text[] =
    "Usage: lwm2m-listen [-hVvq] [-l ADDR:PORT] [-C PATH] [-S DIR] [-a SECONDS] [-Q N] [-T SECONDS]\n"
    "                    [-t SECONDS] [-r N] [-w SECONDS] [-s SECONDS] [-d FD]\n"
    "The LwM2M server endpoint: registrations in, events out, commands to devices.\n"
    "  -l, --listen ADDR:PORT      UDP address to listen on (default 127.0.0.1:5683)\n"
    "  -C, --control PATH          control socket (Unix stream) for commands\n"
    "  -S, --state DIR             where registrations are kept (default ./var/lwm2m; \"\" for none)\n"
    "  -a, --awake-time SECONDS    queue mode: awake this long after a message (default 93)\n"
    "  -Q, --queue-max N           requests held per sleeping device (default 32)\n"
    "  -T, --queue-ttl SECONDS     how long a request may be held (default 300)\n"
    "  -t, --ack-timeout SECONDS   CoAP ACK_TIMEOUT (default 2)\n"
    "  -r, --max-retransmit N      CoAP MAX_RETRANSMIT (default 4)\n"
    "  -w, --request-timeout SECONDS  answer timeout for a request (default 93)\n"
    "  -s, --sync-interval SECONDS at most this long between a change and its save (default 1)\n"
    "  -d FD                       write a newline to FD once listening\n"
    "  -v, --verbose               more logging (twice: libcoap's too)\n"
    "  -q, --quiet                 less logging\n"
    "  -h, --help                  this help\n"
    "  -V, --version               print the version\n";

static noreturn void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

static double num_arg(const char *opt, const char *s, double min, double max)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		die(EXIT_USAGE, "bad value for %s: %s", opt, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"control", required_argument, NULL, 'C'},
	    {"state", required_argument, NULL, 'S'},
	    {"awake-time", required_argument, NULL, 'a'},
	    {"queue-max", required_argument, NULL, 'Q'},
	    {"queue-ttl", required_argument, NULL, 'T'},
	    {"ack-timeout", required_argument, NULL, 't'},
	    {"max-retransmit", required_argument, NULL, 'r'},
	    {"request-timeout", required_argument, NULL, 'w'},
	    {"sync-interval", required_argument, NULL, 's'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct lwm2m_server_opts o = {
	    .listen = "127.0.0.1:5683",
	    .state_dir = "./var/lwm2m",
	    .ack_timeout = 2,
	    .max_retransmit = 4,
	    .req_timeout = 93,
	    .awake_time = 93,
	    .queue_max = 32,
	    .queue_ttl = 300,
	    .sync_interval = 1,
	    .coap_log_level = LOG_WARNING,
	};
	const char *control = NULL;
	int ready_fd = -1, verbose = 0, c;

	log_init(argv[0]);
	while ((c = getopt_long(argc, argv, "l:C:S:a:Q:T:t:r:w:s:d:vqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o.listen = optarg; break;
		case 'C': control = optarg; break;
		case 'S': o.state_dir = *optarg ? optarg : NULL; break;
		case 'a': o.awake_time = num_arg("-a", optarg, 0, 1e9); break;
		case 'Q': o.queue_max = (unsigned)num_arg("-Q", optarg, 0, 1e6); break;
		case 'T': o.queue_ttl = num_arg("-T", optarg, 0, 1e9); break;
		case 't': o.ack_timeout = num_arg("-t", optarg, 0.1, 600); break;
		case 'r': o.max_retransmit = (int)num_arg("-r", optarg, 0, 20); break;
		case 'w': o.req_timeout = num_arg("-w", optarg, 0.1, 1e6); break;
		case 's': o.sync_interval = num_arg("-s", optarg, 0, 3600); break;
		case 'd': ready_fd = (int)num_arg("-d", optarg, 0, 1 << 20); break;
		case 'v': log_more(); verbose++; break;
		case 'q': log_less(); break;
		case 'h': usage(0);
		case 'V': printf("lwm2m-listen %s (libcoap %s)\n", VERSION, coap_package_version()); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 0)
		usage(EXIT_USAGE);
	if (verbose >= 2)
		o.coap_log_level = verbose >= 3 ? LOG_DEBUG : LOG_INFO;

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct lwm2m_control *ctl = lwm2m_control_new(control, 1);
	if (!ctl)
		return EXIT_TEMPORARY;
	struct lwm2m_server_cb cb = {lwm2m_control_event, lwm2m_control_reply, ctl};
	int bad_usage;
	struct lwm2m_server *srv = lwm2m_server_new(&o, &cb, &bad_usage);
	if (!srv) {
		lwm2m_control_free(ctl);
		return bad_usage ? EXIT_USAGE : EXIT_TEMPORARY;
	}
	lwm2m_control_set_server(ctl, srv);
	log_info("listening on udp %s%s%s", o.listen, control ? ", control socket " : "", control ? control : "");
	if (ready_fd >= 0) {
		if (write(ready_fd, "\n", 1) != 1)
			log_warn("unable to signal readiness on fd %d: %s", ready_fd, strerror(errno));
		close(ready_fd);
	}

	struct pollfd *fds = NULL;
	size_t cap = 0;
	while (!quit) {
		if (hup) {
			hup = 0;
			log_info("SIGHUP: nothing to reload; registrations saved");
			lwm2m_server_sync(srv);
		}
		size_t n = 1 + lwm2m_control_npoll(ctl);
		if (n > cap) {
			struct pollfd *nf = realloc(fds, n * sizeof *nf);
			if (!nf)
				die(EXIT_TEMPORARY, "out of memory");
			fds = nf;
			cap = n;
		}
		fds[0].fd = lwm2m_server_fd(srv);
		fds[0].events = POLLIN;
		lwm2m_control_poll_setup(ctl, fds + 1);
		int wait = lwm2m_server_tick(srv);
		int r = poll(fds, n, wait);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_sys(EXIT_TEMPORARY, "unable to poll");
		}
		if (r > 0)
			lwm2m_control_poll_done(ctl, fds + 1);
		/* also after commands: it arms libcoap's retransmission timer for what they sent */
		lwm2m_server_io(srv);
	}
	log_info("stopping");
	lwm2m_server_sync(srv);
	lwm2m_server_free(srv);
	lwm2m_control_free(ctl);
	free(fds);
	stdout_flush_or_die();
	return 0;
}
