/* lwm2m-listen's command side: the control socket (a Unix stream socket) and stdin. Each line is
 * a JSON command; each gets one response line (observations: one per notification too) on the
 * connection it came from. Events go to stdout and to every connection that subscribed. */
#ifndef LWM2M_CONTROL_H
#define LWM2M_CONTROL_H

#include "lwm2m_server.h"

#include <jv.h>
#include <poll.h>
#include <stddef.h>

struct lwm2m_control;

/* path: the control socket to create (NULL: none); read_stdin: take commands on stdin too.
 * NULL with a logged reason when the socket cannot be made. */
struct lwm2m_control *lwm2m_control_new(const char *path, int read_stdin);
void lwm2m_control_set_server(struct lwm2m_control *c, struct lwm2m_server *s);
void lwm2m_control_free(struct lwm2m_control *c);

/* Callbacks for the server (struct lwm2m_server_cb, ud = the control). */
void lwm2m_control_event(const char *line, size_t len, void *ud);
void lwm2m_control_reply(struct lwm2m_request *rq, const struct lwm2m_reply *rep, void *ud);

/* For struct lwm2m_server_cb: write what this round queued (stdout and connections), and where
 * a client's lines stand (bytes queued and written so far; client 0 is stdout; -1: no such
 * connection). */
void lwm2m_control_flush(void *ud);
int lwm2m_control_out_pos(uint64_t client, uint64_t *queued, uint64_t *written, void *ud);
/* poll(2) integration: how many descriptors, fill them, then handle what poll reported. */
size_t lwm2m_control_npoll(const struct lwm2m_control *c);
void lwm2m_control_poll_setup(struct lwm2m_control *c, struct pollfd *fds);
void lwm2m_control_poll_done(struct lwm2m_control *c, const struct pollfd *fds);
/* 1 while more than a bounded amount of stdout waits for its reader: stop taking datagrams. */
int lwm2m_control_backlogged(const struct lwm2m_control *c);

/* The reply line for rep as a jq object (cmd consumed: the request's command). */
jv lwm2m_control_reply_jv(jv cmd, const struct lwm2m_reply *rep);
/* A notification's reply line written as text, with its newline, from the command's compact text
 * (jq's dump): byte for byte what the jq object above dumps. 1 if written; 0 if it is not the
 * common case (an error, links, keys with escapes...), nothing written then. */
struct jbuf;
int lwm2m_control_notify_text(struct jbuf *b, const char *cmd, size_t len, const struct lwm2m_reply *rep);

/* Handle one command line from client (0: stdin, answered on stdout). Exposed for tests. */
void lwm2m_control_command(struct lwm2m_control *c, uint64_t client, const char *line, size_t len,
                           unsigned long lineno);

#endif
