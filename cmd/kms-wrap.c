/* kms-wrap: protect LoRaWAN keys. KMS-style encryption of key fields in JSON lines (a local
 * keyring, or AWS KMS), RFC 3394 KeyEnvelopes, and `serve`, the crypto co-process that alone
 * holds root keys. */
#include "cmdutil.h"
#include "hex.h"
#include "jsonl.h"
#include "kek_keyring.h"
#include "kms.h"
#include "kms_aws.h"
#include "kms_fields.h"
#include "kms_local.h"
#include "kms_serve.h"
#include "linereader.h"
#include "log.h"

#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERSION "0.1"
#define MAXLIST 32

static const char usage_text[] =
    "usage: kms-wrap encrypt|decrypt [-a] [-k file] [-K key-id] [-f field]... [-x suffix]\n"
    "                [-e encoding] [-c key=value]... [-C field]... [-E url] [-r region]\n"
    "       kms-wrap genkey [-k file] name\n"
    "       kms-wrap wrap -j file [-l label] -f field...\n"
    "       kms-wrap unwrap -j file -f field...\n"
    "       kms-wrap serve -D file [-p file] [-j file] [-a] [-k file] [-K key-id] [-C field]... [-X]\n"
    "                [-L path] [-d fd]\n"
    "options:\n"
    "  -a, --aws               use AWS KMS instead of the local keyring\n"
    "  -k, --keyring FILE      local keyring (default $KMS_WRAP_KEYRING or ./var/kms/keyring.yml)\n"
    "  -K, --key-id ID         key to encrypt under (keyring name; AWS key id, ARN or alias/name)\n"
    "  -f, --field NAME        field holding a key (repeatable; default psk_root_keys)\n"
    "  -x, --suffix SUFFIX     ciphertext field is the field name plus SUFFIX (default _encrypted)\n"
    "  -e, --encoding ENC      plaintext in fields as hex (default), base64 or text\n"
    "  -c, --context KEY=VALUE add KEY=VALUE to the encryption context (repeatable)\n"
    "  -C, --context-field NAME add the record's field NAME to the encryption context (repeatable)\n"
    "  -E, --endpoint-url URL  AWS KMS endpoint (default https://kms.REGION.amazonaws.com)\n"
    "  -r, --region REGION     AWS region (default $AWS_REGION or $AWS_DEFAULT_REGION)\n"
    "  -j, --keks FILE         YAML keyring of KEKs by label\n"
    "  -l, --kek-label LABEL   KEK to wrap under (none: keys in clear with an empty KEKLabel)\n"
    "  -D, --devices FILE      device registry (JSON lines) for serve\n"
    "  -p, --parts FILE        secure-element parts table (JSON lines) for serve\n"
    "  -X, --expose-root-keys  let serve answer requests for root keys\n"
    "  -L, --listen PATH       serve connections on a Unix socket instead of stdin/stdout\n"
    "  -d FD                   write a newline to FD once ready (serve)\n"
    "  -v, --verbose           log more\n"
    "  -q, --quiet             log less\n"
    "  -h, --help              show this help\n"
    "  -V, --version           show the version\n";

static const struct option longopts[] = {
    {"aws", no_argument, NULL, 'a'},
    {"keyring", required_argument, NULL, 'k'},
    {"key-id", required_argument, NULL, 'K'},
    {"field", required_argument, NULL, 'f'},
    {"suffix", required_argument, NULL, 'x'},
    {"encoding", required_argument, NULL, 'e'},
    {"context", required_argument, NULL, 'c'},
    {"context-field", required_argument, NULL, 'C'},
    {"endpoint-url", required_argument, NULL, 'E'},
    {"region", required_argument, NULL, 'r'},
    {"keks", required_argument, NULL, 'j'},
    {"kek-label", required_argument, NULL, 'l'},
    {"devices", required_argument, NULL, 'D'},
    {"parts", required_argument, NULL, 'p'},
    {"expose-root-keys", no_argument, NULL, 'X'},
    {"listen", required_argument, NULL, 'L'},
    CMD_COMMON_LONGOPTS,
    {NULL, 0, NULL, 0},
};

static void help(FILE *f)
{
	fputs(usage_text, f);
}

static noreturn void usage(void)
{
	help(stderr);
	exit(EXIT_USAGE);
}

enum cmd { ENCRYPT, DECRYPT, GENKEY, WRAP, UNWRAP, SERVE };

struct filter {
	enum cmd cmd;
	struct kms *kms;
	const char *key_id;
	struct kms_field_opts fo;
	const struct kek_keyring *keks;
	const char *label;
	const struct kek *kek;
};

static jv apply(struct filter *f, jv rec, int *temporary)
{
	*temporary = 0;
	switch (f->cmd) {
	case ENCRYPT:
		return kms_fields_encrypt(f->kms, f->key_id, &f->fo, rec, temporary);
	case DECRYPT:
		return kms_fields_decrypt(f->kms, f->key_id, &f->fo, rec, temporary);
	case WRAP:
		return kms_fields_wrap(f->label, f->kek, f->fo.fields, f->fo.nfields, rec);
	default:
		return kms_fields_unwrap(f->keks, f->fo.fields, f->fo.nfields, rec);
	}
}

/* One record per line in, one out; a rejected line is reported with its number and skipped. */
static int filter_loop(struct filter *f)
{
	struct linereader r;
	char *line;
	size_t len;
	int rc, rejected = 0, temporary = 0;
	lr_init(&r, STDIN_FILENO, LR_DEFAULT_MAX);
	while ((rc = lr_getline(&r, &line, &len)) > 0) {
		if (rc == LR_TOOLONG) {
			log_error("line %lu: too long, skipped", r.lineno);
			rejected++;
			continue;
		}
		jv rec = jsonl_parse_object(line, len);
		if (jv_is_valid(rec)) {
			int temp;
			rec = apply(f, rec, &temp);
			temporary += temp;
		}
		if (!jv_is_valid(rec)) {
			jv msg = jv_invalid_get_msg(rec);
			log_error("line %lu: %s", r.lineno,
			          jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "rejected");
			jv_free(msg);
			rejected++;
			continue;
		}
		if (jsonl_write(stdout, rec) < 0)
			die_sys(EXIT_TEMPORARY, "unable to write to stdout");
	}
	if (rc < 0)
		die_sys(EXIT_TEMPORARY, "unable to read stdin");
	memset(r.buf, 0, r.cap);
	lr_free(&r);
	stdout_flush_or_die();
	return temporary ? EXIT_TEMPORARY : rejected ? EXIT_NEGATIVE : 0;
}

static const char *default_keyring(void)
{
	const char *p = getenv("KMS_WRAP_KEYRING");
	return p && *p ? p : "./var/kms/keyring.yml";
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	/* a reader that went away is EPIPE: said, and exit 111, not a silent death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		cmd_common_option('h', help, NULL);
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)
		cmd_common_option('V', help, "kms-wrap " VERSION);
	static const char *const names[] = {"encrypt", "decrypt", "genkey", "wrap", "unwrap", "serve"};
	int cmd = -1;
	for (int i = 0; i < 6; i++)
		if (strcmp(argv[1], names[i]) == 0)
			cmd = i;
	if (cmd < 0) {
		log_error("unknown command \"%s\"", argv[1]);
		usage();
	}

	bool aws = false, expose = false;
	const char *devices = NULL, *parts = NULL, *listen_path = NULL;
	int ready_fd = -1;
	const char *keyring = NULL, *key_id = NULL, *suffix = "_encrypted", *endpoint = NULL, *region = NULL;
	const char *keks_path = NULL, *label = NULL;
	const char *fields[MAXLIST], *ctx_fields[MAXLIST];
	size_t nfields = 0, nctx = 0;
	enum kms_encoding enc = KMS_ENC_HEX;
	jv context = jv_object();
	int c;
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "ak:K:f:x:e:c:C:E:r:j:l:D:p:XL:d:" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (c) {
		case 'a': aws = true; break;
		case 'k': keyring = optarg; break;
		case 'K': key_id = optarg; break;
		case 'f':
			if (nfields == MAXLIST)
				die(EXIT_USAGE, "too many -f options");
			fields[nfields++] = optarg;
			break;
		case 'x': suffix = optarg; break;
		case 'e':
			if (kms_encoding_parse(optarg, &enc) < 0)
				die(EXIT_USAGE, "-e: expected hex, base64 or text, not \"%s\"", optarg);
			break;
		case 'c': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				die(EXIT_USAGE, "-c: expected KEY=VALUE, not \"%s\"", optarg);
			context = jv_object_set(context, jv_string_sized(optarg, (int)(eq - optarg)), jv_string(eq + 1));
			break;
		}
		case 'C':
			if (nctx == MAXLIST)
				die(EXIT_USAGE, "too many -C options");
			ctx_fields[nctx++] = optarg;
			break;
		case 'E': endpoint = optarg; break;
		case 'r': region = optarg; break;
		case 'j': keks_path = optarg; break;
		case 'l': label = optarg; break;
		case 'D': devices = optarg; break;
		case 'p': parts = optarg; break;
		case 'X': expose = true; break;
		case 'L': listen_path = optarg; break;
		case 'd': ready_fd = cmd_fd_arg(optarg); break;
		default:
			if (!cmd_common_option(c, help, "kms-wrap " VERSION))
				usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (cmd != GENKEY && argc > 0)
		die(EXIT_USAGE, "%s: unexpected argument \"%s\" (keys are read from stdin or files, never from arguments)",
		    names[cmd], argv[0]);
	if (!keyring)
		keyring = default_keyring();
	if (nfields == 0 && (cmd == ENCRYPT || cmd == DECRYPT || cmd == SERVE))
		fields[nfields++] = "psk_root_keys";

	char err[512];
	if (cmd == GENKEY) {
		if (argc != 1)
			die(EXIT_USAGE, "genkey: expected one key name");
		if (kms_local_genkey(keyring, argv[0], err, sizeof err) < 0)
			die(EXIT_USAGE, "%s", err);
		log_info("added key \"%s\" to %s", argv[0], keyring);
		jv_free(context);
		return 0;
	}

	struct kms kms = {0};
	if (cmd == SERVE && !devices)
		die(EXIT_USAGE, "serve: -D/--devices is required");
	if (cmd == ENCRYPT || cmd == DECRYPT || cmd == SERVE) {
		if (aws) {
			if (kms_aws_open(&kms, endpoint, region, err, sizeof err) < 0)
				die(EXIT_USAGE, "%s", err);
		} else if (kms_local_load(&kms.local, keyring, err, sizeof err) < 0) {
			/* serve needs a KMS only for a parts table or encrypted registry keys */
			if (cmd != SERVE || parts || access(keyring, F_OK) == 0)
				die(EXIT_USAGE, "%s", err);
		}
	}
	if (cmd == ENCRYPT && !key_id)
		die(EXIT_USAGE, "encrypt: -K/--key-id is required");

	int rc;
	if (cmd == SERVE) {
		struct kms_serve_opts so = {
		    .devices = devices,
		    .parts = parts,
		    .keks = keks_path,
		    .kms = &kms,
		    .key_id = key_id,
		    .fo = {fields, nfields, suffix, enc, context, ctx_fields, nctx},
		    .expose_root_keys = expose,
		    .listen = listen_path,
		    .ready_fd = ready_fd,
		};
		rc = kms_serve(&so);
	} else {
		struct kek_keyring keks = {0};
		struct filter f = {
		    .cmd = (enum cmd)cmd,
		    .kms = &kms,
		    .key_id = key_id,
		    .fo = {fields, nfields, suffix, enc, context, ctx_fields, nctx},
		    .keks = &keks,
		    .label = label,
		};
		if (cmd == WRAP || cmd == UNWRAP) {
			if (nfields == 0)
				die(EXIT_USAGE, "%s: name the key fields with -f", names[cmd]);
			if (keks_path && kek_keyring_load(&keks, keks_path, err, sizeof err) < 0)
				die(EXIT_USAGE, "%s", err);
			if (label && !(f.kek = kek_find(&keks, label)))
				die(EXIT_USAGE, "wrap: no KEK labelled \"%s\"%s%s", label, keks_path ? " in " : "",
				    keks_path ? keks_path : " (no -j keyring given)");
		}
		rc = filter_loop(&f);
		kek_keyring_free(&keks);
	}
	kms_free(&kms);
	jv_free(context);
	return rc;
}
