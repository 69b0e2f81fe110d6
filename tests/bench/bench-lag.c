/* bench-lag: read JSON lines (shadow-put's results, or any stage's output) and measure how
 * fast they come and how late they are. A value under KEY that looks like a microsecond Unix
 * time (lwm2m-loadgen stamps every resource value with its send time) gives the lag from the
 * device's send to this line's arrival. Prints one JSON line of figures at the end of input,
 * after COUNT stamped lines, or at the time bound. A plain byte scan, no JSON parse, so the
 * reader costs little next to the stages it measures. */
#include "linereader.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HIST_BUCKETS 320

static uint64_t hist[HIST_BUCKETS], hist_steady[HIST_BUCKETS]; /* every value; those read past -W */
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double hist_q(const uint64_t *h, double q, uint64_t total)
{
	uint64_t acc = 0;
	if (total == 0)
		return 0;
	for (int b = 0; b < HIST_BUCKETS; b++) {
		acc += h[b];
		if ((double)acc >= q * (double)total)
			return (exp2((b + 1) / 8.0) - 1.0) / 1000.0;
	}
	return 0;
}

static noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
	        "Usage: bench-lag [-k KEY] [-S WARMUP] [-W SECONDS] [-n COUNT] [-T SECONDS] [-o FILE]\n"
	        "Measure the rate of JSON lines on stdin and the lag of the microsecond send times\n"
	        "found under \"KEY\": (default 5700); print one JSON line of figures.\n"
	        "  -k KEY      the key whose numeric value is a send time in microseconds\n"
	        "  -S WARMUP   leave the first WARMUP stamped lines out (the clock starts after them)\n"
	        "  -W SECONDS  also give the lag of the values read SECONDS (1) after the first one\n"
	        "              (steady state: past the start, where every thing is new to the store)\n"
	        "  -n COUNT    stop after COUNT stamped values past the warm-up (0: at end of input)\n"
	        "  -T SECONDS  stop after SECONDS (600)\n"
	        "  -o FILE     write the figures to FILE instead of stdout\n"
	        "  -t FILE     write a timeline to FILE: one JSON line per 100 ms since the first line\n"
	        "              read (warm-up included), with its lines and their lag (mean, max)\n");
	exit(code);
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	const char *key = "5700", *out = NULL, *tl_out = NULL;
	unsigned long long want = 0, warmup = 0;
	double bound = 600, steady_after = 1;
	int c;
	while ((c = getopt(argc, argv, "k:S:W:n:T:o:t:hV")) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'S': warmup = strtoull(optarg, NULL, 10); break;
		case 'W': steady_after = atof(optarg); break;
		case 'n': want = strtoull(optarg, NULL, 10); break;
		case 'T': bound = atof(optarg); break;
		case 'o': out = optarg; break;
		case 't': tl_out = optarg; break;
		case 'h': usage(0);
		case 'V': puts("bench-lag 0.1"); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	/* SIGTERM ends the measurement early, with its figures */
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	char pat[64];
	int pl = snprintf(pat, sizeof pat, "\"%s\":", key);
	if (pl <= 0 || (size_t)pl >= sizeof pat)
		die(EXIT_USAGE, "key too long");

	struct linereader lr;
	lr_init(&lr, STDIN_FILENO, LR_DEFAULT_MAX);
	uint64_t t0 = real_us(), first = 0, last = 0, lines = 0, stamped = 0, rejected = 0;
	uint64_t end = t0 + (uint64_t)(bound * 1e6);
	uint64_t steady = 0;
	/* the timeline: 100 ms slots from the first line read */
	size_t tl_n = (size_t)(bound * 10) + 2;
	struct slot {
		uint64_t lines, stamped;
		double sum_ms, max_ms;
	} *tl = tl_out ? calloc(tl_n, sizeof *tl) : NULL;
	uint64_t tl_first = 0;
	if (tl_out && !tl)
		die_sys(EXIT_TEMPORARY, "unable to allocate");
	double sum_ms = 0, max_ms = 0, steady_max_ms = 0;
	int done = 0;
	while (!done && !stop_flag) {
		char *line;
		size_t len;
		int r = lr_next(&lr, &line, &len);
		if (r == LR_NEED_MORE) {
			if (lr.eof)
				break;
			uint64_t now = real_us();
			if (now >= end)
				break;
			struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
			int ms = (int)((end - now) / 1000) + 1;
			if (poll(&p, 1, ms) < 0 && errno != EINTR)
				die_sys(EXIT_TEMPORARY, "poll");
			if (lr_fill(&lr) < 0 && errno != EAGAIN && errno != EINTR)
				die_sys(EXIT_TEMPORARY, "unable to read stdin");
			continue;
		}
		if (r != LR_LINE)
			continue;
		uint64_t now = real_us();
		struct slot *sl = NULL;
		if (tl) {
			if (!tl_first)
				tl_first = now;
			size_t k = (size_t)((now - tl_first) / 100000);
			sl = &tl[k < tl_n ? k : tl_n - 1];
			sl->lines++;
			const char *p = strstr(line, pat);
			if (p && p[pl] >= '0' && p[pl] <= '9') {
				double sent = strtod(p + pl, NULL);
				double ms = sent > 1e15 && sent <= (double)now ? ((double)now - sent) / 1000.0 : 0;
				sl->stamped++;
				sl->sum_ms += ms;
				if (ms > sl->max_ms)
					sl->max_ms = ms;
			}
		}
		if (warmup) {
			const char *p = strstr(line, pat);
			if (p && p[pl] >= '0' && p[pl] <= '9')
				warmup--;
			continue;
		}
		lines++;
		if (!first)
			first = now;
		last = now;
		if (strstr(line, "\"rejected\""))
			rejected++;
		/* the first occurrence whose value is a number (metadata has an object there) */
		for (const char *p = strstr(line, pat); p; p = strstr(p + 1, pat)) {
			const char *v = p + pl;
			if (*v < '0' || *v > '9')
				continue;
			double sent = strtod(v, NULL);
			if (sent < 1e15 || sent > (double)now + 60e6)
				break;
			double lag_us = (double)now - sent;
			if (lag_us < 0)
				lag_us = 0;
			unsigned b = (unsigned)(8.0 * log2(lag_us + 1.0));
			b = b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
			hist[b]++;
			if ((double)(now - first) >= steady_after * 1e6) {
				hist_steady[b]++;
				steady++;
				if (lag_us / 1000.0 > steady_max_ms)
					steady_max_ms = lag_us / 1000.0;
			}
			sum_ms += lag_us / 1000.0;
			if (lag_us / 1000.0 > max_ms)
				max_ms = lag_us / 1000.0;
			stamped++;
			break;
		}
		if (want && stamped >= want)
			done = 1;
		if (now >= end)
			break;
	}
	double span = last > first ? (double)(last - first) / 1e6 : 0;
	FILE *f = stdout;
	if (out && !(f = fopen(out, "w")))
		die_sys(EXIT_TEMPORARY, "unable to open %s", out);
	fprintf(f,
	        "{\"tool\":\"bench-lag\",\"lines\":%" PRIu64 ",\"stamped\":%" PRIu64 ",\"rejected\":%" PRIu64
	        ",\"seconds\":%.3f,\"lines_per_s\":%.0f,\"lag_p50_ms\":%.2f,\"lag_p99_ms\":%.2f,"
	        "\"lag_mean_ms\":%.2f,\"lag_max_ms\":%.2f,\"steady_after_s\":%.3f,\"steady_stamped\":%" PRIu64
	        ",\"steady_lag_p50_ms\":%.2f,\"steady_lag_p99_ms\":%.2f,\"steady_lag_max_ms\":%.2f}\n",
	        lines, stamped, rejected, span, span > 0 ? (double)(lines > 1 ? lines - 1 : 0) / span : 0,
	        hist_q(hist, 0.5, stamped), hist_q(hist, 0.99, stamped), stamped ? sum_ms / (double)stamped : 0, max_ms,
	        steady_after, steady, hist_q(hist_steady, 0.5, steady), hist_q(hist_steady, 0.99, steady), steady_max_ms);
	if (fflush(f) == EOF || ferror(f))
		die_sys(EXIT_TEMPORARY, "unable to write figures");
	if (f != stdout)
		fclose(f);
	if (tl) {
		FILE *t = fopen(tl_out, "w");
		if (!t)
			die_sys(EXIT_TEMPORARY, "unable to open %s", tl_out);
		for (size_t k = 0; k < tl_n; k++)
			if (tl[k].lines)
				fprintf(t, "{\"t\":%.1f,\"lines\":%" PRIu64 ",\"lag_mean_ms\":%.2f,\"lag_max_ms\":%.2f}\n",
				        (double)k / 10, tl[k].lines, tl[k].stamped ? tl[k].sum_ms / (double)tl[k].stamped : 0,
				        tl[k].max_ms);
		if (fclose(t) == EOF)
			die_sys(EXIT_TEMPORARY, "unable to write %s", tl_out);
		free(tl);
	}
	lr_free(&lr);
	return 0;
}
