/* `kms-wrap serve`: the Join Server's crypto co-process. It loads root keys (device registry
 * entries with keys, and secure-element devices derived through a KMS-encrypted parts table),
 * reloads them on SIGHUP, and answers the crypto protocol of lib/js_cryptod.c on stdin/stdout. */
#ifndef KMS_SERVE_H
#define KMS_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "kms.h"
#include "kms_fields.h"

struct kms_serve_opts {
	const char *devices;  /* device registry (JSON lines) */
	const char *parts;    /* parts table, or NULL */
	const char *keks;     /* YAML KEK keyring for KEK-wrapped registry keys, or NULL */
	struct kms *kms;      /* decrypts the parts table */
	const char *key_id;   /* optional: the only KMS key parts may be under */
	struct kms_field_opts fo; /* the parts' key field, suffix and encryption context */
	bool expose_root_keys;
	const char *listen;   /* a Unix socket path to serve connections on, instead of stdin/stdout */
	int ready_fd;         /* -1 for none */
};

/* Load, serve until end of input (or, with listen, until SIGTERM: one thread per connection,
 * the socket for its owner only); an exit code (0, 100 for a configuration that does not load,
 * 111 for I/O errors or an unreachable KMS at start). */
int kms_serve(const struct kms_serve_opts *o);

#endif
