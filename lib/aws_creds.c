#include "aws_creds.h"

#include <stdlib.h>
#include <string.h>

static char *env_dup(const char *name)
{
	const char *v = name ? getenv(name) : NULL;
	if (!v || !*v)
		return NULL;
	char *d = strdup(v);
	if (!d)
		abort(); /* a few bytes at start-up: nothing sensible to carry on with */
	return d;
}

void aws_creds_from_env(struct aws_creds *c, const char *endpoint_var)
{
	memset(c, 0, sizeof *c);
	c->region = env_dup("AWS_REGION");
	if (!c->region)
		c->region = env_dup("AWS_DEFAULT_REGION");
	c->endpoint = env_dup(endpoint_var);
	c->access_key = env_dup("AWS_ACCESS_KEY_ID");
	c->secret_key = env_dup("AWS_SECRET_ACCESS_KEY");
	c->session_token = env_dup("AWS_SESSION_TOKEN");
}

void aws_creds_set(char **field, const char *value)
{
	free(*field);
	*field = NULL;
	if (value && *value) {
		*field = strdup(value);
		if (!*field)
			abort();
	}
}

const char *aws_creds_missing(const struct aws_creds *c)
{
	if (!c->region)
		return "no AWS region: set AWS_REGION or give --region";
	if (!c->access_key)
		return "no AWS access key: set AWS_ACCESS_KEY_ID or give --access-key";
	if (!c->secret_key)
		return "no AWS secret key: set AWS_SECRET_ACCESS_KEY";
	return NULL;
}

void aws_creds_free(struct aws_creds *c)
{
	free(c->region);
	free(c->endpoint);
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	memset(c, 0, sizeof *c);
}
