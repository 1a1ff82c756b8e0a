/*
 * test_sign_key.c - PKCS#11 key URIs (RFC 7512): what is a URI, what
 * messages and status lines show (never the PIN), and the refusal of
 * malformed URIs before any token is touched.  Loading from a real token
 * is tests/e2e/t_hsm.sh (SoftHSM2).
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "common/log.h"
#include "ca/ca.h"

#define SECRET	"s3cretPIN"

static void
test_is_uri(void **state)
{
	(void)state;
	assert_true(ca_key_is_uri("pkcs11:token=a;object=b"));
	assert_true(ca_key_is_uri("PKCS11:token=a;object=b"));
	assert_false(ca_key_is_uri("/var/lib/mica/private/ca.key"));
	assert_false(ca_key_is_uri("private/pkcs11:x"));
	assert_false(ca_key_is_uri("pkcs11"));
	assert_false(ca_key_is_uri(""));
	assert_false(ca_key_is_uri(NULL));
}

static void
test_display(void **state)
{
	char out[CA_KEY_URI_MAX];

	(void)state;
	ca_key_uri_display(out, sizeof(out),
	    "pkcs11:token=mica;object=ca?pin-value=" SECRET);
	assert_string_equal(out, "pkcs11:token=mica;object=ca");
	ca_key_uri_display(out, sizeof(out), "pkcs11:token=mica;object=ca");
	assert_string_equal(out, "pkcs11:token=mica;object=ca");
}

static void
test_describe(void **state)
{
	char out[CA_KEY_URI_MAX + 32];

	(void)state;
	assert_int_equal(ca_key_describe(out, sizeof(out),
	    "/var/lib/mica/private/ca.key"), 1);
	assert_string_equal(out, "file /var/lib/mica/private/ca.key");
	assert_int_equal(ca_key_describe(out, sizeof(out),
	    "pkcs11:token=mica;object=mica-ca?pin-value=" SECRET), 1);
	assert_string_equal(out, "token mica object mica-ca");
	assert_int_equal(ca_key_describe(out, sizeof(out),
	    "pkcs11:token=My%20HSM;object=ca%20key;type=private"), 1);
	assert_string_equal(out, "token My HSM object ca key");
	assert_int_equal(ca_key_describe(out, sizeof(out),
	    "pkcs11:token=mica;id=%01%AB%ff"), 1);
	assert_string_equal(out, "token mica id 01abff");
	/* a control character in a label is not printed as such */
	assert_int_equal(ca_key_describe(out, sizeof(out),
	    "pkcs11:token=mi%0aca;object=ca"), 1);
	assert_string_equal(out, "token mi?ca object ca");
	assert_int_equal(ca_key_describe(out, sizeof(out),
	    "pkcs11:object=ca"), 1);
	assert_string_equal(out, "token (any) object ca");
	assert_int_equal(ca_key_describe(out, sizeof(out),
	    "pkcs11:token=mica;object=%zz?pin-value=" SECRET), 0);
	assert_null(strstr(out, SECRET));
}

struct bad {
	const char	*uri;
	const char	*why;		/* expected in the message */
};

static void
test_malformed(void **state)
{
	static char longlabel[400], longid[300], longuri[CA_KEY_URI_MAX + 40];
	static const struct bad bad[] = {
		{ "pkcs11:token=mica;object=%4", "bad value of \"object\"" },
		{ "pkcs11:token=mica;object=ab%", "bad value of \"object\"" },
		{ "pkcs11:token=mica;object=%zz", "bad value of \"object\"" },
		{ "pkcs11:token=mica;object=a%00b", "bad value of \"object\"" },
		{ "pkcs11:token=mica;id=%0g", "bad value of \"id\"" },
		{ "pkcs11:token=mica;foo=bar", "unknown path attribute \"foo\"" },
		{ "pkcs11:token=mica;objectca", "path attribute without '='" },
		{ "pkcs11:token=mica;object=ca;type=public",
		    "type must be private" },
		{ "pkcs11:token=mica", "names no key" },
		{ "pkcs11:", "names no key" },
		{ "pkcs11:;;;", "names no key" },
		{ "pkcs11:token=mica;object=ca?pin-value=" SECRET
		    "&pin-source=file:/x", "one PIN only" },
		{ "pkcs11:token=mica;object=ca?pin-source=file:/x&pin-value="
		    SECRET, "one PIN only" },
		{ "pkcs11:token=mica;object=ca?pin-value=" SECRET "&foo=1",
		    "unknown query attribute \"foo\"" },
		{ "pkcs11:token=mica;object=ca?pin-value", "query attribute "
		    "without '='" },
		{ "pkcs11:token=mica;object=ca?pin-value=%" SECRET,
		    "bad value of \"pin-value\"" },
		{ "pkcs11:token=mica;object=ca?pin-source=relative/pin",
		    "absolute file name" },
		{ "pkcs11:token=mica;object=ca", "no PIN" },
		{ "pkcs11:token=mica;object=ca?pin-source=file:/nonexistent/"
		    "pin", "PIN file /nonexistent/pin: No such file" },
		{ "pkcs11:token=mica;object=ca?pin-value=" SECRET,
		    "which PKCS#11 module?" },
		{ longlabel, "bad value of \"object\"" },
		{ longid, "bad value of \"id\"" },
		{ longuri, "not a pkcs11: URI (RFC 7512) or longer" },
	};
	char err[CA_ERR_MAX];
	EVP_PKEY *key;
	size_t i;
	int nf;

	(void)state;
	ca_key_pkcs11_module(NULL);
	snprintf(longlabel, sizeof(longlabel), "pkcs11:token=mica;object=");
	memset(longlabel + strlen(longlabel), 'a', 300);
	snprintf(longid, sizeof(longid), "pkcs11:token=mica;id=");
	for (i = 0; i < 65; i++)
		strcat(longid, "%01");
	snprintf(longuri, sizeof(longuri), "pkcs11:token=mica;object=");
	memset(longuri + strlen(longuri), 'b', CA_KEY_URI_MAX);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(err, 0, sizeof(err));
		key = (EVP_PKEY *)&nf;	/* must be reset to NULL */
		nf = 7;
		if (ca_key_token_load(&key, bad[i].uri, &nf, err,
		    sizeof(err)) != 0 || strstr(err, bad[i].why) == NULL ||
		    strstr(err, SECRET) != NULL) {
			print_error("case %zu: %.80s: got \"%s\", wanted "
			    "\"%s\"\n", i, bad[i].uri, err, bad[i].why);
			fail();
		}
		assert_null(key);
		assert_int_equal(nf, 0);
		/* ca_key_read takes the same URIs (passphrase unused) */
		memset(err, 0, sizeof(err));
		assert_int_equal(ca_key_read(&key, bad[i].uri, "x", err,
		    sizeof(err)), 0);
		assert_non_null(strstr(err, bad[i].why));
		assert_null(strstr(err, SECRET));
		/* and a key can be made from none of them */
		assert_int_equal(ca_key_token_generate(bad[i].uri, NULL, err,
		    sizeof(err)), 0);
		assert_null(strstr(err, SECRET));
	}
}

static void
test_pin_file(void **state)
{
	char dir[] = "/tmp/mica-test-p11.XXXXXX", pin[128], uri[256];
	char err[CA_ERR_MAX];
	EVP_PKEY *key = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pin, sizeof(pin), "%s/pin", dir);
	assert_non_null(f = fopen(pin, "w"));
	fputs(SECRET "\n", f);
	fclose(f);
	snprintf(uri, sizeof(uri), "pkcs11:token=mica;object=ca"
	    "?pin-source=file:%s", pin);
	/* readable by others: refused, as a key file would be */
	assert_int_equal(chmod(pin, 0644), 0);
	assert_int_equal(ca_key_token_load(&key, uri, NULL, err, sizeof(err)),
	    0);
	assert_non_null(strstr(err, "is accessible by group or others"));
	/* 0600: read; then no module is the next refusal */
	assert_int_equal(chmod(pin, 0600), 0);
	ca_key_pkcs11_module("");
	assert_int_equal(ca_key_token_load(&key, uri, NULL, err, sizeof(err)),
	    0);
	assert_non_null(strstr(err, "which PKCS#11 module?"));
	assert_null(strstr(err, SECRET));
	/* empty */
	assert_non_null(f = fopen(pin, "w"));
	fclose(f);
	assert_int_equal(ca_key_token_load(&key, uri, NULL, err, sizeof(err)),
	    0);
	assert_non_null(strstr(err, "is empty"));
	/* longer than a PIN may be, no newline: refused, not cut */
	assert_non_null(f = fopen(pin, "w"));
	for (int i = 0; i < 300; i++)
		fputc('7', f);
	fclose(f);
	assert_int_equal(ca_key_token_load(&key, uri, NULL, err, sizeof(err)),
	    0);
	assert_non_null(strstr(err, "the PIN is too long (at most 255"));
	assert_null(strstr(err, "7777"));
	/* making a key: Ed25519 is not offered in a token */
	assert_int_equal(ca_key_token_generate(uri, "ed25519", err,
	    sizeof(err)), 0);
	assert_non_null(strstr(err, "cannot be made in a token"));
	unlink(pin);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_uri),
		cmocka_unit_test(test_display),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_pin_file),
	};

	log_init("test_sign_key", LOG_LVL_ERR);
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
