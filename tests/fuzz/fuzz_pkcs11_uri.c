/*
 * fuzz_pkcs11_uri.c - the RFC 7512 key URI parser (ca/sign_key.c) on
 * arbitrary text, through ca_key_describe (parses, touches no file and
 * no token) and ca_key_uri_display: the forms shown never hold the
 * query (where a PIN may be) and always end inside their buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
one(const char *uri)
{
	char out[CA_KEY_URI_MAX + 32], dn[64];

	(void)ca_key_describe(out, sizeof(out), uri);
	if (memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	ca_key_uri_display(dn, sizeof(dn), uri);
	if (memchr(dn, '\0', sizeof(dn)) == NULL || strchr(dn, '?') != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *s;

	if (len > 2 * CA_KEY_URI_MAX)
		return 0;
	if ((s = malloc(len + 8)) == NULL)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	one(s);
	/* the same bytes as a URI, so the parser always runs */
	memcpy(s, "pkcs11:", 7);
	memcpy(s + 7, data, len);
	s[len + 7] = '\0';
	one(s);
	free(s);
	return 0;
}
