/* See cmdutil.h. */
#include <stdlib.h>

#include "cmdutil.h"
#include "log.h"

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

int cmd_fd_arg(const char *s)
{
	char *end;
	long fd = strtol(s, &end, 10);
	if (!*s || *end || fd < 0 || fd > 1 << 20)
		die(EXIT_USAGE, "-d: not a file descriptor: %s", s);
	return (int)fd;
}
