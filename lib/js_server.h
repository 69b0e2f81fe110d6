/* The Join Server's message handling, independent of the transport (HTTP or stdin):
 * JoinReq -> JoinAns, HomeNSReq -> HomeNSAns, AppSKeyReq -> AppSKeyAns. */
#ifndef JS_SERVER_H
#define JS_SERVER_H

#include "js_stats.h"
#include <jv.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "js_cryptod.h"
#include "js_devices.h"
#include "js_state.h"

struct kek_keyring;

/* Who sent a message, as the transport established it. */
struct js_peer {
	/* NULL: the transport does not authenticate senders (stdin, --tls none or server-only).
	 * Otherwise 0 when the peer may speak for sender_id (a NetID or an AS-ID), else -1 with a
	 * reason in err. */
	int (*authorize)(void *ctx, const char *sender_id, char *err, size_t errlen);
	void *ctx;
};

struct js_server {
	pthread_rwlock_t lk;            /* devices and keks are swapped on reload under it */
	struct js_devices *devices;
	struct kek_keyring *keks;       /* may be NULL */
	struct js_state *state;
	struct js_crypto *crypto;
	bool identity_server;           /* answer HomeNSReq only */
	uint32_t lifetime;              /* JoinAns Lifetime, seconds */
	/* counters */
	unsigned long answered, rejected;
	struct js_stats stats;
};

void js_server_init(struct js_server *s);
struct jbuf;
/* Answer one message given as JSON text (len bytes, writable: a plain JoinReq is read in place,
 * its strings NUL-terminated). Never fails on content: every problem is a BI Result. 0 with the
 * answer's JSON text appended to out (no newline) and *ok when its Result is Success; -1 when
 * the text is not a JSON object, with the reason ("malformed JSON: ...") appended to out. */
int js_server_answer(struct js_server *s, char *text, size_t len, const struct js_peer *peer, struct jbuf *out,
                     bool *ok);

/* A JoinReq whose answer waits for its DevNonce/JoinNonce record to be on disk. */
struct js_pending;
typedef void (*js_wake_fn)(void *arg);
/* As js_server_answer, but without waiting for the disk: a JoinReq that got that far gives 1
 * and *pending, and wake(arg) follows from another thread (the state writer, the crypto reader)
 * or from this call, once js_server_finish(*pending) has the answer. The text is not needed
 * after the call. Any other answer is given at once (0 or -1) and wake is not called. */
int js_server_answer_async(struct js_server *s, char *text, size_t len, const struct js_peer *peer,
                           js_wake_fn wake, void *arg, struct js_pending **pending, struct jbuf *out, bool *ok);
/* The answer of a pending message, once woken: out is replaced by it (a malloc'd jbuf); true
 * when its Result is Success. Frees pending. */
bool js_server_finish(struct js_pending *p, struct jbuf *out);

/* Load (or reload) the KEK keyring. 0, or -1 with a reason in err (the old one stays). */
int js_keks_load(struct js_server *s, const char *path, char *err, size_t errlen);
void js_keks_free(struct js_server *s);
/* The answer to a message that could not be read at all. */
jv js_malformed_answer(const char *desc);
/* True when the answer's Result is Success. */
bool js_answer_ok(jv ans);

#endif
