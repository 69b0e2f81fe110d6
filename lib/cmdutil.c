/* See cmdutil.h. */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdutil.h"
#include "jsonl.h"
#include "linereader.h"
#include "log.h"
#include "lwm2m_ctlclient.h"

volatile sig_atomic_t cmd_stop;

static void on_stop(int sig)
{
	(void)sig;
	cmd_stop = 1;
}

void cmd_stop_signals(sigset_t *unblocked)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, unblocked);
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

int cmd_stop_requested(void)
{
	sigset_t p;
	if (!cmd_stop && sigpending(&p) == 0 && (sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1))
		cmd_stop = 1;
	return cmd_stop;
}

int cmd_wait_input(int fd, const sigset_t *unblocked)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (!cmd_stop_requested()) {
		int n = ppoll(&p, 1, NULL, unblocked);
		if (n > 0)
			return !cmd_stop_requested();
		if (n < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

int cmd_fd_arg(const char *s)
{
	char *end;
	long fd = strtol(s, &end, 10);
	if (!*s || *end || fd < 0 || fd > 1 << 20)
		die(EXIT_USAGE, "-d: not a file descriptor: %s", s);
	return (int)fd;
}

int cmd_common_option(int c, void (*usage)(FILE *), const char *version)
{
	switch (c) {
	case 'v':
		log_more();
		return 1;
	case 'q':
		log_less();
		return 1;
	case 'h':
		usage(stdout);
		exit(0);
	case 'V':
		puts(version);
		exit(0);
	default:
		return 0;
	}
}

int cmd_ctl_turn(struct cmd_ctl_loop *l)
{
	struct pollfd fds[2];
	int timeout = ctl_poll_setup(l->ctl, &fds[0]);
	fds[1].fd = l->in_open ? STDIN_FILENO : -1;
	fds[1].events = POLLIN;
	fds[1].revents = 0;
	if (l->round_end)
		l->round_end(l->arg);
	if (fflush(stdout) == EOF)
		die_sys(EXIT_TEMPORARY, "unable to write to stdout");
	if (poll(fds, 2, timeout) < 0) {
		if (errno == EINTR)
			return 0;
		log_error("unable to poll: %s", strerror(errno));
		l->rc = EXIT_TEMPORARY;
		return -1;
	}
	int k = ctl_poll_done(l->ctl, &fds[0]);
	/* and what else lwm2m-listen wrote meanwhile (bounded): one round, one write of the results */
	jv line;
	for (int more = 0; more < 64; more++) {
		while (jv_is_valid(line = ctl_next(l->ctl)))
			l->control_line(l->arg, line);
		if (!ctl_read_more(l->ctl))
			break;
	}
	if (k == 1) {
		l->connected(l->arg);
		ready_notify(&l->ready_fd);
	} else if (k < 0) {
		l->disconnected(l->arg);
	}
	if (!l->in_open || !(fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	ssize_t r = lr_fill(l->in);
	if (r < 0 && errno != EAGAIN && errno != EINTR) {
		log_error("unable to read stdin: %s", strerror(errno));
		l->rc = EXIT_TEMPORARY;
		return -1;
	}
	jv obj;
	int t;
	while ((t = jsonl_next_object(l->in, &obj)) != JSONL_NONE)
		if (t == JSONL_BAD || l->object(l->arg, obj, l->in->lineno) < 0)
			l->rc = EXIT_NEGATIVE;
	return 0;
}
