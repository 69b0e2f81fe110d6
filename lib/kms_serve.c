#include "kms_serve.h"

#include "hex.h"
#include "js_devices.h"
#include "js_keys.h"
#include "kek_keyring.h"
#include "log.h"
#include "se_parts.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t reload_wanted;

static void on_hup(int sig)
{
	(void)sig;
	reload_wanted = 1;
}

struct keys {
	struct se_table se;
	struct js_devices reg;
	struct kek_keyring keks;
};

struct state {
	const struct kms_serve_opts *o;
	struct keys k;
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
	if (js_devices_load(&k->reg, o->devices, o->keks ? &k->keks : NULL, err, sizeof err) < 0)
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

static int lookup(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8], struct js_root_keys *out,
                  char *err, size_t errlen)
{
	struct state *s = ctx;
	if (reload_wanted) {
		reload_wanted = 0;
		struct keys fresh;
		if (load(s->o, &fresh) == 0) {
			keys_free(&s->k);
			s->k = fresh;
			log_info("reloaded on SIGHUP");
		} else {
			log_error("reload failed; the keys loaded before stay in use");
		}
	}
	for (size_t i = 0; i < s->k.se.ndevs; i++)
		if (memcmp(s->k.se.devs[i].dev_eui, dev_eui, 8) == 0)
			return se_root_key_lookup(&s->k.se, dev_eui, join_eui, out, err, errlen);
	return js_devices_root_keys(&s->k.reg, dev_eui, join_eui, out, err, errlen);
}

int kms_serve(const struct kms_serve_opts *o)
{
	struct state s = {.o = o};
	int rc = load(o, &s.k);
	if (rc)
		return rc;
	struct sigaction sa = {0};
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_RESTART; /* the request loop's read(2) carries on; reload is before a lookup */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGHUP, &sa, NULL) < 0) {
		log_error("unable to set a SIGHUP handler: %s", strerror(errno));
		keys_free(&s.k);
		return EXIT_TEMPORARY;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o->ready_fd >= 0) {
		if (write(o->ready_fd, "\n", 1) != 1)
			log_warn("unable to write the readiness notification: %s", strerror(errno));
		close(o->ready_fd);
	}
	rc = js_cryptod_serve(STDIN_FILENO, STDOUT_FILENO, lookup, &s, o->expose_root_keys);
	keys_free(&s.k);
	return rc;
}
