/* bench-feed: desired-state updates for shadow-put at a chosen rate, for the return path's
 * benchmark (shadow-put | shadow-watch | lwm2m-write | lwm2m-listen | device).
 *
 * Line k goes to thing PREFIX%06lu (k mod N) and sets its desired /3311/0/5850 (light on/off) to
 * the opposite of the value that thing got last time, so every line leaves a delta and so a
 * write. Each line's send time (wall clock, microseconds) is logged as "THING TIME_US"; the
 * device's write log (lwm2m-loadgen -W) pairs with it line by line per thing. Lines are paced
 * from the start (open loop): a late line is sent at once, not skipped. */
#include "log.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_us(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
	        "Usage: bench-feed -l LOG [options]\n"
	        "Desired-state updates for shadow-put on stdout, paced, each send time logged.\n"
	        "  -n, --things N      things PREFIX000000 ... (1000)\n"
	        "  -e, --prefix P      thing name prefix (bench-)\n"
	        "  -r, --rate R        lines per second (1000)\n"
	        "  -D, --duration S    seconds (5)\n"
	        "  -l, --log FILE      \"THING TIME_US\" per line sent\n"
	        "  -h, --help\n");
	exit(code);
}

int main(int argc, char **argv)
{
	log_init("bench-feed");
	static const struct option lo[] = {{"things", 1, 0, 'n'}, {"prefix", 1, 0, 'e'}, {"rate", 1, 0, 'r'},
	                                   {"duration", 1, 0, 'D'}, {"log", 1, 0, 'l'}, {"help", 0, 0, 'h'},
	                                   {0, 0, 0, 0}};
	unsigned long things = 1000;
	double rate = 1000, duration = 5;
	const char *prefix = "bench-", *logpath = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "n:e:r:D:l:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n': things = strtoul(optarg, NULL, 10); break;
		case 'e': prefix = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'D': duration = atof(optarg); break;
		case 'l': logpath = optarg; break;
		case 'h': usage(0);
		default: usage(EXIT_USAGE);
		}
	}
	if (optind != argc || !logpath || things == 0 || !(rate > 0) || !(duration > 0) || rate * duration > 1e8)
		usage(EXIT_USAGE);
	unsigned long total = (unsigned long)(rate * duration);
	uint64_t *sent = malloc(total * sizeof *sent);
	FILE *lf = fopen(logpath, "w");
	if (!sent || !lf)
		die_sys(EXIT_TEMPORARY, "%s", logpath);
	uint64_t t0 = clock_us(CLOCK_MONOTONIC);
	for (unsigned long k = 0; k < total; k++) {
		uint64_t due = t0 + (uint64_t)((double)k * 1e6 / rate);
		uint64_t now = clock_us(CLOCK_MONOTONIC);
		if (now < due) {
			if (fflush(stdout) != 0)
				die_sys(EXIT_TEMPORARY, "stdout");
			struct timespec ts = {(time_t)((due - now) / 1000000u), (long)((due - now) % 1000000u) * 1000};
			nanosleep(&ts, NULL);
		}
		sent[k] = clock_us(CLOCK_REALTIME);
		printf("{\"thing\":\"%s%06lu\",\"state\":{\"desired\":{\"3311\":{\"0\":{\"5850\":%s}}}}}\n", prefix,
		       k % things, (k / things) % 2 ? "false" : "true");
	}
	if (fflush(stdout) != 0)
		die_sys(EXIT_TEMPORARY, "stdout");
	for (unsigned long k = 0; k < total; k++)
		fprintf(lf, "%s%06lu %" PRIu64 "\n", prefix, k % things, sent[k]);
	if (fclose(lf) != 0)
		die_sys(EXIT_TEMPORARY, "%s", logpath);
	free(sent);
	return 0;
}
