#include "log.h"

#include "jsonl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *log_prog = "lwm2m-gw";
int log_level = LOG_LVL_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_init(const char *prog)
{
	const char *slash = strrchr(prog, '/');
	log_prog = slash ? slash + 1 : prog;
	/* stderr is unbuffered already; line-buffer stdout even on a pipe so each record leaves whole */
	setvbuf(stdout, NULL, _IOLBF, 0);
}

void log_more(void)
{
	if (log_level < LOG_LVL_DEBUG)
		log_level++;
}

void log_less(void)
{
	if (log_level > LOG_LVL_ERROR)
		log_level--;
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
	if (level > log_level)
		return;
	char buf[2048];
	int n = snprintf(buf, sizeof buf, "%s: %s: ", log_prog, level_names[level]);
	if (n < 0)
		return;
	vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	/* one write per line so lines of concurrent tools on one log do not interleave */
	size_t len = strlen(buf);
	if (len + 1 < sizeof buf) {
		buf[len++] = '\n';
		buf[len] = 0;
	} else {
		buf[sizeof buf - 2] = '\n';
	}
	fputs(buf, stderr);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static noreturn void vdie(int code, int with_errno, const char *fmt, va_list ap)
{
	int e = errno;
	char buf[1536];
	vsnprintf(buf, sizeof buf, fmt, ap);
	if (with_errno)
		fprintf(stderr, "%s: fatal: %s: %s\n", log_prog, buf, strerror(e));
	else
		fprintf(stderr, "%s: fatal: %s\n", log_prog, buf);
	fflush(stdout);
	exit(code);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdie(code, 0, fmt, ap);
}

void die_sys(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdie(code, 1, fmt, ap);
}

void stdout_flush_or_die(void)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		die_sys(EXIT_TEMPORARY, "unable to write to stdout");
}

void stdout_full_buffer(void)
{
	setvbuf(stdout, NULL, _IOFBF, JSONL_BUFSIZE);
}

void ready_notify(int *fd)
{
	if (*fd < 0)
		return;
	if (write(*fd, "\n", 1) != 1)
		log_warn("unable to signal readiness on fd %d: %s", *fd, strerror(errno));
	close(*fd);
	*fd = -1;
}
