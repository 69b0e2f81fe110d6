/* The local shadow store: a directory of JSON documents (see shadow-store(5)).
 *
 *   DIR/<thing>.json            the classic shadow of <thing>
 *   DIR/<thing>.<name>.json     its named shadow <name>
 *   DIR/.wal/                   the write-ahead log and the store lock (shadow_wal.h)
 *   DIR/.journal/deltas         every published delta, one line each, appended in order;
 *                               rotated to deltas.1 past SHADOW_JOURNAL_MAX bytes (or
 *                               the environment's SHADOW_JOURNAL_MAX)
 *
 * A commit logs its documents with one fdatasync, then replaces them whole (temporary file,
 * rename, unsynced), so readers see the old or the new document, never a mix; a checkpoint
 * syncs the file system before the log is dropped. Opening the store replays what a killed
 * process logged but did not apply. */
#ifndef SHADOW_LOCAL_H
#define SHADOW_LOCAL_H

#include "shadow_backend.h"

#define SHADOW_JOURNAL_MAX (4u << 20)

/* Open (creating it if needed) the store in dir. NULL with errno on failure. */
struct shadow_backend *shadow_local_open(const char *dir);

/* Read a stored document: 0 with *doc (jv_null() when the shadow does not exist), or -1 with
 * errno (EINVAL for a document that is not JSON). */
int shadow_local_read(int dirfd, const char *thing, const char *shadow, jv *doc);

#endif
