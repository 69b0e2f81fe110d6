#define _GNU_SOURCE /* accept4 */
#include "kms_serve.h"

#include "cmdutil.h"
#include "hex.h"
#include "js_devices.h"
#include "js_keys.h"
#include "kek_keyring.h"
#include "log.h"
#include "se_parts.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t reload_wanted, quit_wanted;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_wanted = 1;
	else
		quit_wanted = 1;
}

struct keys {
	struct se_table se;
	struct js_devices reg;
	struct kek_keyring keks;
};

struct state {
	const struct kms_serve_opts *o;
	struct keys k;
	pthread_rwlock_t lk; /* socket mode: connections look up, the main thread reloads */
};

static void keys_free(struct keys *k)
{
	se_table_free(&k->se);
	js_devices_free(&k->reg);
	kek_keyring_free(&k->keks);
}

/* 0, or an exit code with the reason logged. A parts line that does not decrypt is logged and
 * left out; the devices on that part then have no keys. */
static int load(const struct kms_serve_opts *o, struct keys *k)
{
	char err[512];
	int rejected = 0;
	memset(k, 0, sizeof *k);
	if (o->keks && kek_keyring_load(&k->keks, o->keks, err, sizeof err) < 0)
		goto fail;
	if (js_devices_load_kms(&k->reg, o->devices, o->keks ? &k->keks : NULL, o->kms, err, sizeof err) < 0)
		goto fail;
	if (se_devices_load(&k->se, o->devices, &rejected, err, sizeof err) < 0)
		goto fail;
	if (o->parts && se_parts_load(&k->se, o->parts, o->kms, o->key_id, &o->fo, &rejected, err, sizeof err) < 0) {
		log_error("%s", err);
		keys_free(k);
		return EXIT_TEMPORARY;
	}
	if (rejected)
		log_warn("%d registry or parts lines were left out (see above)", rejected);
	log_info("loaded %zu registry devices, %zu secure-element devices, %zu parts", k->reg.n, k->se.ndevs,
	         k->se.nparts);
	return 0;
fail:
	log_error("%s", err);
	keys_free(k);
	return EXIT_USAGE;
}

static void reload(struct state *s)
{
	reload_wanted = 0;
	struct keys fresh;
	if (load(s->o, &fresh) == 0) {
		pthread_rwlock_wrlock(&s->lk);
		keys_free(&s->k);
		s->k = fresh;
		pthread_rwlock_unlock(&s->lk);
		log_info("reloaded on SIGHUP");
	} else {
		log_error("reload failed; the keys loaded before stay in use");
	}
}

static int find(struct state *s, const uint8_t dev_eui[8], const uint8_t join_eui[8], struct js_root_keys *out,
                char *err, size_t errlen)
{
	for (size_t i = 0; i < s->k.se.ndevs; i++)
		if (memcmp(s->k.se.devs[i].dev_eui, dev_eui, 8) == 0)
			return se_root_key_lookup(&s->k.se, dev_eui, join_eui, out, err, errlen);
	return js_devices_root_keys(&s->k.reg, dev_eui, join_eui, out, err, errlen);
}

/* stdin/stdout: one thread; a SIGHUP is acted on before the next lookup */
static int lookup(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8], struct js_root_keys *out,
                  char *err, size_t errlen)
{
	struct state *s = ctx;
	if (reload_wanted)
		reload(s);
	return find(s, dev_eui, join_eui, out, err, errlen);
}

static int lookup_locked(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8], struct js_root_keys *out,
                         char *err, size_t errlen)
{
	struct state *s = ctx;
	pthread_rwlock_rdlock(&s->lk);
	int rc = find(s, dev_eui, join_eui, out, err, errlen);
	pthread_rwlock_unlock(&s->lk);
	return rc;
}

struct conn {
	pthread_t th;
	int fd;
	volatile int done;
	struct state *s;
	struct conn *next;
};

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	js_cryptod_serve(c->fd, c->fd, lookup_locked, c->s, c->s->o->expose_root_keys, NULL);
	c->done = 1;
	return NULL;
}

static void reap(struct conn **list, bool all)
{
	for (struct conn **p = list; *p;) {
		struct conn *c = *p;
		if (all && !c->done)
			shutdown(c->fd, SHUT_RDWR);
		if (all || c->done) {
			pthread_join(c->th, NULL);
			close(c->fd);
			*p = c->next;
			free(c);
		} else {
			p = &c->next;
		}
	}
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		log_error("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	struct stat st;
	/* a socket left by a previous run; anything else at that path is not ours to remove */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("unable to create a socket: %s", strerror(errno));
		return -1;
	}
	mode_t old = umask(077); /* only our user may ask for root-key work */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || listen(fd, 16) < 0) {
		log_error("unable to listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int serve_socket(struct state *s)
{
	int lfd = listen_unix(s->o->listen);
	if (lfd < 0)
		return EXIT_TEMPORARY;
	log_info("listening on %s", s->o->listen);
	if (s->o->ready_fd >= 0) {
		if (write(s->o->ready_fd, "\n", 1) != 1)
			log_warn("unable to write the readiness notification: %s", strerror(errno));
		close(s->o->ready_fd);
	}
	/* the signals stay blocked (in the connection threads too) except while waiting in ppoll,
	 * so none is lost between checking the flags and sleeping */
	sigset_t block, orig;
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &orig);
	struct conn *list = NULL;
	int rc = 0;
	while (!quit_wanted) {
		if (reload_wanted)
			reload(s);
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		int n = ppoll(&pfd, 1, NULL, &orig);
		reap(&list, false);
		if (n < 0 && errno == EINTR)
			continue;
		int cfd = n < 0 ? -1 : accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			log_error("unable to accept connections: %s", strerror(errno));
			rc = EXIT_TEMPORARY;
			break;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(cfd);
			continue;
		}
		c->fd = cfd;
		c->s = s;
		if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
			log_error("unable to start a connection thread");
			close(cfd);
			free(c);
			continue;
		}
		c->next = list;
		list = c;
	}
	close(lfd);
	unlink(s->o->listen);
	reap(&list, true);
	pthread_sigmask(SIG_SETMASK, &orig, NULL);
	return rc;
}

int kms_serve(const struct kms_serve_opts *o)
{
	struct state s = {.o = o};
	int rc = load(o, &s.k);
	if (rc)
		return rc;
	pthread_rwlock_init(&s.lk, NULL);
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	/* on stdin the request loop's read(2) carries on and a reload waits for the next lookup;
	 * on a socket the wait for connections is interrupted and the reload is done at once */
	sa.sa_flags = o->listen ? 0 : SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGHUP, &sa, NULL) < 0 || (o->listen && (sigaction(SIGTERM, &sa, NULL) < 0 ||
	                                                         sigaction(SIGINT, &sa, NULL) < 0))) {
		log_error("unable to set a SIGHUP handler: %s", strerror(errno));
		keys_free(&s.k);
		return EXIT_TEMPORARY;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o->listen) {
		rc = serve_socket(&s);
		keys_free(&s.k);
		pthread_rwlock_destroy(&s.lk);
		return rc;
	}
	if (o->ready_fd >= 0) {
		if (write(o->ready_fd, "\n", 1) != 1)
			log_warn("unable to write the readiness notification: %s", strerror(errno));
		close(o->ready_fd);
	}
	/* SIGTERM and SIGINT end the request loop (exit 0) once what was read is answered */
	sigset_t unblocked;
	cmd_stop_signals(&unblocked);
	rc = js_cryptod_serve(STDIN_FILENO, STDOUT_FILENO, lookup, &s, o->expose_root_keys, &unblocked);
	keys_free(&s.k);
	pthread_rwlock_destroy(&s.lk);
	return rc;
}
