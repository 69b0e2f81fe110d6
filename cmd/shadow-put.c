#define _GNU_SOURCE
/* shadow-put: apply shadow update lines with AWS IoT Device Shadow semantics; one result line
 * per input line, printed once the update is durable. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmdutil.h"
#include "json_out.h"
#include "jsonl.h"
#include "linereader.h"
#include "log.h"
#include "shadow_backend.h"
#include "shadow_aws.h"
#include "shadow_local.h"

#ifndef VERSION
#define VERSION "0.1"
#endif

#define LINE_MAX_BYTES 65536

static void usage(FILE *f)
{
	fprintf(f, "usage: shadow-put [-hqvV] [-b lines] [-d fd] [-s dir]\n"
	           "       shadow-put -a [-hqTvV] [-b lines] [-d fd] [-e endpoint] [-R region] [-c cert -k key]\n"
	           "                  [-A cafile] [-r retries] [-B seconds] [-I url]\n"
	           "  -s, --store DIR    local shadow store (default $SHADOW_STORE, else ./var/shadows)\n"
	           "  -b, --batch LINES  most update lines committed together (default 4096)\n"
	           "  -d, --ready FD     write a newline to FD once the store is open\n"
	           );
	shadow_aws_usage(f, 21, 0);
	fprintf(f, "  -r, --retries N    AWS: retries on 429, 5xx and lost connections (default: no limit)\n"
	           "  -T, --create-thing AWS: create each thing first (IoT CreateThing)\n"
	           "  -I, --iot-endpoint URL  AWS: IoT control endpoint for --create-thing\n"
	           "                     (default https://iot.REGION.amazonaws.com)\n"
	           "  -v, --verbose      log more\n"
	           "  -q, --quiet        log less\n"
	           "  -h, --help         print this help\n"
	           "  -V, --version      print the version\n");
}

/* Wait until stdin is readable (0) or a signal asks us to stop (-1). */
static int wait_input(const sigset_t *unblocked, int timeout_zero)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	struct timespec zero = {0, 0};
	for (;;) {
		int n = ppoll(&p, 1, timeout_zero ? &zero : NULL, unblocked);
		if (n >= 0 && cmd_stop_requested())
			return -1;
		if (n > 0)
			return 0;
		if (n == 0)
			return 1;
		if (errno != EINTR)
			die_sys(EXIT_TEMPORARY, "unable to poll stdin");
		if (cmd_stop)
			return -1;
	}
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Write a committed batch's result lines. A reader that stalls leaves us waiting in ppoll
 * (where SIGTERM is heard), not in write(2): to a pipe we write at most PIPE_BUF bytes once
 * poll says it has room, which never blocks. Meanwhile no input is read, so the writer
 * upstream is held back and memory stays at one batch. */
static void write_results(const char *p, size_t len, const sigset_t *unblocked, struct shadow_backend *be)
{
	static int pipe_out = -1;
	if (pipe_out < 0) {
		struct stat st;
		pipe_out = fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
	}
	int stalled = 0;
	struct timespec since;
	size_t done = 0;
	while (done < len) {
		struct pollfd pf = {.fd = STDOUT_FILENO, .events = POLLOUT};
		struct timespec second = {1, 0};
		int n = ppoll(&pf, 1, stalled ? NULL : &second, unblocked);
		if (n < 0 && errno != EINTR)
			die_sys(EXIT_TEMPORARY, "unable to poll stdout");
		if (cmd_stop_requested() && n <= 0) {
			size_t lines = 0;
			if (be->ops->flush)
				be->ops->flush(be, 1);
			for (const char *q = p + done; (q = memchr(q, '\n', (size_t)(p + len - q))); q++)
				lines++;
			die(EXIT_TEMPORARY, "stopped with %zu result line%s unwritten (stdout is not read): their updates are committed",
			    lines, lines == 1 ? "" : "s");
		}
		if (n == 0 && !stalled) {
			stalled = 1;
			clock_gettime(CLOCK_MONOTONIC, &since);
			log_warn("stdout: the reader is not reading; no input is read until it does");
			/* time to spare: the documents held back go to the store meanwhile */
			if (be->ops->flush)
				be->ops->flush(be, 1);
		}
		if (n <= 0)
			continue;
		size_t chunk = len - done;
		if (pipe_out && chunk > PIPE_BUF)
			chunk = PIPE_BUF;
		ssize_t w = write(STDOUT_FILENO, p + done, chunk);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w < 0)
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
		done += (size_t)w;
	}
	if (stalled)
		log_info("stdout: the reader caught up after %.1f s", elapsed(&since));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, 0, 's'}, {"batch", required_argument, 0, 'b'},
		{"ready", required_argument, 0, 'd'},
		{"verbose", no_argument, 0, 'v'},     {"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},        {"version", no_argument, 0, 'V'},
		SHADOW_AWS_LONGOPTS, {"create-thing", no_argument, 0, 'T'},
		{"iot-endpoint", required_argument, 0, 'I'}, {"retries", required_argument, 0, 'r'},
		{0, 0, 0, 0},
	};
	const char *store = NULL;
	long max_batch = 4096;
	int c, batch_given = 0, ready_fd = -1;
	struct shadow_aws_opts aws;
	log_init(argv[0]);
	shadow_aws_opts_init(&aws);
	aws.stop = &cmd_stop;
	while ((c = getopt_long(argc, argv, "s:b:d:vqhVTI:r:" SHADOW_AWS_SHORTOPTS, opts, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 'b': {
			char *end;
			max_batch = strtol(optarg, &end, 10);
			batch_given = 1;
			if (*end || max_batch < 1 || max_batch > 65536)
				die(EXIT_USAGE, "bad batch size: %s (1 to 65536)", optarg);
			break;
		}
		case 'd':
			ready_fd = cmd_fd_arg(optarg);
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
			printf("shadow-put (lwm2m-gw) %s\n", VERSION);
			return 0;
		case 'T':
			aws.create_thing = 1;
			break;
		case 'I':
			aws.control_endpoint = optarg;
			break;
		case 'r': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < -1 || n > 1000000)
				die(EXIT_USAGE, "bad retry count: %s (-1 for no limit)", optarg);
			aws.retries = (int)n;
			break;
		}
		default:
			if (shadow_aws_option(&aws, c, optarg) == 0)
				break;
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	/* AWS answers one update at a time: print each result as soon as it is known */
	if (aws.enabled && !batch_given)
		max_batch = 1;
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	sigset_t unblocked;
	cmd_stop_signals(&unblocked);
	/* a reader that went away is EPIPE: said, and exit 111, not a silent death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);

	/* the local store keeps its documents' files open (two per thing) up to the soft limit */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug("unable to raise the open file limit: %s", strerror(errno));
	}
	const char *dir = shadow_store_dir(store);
	struct shadow_backend *be;
	if (aws.enabled) {
		char err[512];
		if (!(be = shadow_aws_open(&aws, err, sizeof err)))
			die(EXIT_USAGE, "AWS IoT: %s", err);
	} else if (!(be = shadow_local_open(dir))) {
		die_sys(EXIT_TEMPORARY, "unable to open the shadow store %s", dir);
	}
	ready_notify(&ready_fd);

	struct linereader lr;
	lr_init(&lr, STDIN_FILENO, LINE_MAX_BYTES);
	struct shadow_req *batch = calloc((size_t)max_batch, sizeof *batch);
	if (!batch)
		die_sys(EXIT_TEMPORARY, "unable to allocate");
	int rejected = 0, failed = 0, done = 0;
	struct jbuf out = {0}; /* a batch's result lines */
	while (!done) {
		size_t n = 0;
		/* group commit: take what is already waiting on stdin (never more than the bound),
		 * so a slow disk slows the writer instead of growing our memory */
		while (n < (size_t)max_batch) {
			char *line;
			size_t len;
			int k = lr_next(&lr, &line, &len);
			if (k == LR_LINE) {
				if (aws.enabled)
					shadow_req_init(&batch[n++], line, len, lr.lineno);
				else
					shadow_req_init_local(&batch[n++], line, len, lr.lineno);
				continue;
			}
			if (k == LR_TOOLONG) {
				log_warn("line %lu: longer than %d bytes", lr.lineno, LINE_MAX_BYTES);
				batch[n].req = jv_null();
				batch[n].line = lr.lineno;
				batch[n].text = NULL;
				batch[n].fast = NULL;
				batch[n].result = jv_invalid();
				shadow_req_reject(&batch[n++], 413, "The payload exceeds the maximum size allowed",
				                  time(NULL));
				continue;
			}
			if (lr.eof) {
				done = 1;
				break;
			}
			/* nothing waiting: write the documents a commit held back, a few ms at a time,
			 * while no input comes */
			if (n == 0 && be->ops->flush)
				while (be->ops->flush(be, 0) > 0 && wait_input(&unblocked, 1) > 0)
					;
			int w = wait_input(&unblocked, n > 0);
			if (w < 0) {
				done = 1;
				break;
			}
			if (w > 0)
				break; /* nothing more right now: commit what we have */
			if (lr_fill(&lr) < 0 && errno != EAGAIN)
				die_sys(EXIT_TEMPORARY, "unable to read stdin");
		}
		if (n == 0)
			break;
		struct timespec t0, t1, c0, c1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
		if (be->ops->put(be, batch, n) < 0)
			failed = 1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
		log_debug("committed %zu lines in %.1f ms (%.1f ms of CPU)", n,
		          (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		          (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6);
		out.len = 0;
		for (size_t i = 0; i < n; i++) {
			if (!shadow_req_accepted(&batch[i]))
				rejected = 1;
			shadow_req_append(&out, &batch[i]);
			shadow_req_free(&batch[i]);
		}
		if (out.failed)
			die(EXIT_TEMPORARY, "unable to write the results: out of memory");
		/* printed once the batch is committed, in input order */
		write_results(out.p, out.len, &unblocked, be);
		if (aws.enabled && shadow_aws_auth_failed(be))
			die(EXIT_USAGE, "AWS IoT refused the credentials; see the rejected line above");
		if (cmd_stop_requested())
			done = 1;
	}
	free(batch);
	free(out.p);
	lr_free(&lr);
	be->ops->close(be);
	shadow_aws_opts_free(&aws);
	stdout_flush_or_die();
	return failed ? EXIT_TEMPORARY : rejected ? EXIT_NEGATIVE : 0;
}
