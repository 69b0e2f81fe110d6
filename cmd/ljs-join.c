/* ljs-join: a LoRaWAN Backend Interfaces 1.0/1.1 Join Server. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "js_admin.h"
#include "js_cryptod.h"
#include "js_devices.h"
#include "js_http.h"
#include "js_server.h"
#include "js_state.h"
#include "json_out.h"
#include "jsonl.h"
#include "kms.h"
#include "kms_local.h"
#include "linereader.h"
#include "log.h"

#define VERSION "0.1"

static volatile sig_atomic_t got_term, got_hup, got_usr1;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

static const char usage_text[] =
	"usage: ljs-join [-hIqVv] [-A cafile] [-a audience] [-c command] [-D devices] [-d fd]\n"
	"                [-e cert] [-i issuer] [-J jwks] [-k key] [-K keks] [-L seconds] [-l addr:port]\n"
	"                [-M kms-keyring] [-m addr:port] [-S dir] [-t none|server-only|mutual] [-T threads]\n"
	"  -D, --devices FILE      device registry, JSON lines (default ./devices.jsonl)\n"
	"  -S, --state DIR         state that survives restarts (default $LJS_STATE or ./var/ljs-join)\n"
	"  -K, --keks FILE         KEK keyring (YAML, label: hex) for KeyEnvelopes and wrapped root keys\n"
	"  -M, --kms-keyring FILE  kms-wrap local keyring for KMS-encrypted root keys (*_encrypted)\n"
	"  -c, --crypto COMMAND    run crypto in COMMAND (sh -c), JSON lines over pipes; unix:PATH connects\n"
	"  -l, --listen ADDR:PORT  serve HTTP(S) POST instead of reading messages on stdin\n"
	"  -t, --tls MODE          none, server-only or mutual (default none)\n"
	"  -e, --cert FILE         server certificate chain (PEM)\n"
	"  -k, --key FILE          server private key (PEM)\n"
	"  -A, --client-cas FILE   YAML map of sender (NetID or AS-ID) to CA file, for --tls mutual\n"
	"  -i, --jwt-issuer ISS    accept Packet Broker bearer tokens from this issuer (NetID 000000)\n"
	"  -a, --jwt-audience AUD  the audience those tokens must name\n"
	"  -J, --jwks FILE|URL     the issuer's keys (JWKS), a file or an https URL fetched and cached\n"
	"  -I, --identity-server   answer HomeNSReq only\n"
	"  -L, --lifetime SECONDS  Lifetime in JoinAns (default 0: none)\n"
	"  -T, --threads N         HTTP worker threads (default: one per CPU)\n"
	"  -m, --admin ADDR:PORT   serve GET /stats there (plain HTTP: bind it to loopback)\n"
	"  -d FD                   write a newline to FD once ready\n"
	"  -v, --verbose           more logging; -q, --quiet: less\n"
	"  -h, --help              this help; -V, --version: the version\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

static const struct option longopts[] = {
	{"devices", required_argument, 0, 'D'},    {"state", required_argument, 0, 'S'},
	{"keks", required_argument, 0, 'K'},       {"crypto", required_argument, 0, 'c'},
	{"kms-keyring", required_argument, 0, 'M'},
	{"listen", required_argument, 0, 'l'},     {"tls", required_argument, 0, 't'},
	{"cert", required_argument, 0, 'e'},       {"key", required_argument, 0, 'k'},
	{"client-cas", required_argument, 0, 'A'}, {"jwt-issuer", required_argument, 0, 'i'},
	{"jwt-audience", required_argument, 0, 'a'}, {"jwks", required_argument, 0, 'J'},
	{"identity-server", no_argument, 0, 'I'},  {"lifetime", required_argument, 0, 'L'},
	{"threads", required_argument, 0, 'T'},    {"admin", required_argument, 0, 'm'},    {"verbose", no_argument, 0, 'v'},
	{"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
	{"version", no_argument, 0, 'V'},          {0, 0, 0, 0},
};

static struct js_server srv;
static const char *devices_path = "devices.jsonl";
static struct js_crypto *crypto;
static bool local_crypto;
static struct kms kms;
static bool have_kms;

static int load_devices(bool initial)
{
	char err[512];
	struct js_devices *d = calloc(1, sizeof *d);
	if (js_devices_load_kms(d, devices_path, srv.keks, have_kms ? &kms : local_crypto ? NULL : JS_KMS_ELSEWHERE,
	                        err, sizeof err) != 0) {
		free(d);
		if (initial)
			die(EXIT_USAGE, "%s", err);
		log_error("reload: %s; keeping the registry loaded before", err);
		return -1;
	}
	pthread_rwlock_wrlock(&srv.lk);
	struct js_devices *old = srv.devices;
	srv.devices = d;
	if (local_crypto)
		js_crypto_set_lookup(crypto, js_devices_root_keys, d);
	pthread_rwlock_unlock(&srv.lk);
	if (old) {
		js_devices_free(old);
		free(old);
	}
	log_info("%zu devices from %s", d->n, devices_path);
	if (srv.state)
		js_state_expect(srv.state, d->n);
	return 0;
}

/* SIGUSR1: the counters as one JSON line on stderr. */
static void print_stats(void)
{
	if (!got_usr1)
		return;
	got_usr1 = 0;
	jv line = jv_dump_string(js_admin_stats(&srv), 0);
	fprintf(stderr, "%s\n", jv_string_value(line));
	jv_free(line);
}

/* Debugging by hand: one message per line on stdin, one answer per line on stdout. */
static int stdin_loop(int ready_fd)
{
	struct linereader r;
	int rejected = 0;
	lr_init(&r, STDIN_FILENO, LR_DEFAULT_MAX);
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "\n", 1);
		close(ready_fd);
	}
	while (!got_term) {
		if (got_hup) {
			got_hup = 0;
			load_devices(false);
			js_crypto_reload(crypto);
		}
		print_stats();
		char *line;
		size_t len;
		int k = lr_next(&r, &line, &len);
		if (k == LR_NEED_MORE) {
			if (r.eof)
				break;
			struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
			if (poll(&p, 1, 1000) <= 0)
				continue;
			if (lr_fill(&r) < 0 && errno != EAGAIN && errno != EINTR)
				die_sys(EXIT_TEMPORARY, "unable to read stdin");
			continue;
		}
		if (k == LR_TOOLONG) {
			log_warn("line %lu: too long, skipped", r.lineno);
			rejected = 1;
			if (jsonl_write(stdout, js_malformed_answer("line too long")) != 0)
				die_sys(EXIT_TEMPORARY, "unable to write to stdout");
			continue;
		}
		size_t skip = strspn(line, " \t\r");
		if (skip == len)
			continue;
		char stack[1024];
		struct jbuf ans = {.p = stack, .cap = sizeof stack, .borrowed = 1};
		bool ok;
		int rc = js_server_answer(&srv, line, len, NULL, &ans, &ok);
		if (rc < 0) {
			char desc[300];
			snprintf(desc, sizeof desc, "line %lu: %.*s", r.lineno, (int)ans.len, ans.p ? ans.p : "");
			log_warn("%s", desc);
			if (jsonl_write(stdout, js_malformed_answer(desc)) != 0)
				die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		} else if (ans.failed || jbuf_add(&ans, "\n", 1) != 0) {
			die(EXIT_TEMPORARY, "out of memory");
		} else if (jsonl_put_text(stdout, ans.p, ans.len) != 0 || fflush(stdout) == EOF) {
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		}
		if (!ans.borrowed)
			free(ans.p);
		if (rc < 0 || !ok)
			rejected = 1;
	}
	lr_free(&r);
	return rejected ? EXIT_NEGATIVE : 0;
}

int main(int argc, char **argv)
{
	struct js_http_opts h = {.tls = JS_TLS_NONE};
	const char *state_dir = getenv("LJS_STATE"), *keks_path = NULL, *crypto_cmd = NULL, *kms_path = NULL,
	           *admin_addr = NULL;
	int ready_fd = -1, c;
	char *end;
	if (!state_dir || !*state_dir)
		state_dir = "var/ljs-join";
	log_init(argv[0]);
	js_server_init(&srv);
	while ((c = getopt_long(argc, argv, "A:a:c:D:d:e:hIi:J:K:k:L:l:M:m:qS:T:t:Vv", longopts, NULL)) != -1) {
		switch (c) {
		case 'D': devices_path = optarg; break;
		case 'S': state_dir = optarg; break;
		case 'K': keks_path = optarg; break;
		case 'M': kms_path = optarg; break;
		case 'm': admin_addr = optarg; break;
		case 'c': crypto_cmd = optarg; break;
		case 'l': h.listen = optarg; break;
		case 't':
			if (strcmp(optarg, "none") == 0)
				h.tls = JS_TLS_NONE;
			else if (strcmp(optarg, "server-only") == 0)
				h.tls = JS_TLS_SERVER;
			else if (strcmp(optarg, "mutual") == 0)
				h.tls = JS_TLS_MUTUAL;
			else
				die(EXIT_USAGE, "--tls: none, server-only or mutual, not %s", optarg);
			break;
		case 'e': h.cert = optarg; break;
		case 'k': h.key = optarg; break;
		case 'A': h.client_cas = optarg; break;
		case 'i': h.jwt_issuer = optarg; break;
		case 'a': h.jwt_audience = optarg; break;
		case 'J': h.jwks = optarg; break;
		case 'I': srv.identity_server = true; break;
		case 'L':
			errno = 0;
			srv.lifetime = (uint32_t)strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg)
				die(EXIT_USAGE, "--lifetime: not a number of seconds: %s", optarg);
			break;
		case 'T':
			h.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || h.threads == 0)
				die(EXIT_USAGE, "--threads: not a positive number: %s", optarg);
			break;
		case 'd':
			ready_fd = (int)strtol(optarg, &end, 10);
			if (*end || ready_fd < 0)
				die(EXIT_USAGE, "-d: not a file descriptor: %s", optarg);
			break;
		case 'v': log_more(); break;
		case 'q': log_less(); break;
		case 'h': usage(0); break;
		case 'V': puts("ljs-join " VERSION); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (optind != argc)
		usage(EXIT_USAGE);
	if (h.tls != JS_TLS_NONE && (!h.listen || !h.cert || !h.key))
		die(EXIT_USAGE, "--tls %s needs --listen, --cert and --key", h.tls == JS_TLS_SERVER ? "server-only" : "mutual");
	if (h.tls == JS_TLS_MUTUAL && !h.client_cas)
		die(EXIT_USAGE, "--tls mutual needs --client-cas");
	if ((h.jwt_issuer != NULL) != (h.jwks != NULL))
		die(EXIT_USAGE, "--jwt-issuer and --jwks go together");

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char err[512];
	if (keks_path && js_keks_load(&srv, keks_path, err, sizeof err) != 0)
		die(EXIT_USAGE, "%s", err);
	if (kms_path) {
		if (kms_local_load(&kms.local, kms_path, err, sizeof err) != 0)
			die(EXIT_USAGE, "%s", err);
		have_kms = true;
	}
	if (crypto_cmd) {
		crypto = js_crypto_remote(crypto_cmd, err, sizeof err);
		if (!crypto)
			die(EXIT_TEMPORARY, "%s", err);
	} else {
		crypto = js_crypto_local(NULL, NULL);
		local_crypto = true;
	}
	srv.crypto = crypto;
	load_devices(true);
	int src = js_state_open(&srv.state, state_dir, err, sizeof err);
	if (src != 0)
		die(src == -2 ? EXIT_USAGE : EXIT_TEMPORARY, "%s", err);
	js_state_set_stats(srv.state, &srv.stats);
	js_state_expect(srv.state, srv.devices->n);
	struct js_admin *admin = NULL;
	if (admin_addr && !(admin = js_admin_start(&srv, admin_addr, err, sizeof err)))
		die(EXIT_USAGE, "%s", err);

	int rc;
	if (h.listen) {
		struct js_http *http = js_http_start(&srv, &h, err, sizeof err);
		if (!http)
			die(EXIT_USAGE, "%s", err);
		log_info("listening on %s (tls %s)", h.listen,
		         h.tls == JS_TLS_NONE ? "none" : h.tls == JS_TLS_SERVER ? "server-only" : "mutual");
		if (ready_fd >= 0) {
			(void)!write(ready_fd, "\n", 1);
			close(ready_fd);
		}
		while (!got_term) {
			sleep(1); /* a signal ends it early */
			js_http_tick(http);
			print_stats();
			if (got_hup) {
				got_hup = 0;
				log_info("SIGHUP: reloading");
				if (keks_path && js_keks_load(&srv, keks_path, err, sizeof err) != 0)
					log_error("reload: %s", err);
				load_devices(false);
				js_crypto_reload(crypto);
				if (js_http_reload(http, err, sizeof err) != 0)
					log_error("reload: %s", err);
			}
		}
		js_http_stop(http);
		rc = 0;
	} else {
		rc = stdin_loop(ready_fd);
	}
	js_admin_stop(admin);
	js_state_close(srv.state);
	js_crypto_free(crypto);
	if (srv.devices) {
		js_devices_free(srv.devices);
		free(srv.devices);
	}
	js_keks_free(&srv);
	if (have_kms)
		kms_free(&kms);
	stdout_flush_or_die();
	return rc;
}
