/* AWS KMS Encrypt and Decrypt (the JSON 1.1 API, X-Amz-Target TrentService.*, SigV4 service
 * "kms") over libcurl, so that ciphertexts of `aws kms encrypt` decrypt here and the other way
 * round. Key ids: a key id, a key ARN, "alias/name" or an alias ARN. */
#ifndef KMS_AWS_H
#define KMS_AWS_H

#include <jv.h>
#include <stddef.h>
#include <stdint.h>

#include "kms.h"

/* Set k up for AWS KMS: credentials and region from the environment (AWS_REGION or
 * AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the endpoint
 * from endpoint, else AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL, else https://kms.REGION.amazonaws.com;
 * region overrides the environment's. 0, or -1 with a reason in err. */
int kms_aws_open(struct kms *k, const char *endpoint, const char *region, char *err, size_t errlen);
void kms_aws_close(struct kms_aws *a);

/* ctx is borrowed (null or an object of strings). Results as kms_encrypt / kms_decrypt. */
int kms_aws_encrypt(struct kms_aws *a, const char *key_id, const uint8_t *pt, size_t n, jv ctx, char **b64,
                    char *err, size_t errlen);
int kms_aws_decrypt(struct kms_aws *a, const char *key_id, const char *b64, jv ctx, uint8_t **pt, size_t *n,
                    char *err, size_t errlen);

#endif
