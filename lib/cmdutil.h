/* What the filters' main() functions share: the -d argument and SIGTERM/SIGINT around ppoll. */
#ifndef CMDUTIL_H
#define CMDUTIL_H

#include <signal.h>

/* Set once SIGTERM or SIGINT arrived (see cmd_stop_requested). */
extern volatile sig_atomic_t cmd_stop;

/* Block SIGTERM and SIGINT, handled by setting cmd_stop; *unblocked gets the mask to wait with
 * (ppoll(..., unblocked)), the only place they are then delivered. */
void cmd_stop_signals(sigset_t *unblocked);

/* cmd_stop, or a SIGTERM/SIGINT pending: ppoll(2) puts the blocked mask back when descriptors
 * are ready, so one that arrives while input keeps flowing would otherwise wait for ever. */
int cmd_stop_requested(void);

/* The FD of -d FD (s6 readiness), or die with 100. */
int cmd_fd_arg(const char *s);

#endif
