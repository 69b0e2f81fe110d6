/* What several fuzz targets share (static inline, included by each; not a target itself):
 * quiet logging that still formats every line, a scratch directory, the input as lines, a real
 * control socket for lwm2m-listen's clients, and the fixed local KMS keyring of the key seeds. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include "log.h"
#include "lwm2m_ctlclient.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The local KMS keyring the seeds were encrypted with (kms-wrap encrypt -k): "parts" and
 * "devkeys", 256 bits each. */
static const char fuzz_kms_yaml[] = "parts: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
                                    "devkeys: 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n";

/* Every log line formatted (debug level) and written to /dev/null: libFuzzer and the sanitizers
 * report on descriptor 2 itself, not through stdio's stderr. */
static inline void fuzz_quiet_logs(void)
{
	FILE *quiet = fopen("/dev/null", "w");
	if (!quiet)
		abort();
	log_level = LOG_LVL_DEBUG;
	stderr = quiet;
}

/* mkdtemp of NAME-XXXXXX in $FUZZ_SCRATCH when set, else in /dev/shm (tmpfs: the fsyncs of a save
 * cost nothing), else in /tmp. A target removes its directory at exit, but one that crashes or is
 * killed cannot: `make fuzz` and tests/fuzz.bats point FUZZ_SCRATCH at a directory they remove. */
static inline void fuzz_tmpdir(char *dir, size_t size, const char *name)
{
	const char *parent = getenv("FUZZ_SCRATCH");
	if (!parent || !*parent)
		parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int n = snprintf(dir, size, "%s/%s-XXXXXX", parent, name);
	if (n < 0 || (size_t)n >= size) {
		static const char msg[] = "fuzz: FUZZ_SCRATCH is too long a path\n";
		(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
		abort();
	}
	if (!mkdtemp(dir))
		abort();
}

static inline void fuzz_write_file(const char *path, const void *d, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0)
		abort();
}

/* Call fn for each line of the input (without its newline; a last line without one too). */
static inline void fuzz_lines(const uint8_t *data, size_t size, void (*fn)(void *, const char *, size_t), void *arg)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		fn(arg, p, n);
		p += n + 1;
	}
}

/* lwm2m-listen's control socket, played by the harness: a listening Unix socket at path (made
 * once), and per input a client connected to it whose commands the harness reads and discards. */
struct fuzz_ctl {
	char path[128];
	int lfd;  /* listening */
	int peer; /* the accepted end of the client's connection */
	struct ctlclient *ctl;
};

static inline void fuzz_ctl_listen(struct fuzz_ctl *f, const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(f->path, sizeof f->path, "%s/ctl", dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(f->lfd, 4) < 0)
		abort();
}

static inline struct ctlclient *fuzz_ctl_connect(struct fuzz_ctl *f)
{
	f->ctl = ctl_new(f->path);
	if (!f->ctl || ctl_connect(f->ctl) != 1 || (f->peer = accept(f->lfd, NULL, NULL)) < 0)
		abort();
	return f->ctl;
}

/* Take what the client sent, so that its socket buffer never fills. */
static inline void fuzz_ctl_drain(struct fuzz_ctl *f)
{
	char b[4096];
	while (recv(f->peer, b, sizeof b, MSG_DONTWAIT) > 0)
		;
}

static inline void fuzz_ctl_close(struct fuzz_ctl *f)
{
	ctl_free(f->ctl);
	f->ctl = NULL;
	close(f->peer);
	f->peer = -1;
}

#endif
