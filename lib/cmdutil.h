/* What the tools' main() functions share: the options every tool has, the -d argument,
 * SIGTERM/SIGINT around ppoll, and the main loop of lwm2m-listen's control-socket clients. */
#ifndef CMDUTIL_H
#define CMDUTIL_H

#include <getopt.h>
#include <jv.h>
#include <signal.h>
#include <stdio.h>

/* Set once SIGTERM or SIGINT arrived (see cmd_stop_requested). */
extern volatile sig_atomic_t cmd_stop;

/* Block SIGTERM and SIGINT, handled by setting cmd_stop; *unblocked gets the mask to wait with
 * (ppoll(..., unblocked)), the only place they are then delivered. */
void cmd_stop_signals(sigset_t *unblocked);

/* cmd_stop, or a SIGTERM/SIGINT pending: ppoll(2) puts the blocked mask back when descriptors
 * are ready, so one that arrives while input keeps flowing would otherwise wait for ever. */
int cmd_stop_requested(void);

/* Wait (with cmd_stop_signals' mask) until fd is readable: 1, or 0 once SIGTERM or SIGINT asks
 * to stop; -1 on a poll error (errno). */
int cmd_wait_input(int fd, const sigset_t *unblocked);

/* The FD of -d FD (s6 readiness), or die with 100. */
int cmd_fd_arg(const char *s);

/* The options every tool has, for its getopt_long tables and the default: of its switch. */
#define CMD_COMMON_SHORTOPTS "vqhV"
#define CMD_COMMON_LONGOPTS                                                                      \
	{"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, \
	    {"version", no_argument, 0, 'V'}
/* 1 when c is one of them: -v and -q change the log level; -h prints usage to stdout and -V
 * prints version (a line), then exit 0. 0 for any other c. */
int cmd_common_option(int c, void (*usage)(FILE *), const char *version);

/* The main loop of a client of lwm2m-listen's control socket (lwm2m-observe, lwm2m-write): the
 * control socket and JSON-object lines on stdin, each handed to a callback. */
struct ctlclient;
struct linereader;
struct cmd_ctl_loop {
	struct ctlclient *ctl;
	struct linereader *in; /* stdin */
	int in_open;           /* stdin is waited for and read */
	int ready_fd;          /* -d: notified on the first connection (-1: none) */
	int rc;                /* 1 once a line was refused, 111 after an error */
	void *arg;
	void (*control_line)(void *arg, jv line); /* a line from lwm2m-listen (owned) */
	void (*connected)(void *arg);             /* (re)connected: subscribe again */
	void (*disconnected)(void *arg);
	/* A stdin line (owned); -1 for a line it refused (and logged), which sets rc to 1, as a
	 * malformed line does. */
	int (*object)(void *arg, jv obj, unsigned long lineno);
	void (*round_end)(void *arg); /* optional: before stdout is flushed and the next wait */
};
/* One wait: flush stdout, poll, then hand on what arrived (control lines first). 0 to go on
 * (in->eof says the input ended), -1 after a poll or read error (logged, rc = 111). */
int cmd_ctl_turn(struct cmd_ctl_loop *l);

#endif
