/* Logging to stderr in one style, and s6-style exit codes. */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

/* Exit codes shared by every tool (see DESIGN.md, s6 conventions). */
enum {
	EXIT_NEGATIVE = 1,    /* some input was rejected; the tool carried on */
	EXIT_USAGE = 100,     /* usage or permanent configuration error */
	EXIT_TEMPORARY = 111, /* I/O, network or other system error */
};

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

extern const char *log_prog;
extern int log_level;

void log_init(const char *prog);
void log_more(void); /* -v */
void log_less(void); /* -q */
void log_vmsg(int level, const char *fmt, va_list ap);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* "prog: fatal: <msg>" and exit(code). die_sys appends ": strerror(errno)". */
noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
noreturn void die_sys(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s6 readiness: write a newline to *fd (if >= 0), close it and set it to -1. */
void ready_notify(int *fd);

/* Flush stdout and die with 111 if anything written to it was lost. */
void stdout_flush_or_die(void);
/* Fully buffer stdout (after log_init): for a tool that flushes it itself before it waits for
 * input and once per committed batch, instead of one write(2) per line. */
void stdout_full_buffer(void);

#endif
