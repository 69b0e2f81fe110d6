/* The local store's write-ahead log (shadow-store(5)): one fdatasync per committed batch
 * instead of one per document.
 *
 *   DIR/.wal/lock      flock(2)ed by the process committing a batch (the store lock); holds
 *                      the log's generation and the size up to which it has been applied
 *   DIR/.wal/log       batches appended and synced before they are acknowledged
 *   DIR/.wal/log.old   the previous log, while a checkpoint makes the documents durable
 *   DIR/.wal/ckpt      flock(2)ed while a checkpoint runs
 *
 * A batch is framed so that a torn tail is recognised: a newline, then its lines, then
 * "e <lines>\n" counting them. What the lines mean is the caller's business. */
#ifndef SHADOW_WAL_H
#define SHADOW_WAL_H

#include <stddef.h>
#include <stdint.h>

struct shadow_wal;

/* Called for each complete batch found in the log (its lines, each ending in a newline,
 * without the end line), to apply what the documents lack. Returns how many documents it
 * changed. */
typedef int (*shadow_wal_replay_fn)(void *arg, char *batch, size_t len);

/* Open the log of the store at dirfd (path dir, for messages). NULL with errno. */
struct shadow_wal *shadow_wal_open(int dirfd, const char *dir);
/* At start: take the store lock, replay every complete batch of log.old and log, and when
 * that changed documents, make them durable (syncfs) and empty the log. 0 or -1 (errno). */
int shadow_wal_recover(struct shadow_wal *w, shadow_wal_replay_fn fn, void *arg);
/* Take the store lock for a commit; the batches that another process logged but did not
 * apply (it was killed, or holds their documents back) are replayed first. 1 when nobody else
 * wrote the store since this process's last commit (the documents it remembers are current,
 * and those it holds back are still its to write), 0 when someone did, -1 (errno) on
 * failure. */
int shadow_wal_begin(struct shadow_wal *w, shadow_wal_replay_fn fn, void *arg);
/* Append one batch (its lines; the framing is added) and make it durable. On failure the log
 * is cut back, so the batch is never replayed. 0 or -1 (errno). */
int shadow_wal_append(struct shadow_wal *w, const char *lines, size_t len, size_t nlines);
/* Where the batch appended last starts in the log (for shadow_wal_end's held). */
uint64_t shadow_wal_batch_offset(const struct shadow_wal *w);
/* 1 when the log has reached its bound: a checkpoint is due, nothing should be held back. */
int shadow_wal_full(const struct shadow_wal *w);
/* The batch is applied (documents renamed; with applied 0, not all of them: the next
 * commit replays it). With held >= 0, this process holds back, in memory, documents of the
 * batches from that offset on: the log counts as applied only up to there, so that another
 * process replays them before it reads a document, and no checkpoint starts. Record it,
 * start a checkpoint when the log is old or large enough, release the store lock. */
void shadow_wal_end(struct shadow_wal *w, int applied, long long held);
/* At a clean exit of a writer: when the log is as this process left it and applied to its end,
 * sync the file system and empty the log, so that the next open has nothing to replay. */
void shadow_wal_finish(struct shadow_wal *w);
/* Wait for a running checkpoint and free. */
void shadow_wal_close(struct shadow_wal *w);

#endif
