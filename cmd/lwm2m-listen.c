/* lwm2m-listen: the LwM2M server endpoint. Registrations in, events out, commands to devices. */
#include "cmdutil.h"
#include "log.h"
#include "lwm2m_control.h"
#include "lwm2m_security.h"
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
    "                    [-t SECONDS] [-r N] [-w SECONDS] [-s SECONDS] [-D ADDR[:PORT]] [-k FILE]\n"
    "                    [-c FILE] [-j FILE] [-A FILE] [-H N] [-I N] [-P N] [-d FD]\n"
    "The LwM2M server endpoint: registrations in, events out, commands to devices.\n"
    "  -l, --listen ADDR:PORT      UDP address to listen on (default 127.0.0.1:5683; \"\" for none)\n"
    "  -D, --dtls ADDR[:PORT]      also serve coaps (DTLS) there (port 5684 if not given)\n"
    "  -k, --credentials FILE      DTLS credentials per endpoint (JSON lines or YAML); SIGHUP rereads\n"
    "  -c, --cert FILE             our X.509 certificate (PEM, with its chain) for -j's key\n"
    "  -j, --key FILE              our private key (PEM); without -c we present its raw public key\n"
    "  -A, --ca FILE               trust anchors (PEM): device certificates must chain to one\n"
    "  -H, --max-handshakes N      DTLS handshakes in progress at once (default 100)\n"
    "  -I, --max-idle-sessions N   DTLS sessions of unregistered peers kept (default 1000)\n"
    "  -P, --max-per-address N     registrations from one IP address (default 10000; 0: no limit)\n"
    "  -C, --control PATH          control socket (Unix stream) for commands\n"
    "  -S, --state DIR             where registrations are kept (default ./var/lwm2m; \"\" for none)\n"
    "  -a, --awake-time SECONDS    queue mode: awake this long after a message (default 93)\n"
    "  -Q, --queue-max N           requests held per sleeping device (default 32)\n"
    "  -T, --queue-ttl SECONDS     how long a request may be held (default 300)\n"
    "  -t, --ack-timeout SECONDS   CoAP ACK_TIMEOUT (default 2)\n"
    "  -r, --max-retransmit N      CoAP MAX_RETRANSMIT (default 4)\n"
    "  -w, --request-timeout SECONDS  answer timeout for a request (default 93)\n"
    "  -s, --sync-interval SECONDS at most this long before a change is synced to disk (default 1)\n"
    "  -d FD                       write a newline to FD once listening\n"
    "  -v, --verbose               more logging (twice: libcoap's too)\n"
    "  -q, --quiet                 less logging\n"
    "  -h, --help                  this help\n"
    "  -V, --version               print the version\n";

static void help(FILE *f)
{
	fputs(usage_text, f);
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

/* "ADDR" or "[v6]" gets CoAPS's port 5684 */
static void dtls_arg(const char *a, char *buf, size_t size)
{
	const char *rb = strrchr(a, ']'), *colon = strrchr(a, ':');
	int has_port = rb ? rb[1] == ':' : colon != NULL;
	if (snprintf(buf, size, has_port ? "%s" : "%s:5684", a) >= (int)size)
		die(EXIT_USAGE, "DTLS address too long: %s", a);
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
	    {"dtls", required_argument, NULL, 'D'},
	    {"credentials", required_argument, NULL, 'k'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'j'},
	    {"ca", required_argument, NULL, 'A'},
	    {"max-handshakes", required_argument, NULL, 'H'},
	    {"max-idle-sessions", required_argument, NULL, 'I'},
	    {"max-per-address", required_argument, NULL, 'P'},
	    CMD_COMMON_LONGOPTS,
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
	    .max_handshakes = 100,
	    .max_idle_sessions = 1000,
	    .max_per_address = 10000,
	};
	const char *control = NULL, *creds = NULL;
	char dtls[300];
	int ready_fd = -1, verbose = 0, c;
	char version[100];
	snprintf(version, sizeof version, "lwm2m-listen %s (libcoap %s)", VERSION, coap_package_version());

	log_init(argv[0]);
	while ((c = getopt_long(argc, argv, "l:C:S:a:Q:T:t:r:w:s:D:k:c:j:A:H:I:P:d:" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
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
		case 'D': dtls_arg(optarg, dtls, sizeof dtls); o.dtls_listen = dtls; break;
		case 'k': creds = optarg; break;
		case 'c': o.dtls_cert = optarg; break;
		case 'j': o.dtls_key = optarg; break;
		case 'A': o.dtls_ca = optarg; break;
		case 'H': o.max_handshakes = (unsigned)num_arg("-H", optarg, 1, 1e6); break;
		case 'I': o.max_idle_sessions = (unsigned)num_arg("-I", optarg, 1, 1e7); break;
		case 'P': o.max_per_address = (unsigned)num_arg("-P", optarg, 0, 1e9); break;
		case 'd': ready_fd = cmd_fd_arg(optarg); break;
		default:
			verbose += c == 'v';
			if (cmd_common_option(c, help, version))
				break;
			help(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 0) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (!*o.listen && !o.dtls_listen)
		die(EXIT_USAGE, "nothing to listen on: give -l or -D");
	if (creds && !o.dtls_listen)
		die(EXIT_USAGE, "-k needs -D");
	if ((o.dtls_cert || o.dtls_key || o.dtls_ca) && !o.dtls_listen)
		die(EXIT_USAGE, "-c, -j and -A need -D");
	if ((o.dtls_cert || o.dtls_ca) && !o.dtls_key)
		die(EXIT_USAGE, "-c and -A need our private key (-j)");
	char err[512];
	if (creds && !(o.security = lwm2m_security_load(creds, err, sizeof err)))
		die(EXIT_USAGE, "%s", err);
	if (o.security && lwm2m_security_has_rpk(o.security) && !o.dtls_key)
		die(EXIT_USAGE, "%s lists raw public keys: give our private key (-j)", creds);
	if (o.dtls_listen && !creds && !o.dtls_ca)
		log_warn("-D without -k or -A: every DTLS handshake will be refused");
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
	struct lwm2m_server_cb cb = {lwm2m_control_event, lwm2m_control_reply, ctl, lwm2m_control_flush,
	                             lwm2m_control_out_pos};
	int bad_usage;
	struct lwm2m_server *srv = lwm2m_server_new(&o, &cb, &bad_usage);
	if (!srv) {
		lwm2m_control_free(ctl);
		lwm2m_security_free(o.security);
		return bad_usage ? EXIT_USAGE : EXIT_TEMPORARY;
	}
	lwm2m_control_set_server(ctl, srv);
	log_info("listening on udp %s%s%s%s%s", *o.listen ? o.listen : "(none)", o.dtls_listen ? ", dtls " : "",
	         o.dtls_listen ? o.dtls_listen : "", control ? ", control socket " : "", control ? control : "");
	if (creds)
		log_info("%zu DTLS credentials from %s", o.security->n, creds);
	ready_notify(&ready_fd);

	struct pollfd *fds = NULL;
	size_t cap = 0;
	while (!quit) {
		if (hup) {
			hup = 0;
			if (lwm2m_server_dtls_reload(srv, err, sizeof err) < 0)
				log_error("SIGHUP: %s; keeping our certificate, key and trust anchors", err);
			if (creds) {
				struct lwm2m_security *sec = lwm2m_security_load(creds, err, sizeof err);
				if (sec) {
					log_info("SIGHUP: %zu DTLS credentials from %s", sec->n, creds);
					lwm2m_security_free(lwm2m_server_set_security(srv, sec));
				} else {
					log_error("SIGHUP: %s; keeping the credentials in use", err);
				}
			} else {
				log_info("SIGHUP: nothing to reload; registrations saved");
			}
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
		int backlogged = lwm2m_control_backlogged(ctl);
		fds[0].events = backlogged ? 0 : POLLIN;
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
		lwm2m_server_io(srv, !backlogged);
	}
	log_info("stopping");
	lwm2m_server_sync(srv);
	struct lwm2m_security *sec = lwm2m_server_set_security(srv, NULL);
	lwm2m_server_free(srv);
	lwm2m_security_free(sec);
	lwm2m_control_free(ctl);
	free(fds);
	stdout_flush_or_die();
	return 0;
}
