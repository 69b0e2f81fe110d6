/* The Join Server's state that must survive a crash: per device the DevNonces seen and the last
 * JoinNonce handed out, and the AppSKey (as its KeyEnvelope) of each session by SessionKeyID.
 *
 * Crash safety: a join is answered only after its record (DevNonce, JoinNonce, session) is in
 * the log, written with O_DSYNC; concurrent joins share one write (group commit). At start the
 * snapshot and the log are replayed (a torn last line is ignored), a new snapshot is written
 * atomically and the log starts over; the log is two halves used in turn, and the snapshot of
 * each new generation is written in the background (see js_state.c). */
#ifndef JS_STATE_H
#define JS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct js_state;

enum {
	JS_RESERVE_OK = 0,
	JS_RESERVE_REPLAY = 1,    /* DevNonce already used (or not greater than the last one) */
	JS_RESERVE_EXHAUSTED = 2, /* the 24-bit JoinNonce counter is spent */
};

/* Open (creating) the state directory, take its lock, replay and compact. dir NULL: memory only.
 * The log's size is $LJS_LOG_SIZE bytes (k or M suffix; default 32M). 0, or -1 with a reason in
 * err, -2 when the reason is LJS_LOG_SIZE. */
int js_state_open(struct js_state **st, const char *dir, char *err, size_t errlen);
void js_state_close(struct js_state *st);

/* Make room for this many devices at once: the table is grown (every device rehashed, the
 * table's lock held) before the first joins rather than several times under them. */
void js_state_expect(struct js_state *st, size_t devices);
/* Check the DevNonce (strict: greater than the last one, as 1.0.4 and 1.1 require; otherwise not
 * among the recent ones) and take the next JoinNonce. Only memory changes: nothing is stored
 * until js_state_commit. */
int js_state_reserve(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, bool strict,
                     uint32_t *join_nonce);
/* What js_state_reserve would say now, and the JoinNonce it would give; nothing changes. */
int js_state_peek(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, bool strict, uint32_t *join_nonce);
/* Store the join (and its session, when sid is not NULL: env is the AppSKey KeyEnvelope as JSON
 * text) and return once it is on disk. 0, or -1 when it could not be stored: then the join must
 * not be answered. */
int js_state_commit(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, uint32_t join_nonce,
                    const uint8_t sid[16], const char *env);
/* The same without waiting: done(arg, 0 or -1) is called once the record is on disk (or could not
 * be stored), from a state writer thread; from this call when there is no log or it is broken.
 * The callers of one write are called in the order of their records, as soon as that write is
 * on disk (a later write may end first). */
typedef void (*js_state_done_fn)(void *arg, int rc);
void js_state_commit_async(struct js_state *st, uint64_t dev_eui, uint16_t dev_nonce, uint32_t join_nonce,
                           const uint8_t sid[16], const char *env, js_state_done_fn done, void *arg);
/* Count each log write (batches, records, its duration) in stats from now on (NULL: none). */
struct js_stats;
void js_state_set_stats(struct js_state *st, struct js_stats *stats);
/* The AppSKey KeyEnvelope (JSON text, malloc'ed) of a session of the device, or NULL. */
char *js_state_session(struct js_state *st, uint64_t dev_eui, const uint8_t sid[16]);
/* Last JoinNonce handed out to the device (-1 when none). */
long js_state_last_join_nonce(struct js_state *st, uint64_t dev_eui);

#endif
