/* AWS settings the way AWS users give them: the environment (AWS_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and a service endpoint variable), overridable by
 * command-line options. */
#ifndef AWS_CREDS_H
#define AWS_CREDS_H

struct aws_creds {
	char *region;        /* AWS_REGION, else AWS_DEFAULT_REGION */
	char *endpoint;      /* host[:port] or URL of the service, from endpoint_var */
	char *access_key;    /* AWS_ACCESS_KEY_ID */
	char *secret_key;    /* AWS_SECRET_ACCESS_KEY */
	char *session_token; /* AWS_SESSION_TOKEN (temporary credentials), or NULL */
};

/* Fill c from the environment; endpoint_var names the endpoint variable (e.g. "AWS_IOT_ENDPOINT")
 * or is NULL. Empty variables count as unset. */
void aws_creds_from_env(struct aws_creds *c, const char *endpoint_var);
/* Replace one field (an option given on the command line); value NULL or "" clears it. */
void aws_creds_set(char **field, const char *value);
/* NULL when c has what signing needs (region, key id, secret), else a sentence naming what is
 * missing, fit for a usage error. */
const char *aws_creds_missing(const struct aws_creds *c);
void aws_creds_free(struct aws_creds *c);

#endif
