/*
 * test_auth.c - TOTP (RFC 6238 appendix B, oathtool agreement, replay
 * rule), base32 (RFC 4648 section 10), otpauth URI, argon2id hashing
 * with small limits, the dummy hash, and the login decision.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include <unistd.h>
#include "ca/auth.h"
#include "common/totpseal.h"
#include "store/store.h"

#define OPS	1		/* crypto_pwhash_OPSLIMIT_MIN */
#define MEM	8192		/* crypto_pwhash_MEMLIMIT_MIN */

static const uint8_t rfc_key[] = "12345678901234567890";

/* RFC 6238 appendix B, SHA-1 column. */
static const struct {
	int64_t		t;
	uint32_t	code8;
} rfc_vec[] = {
	{ 59, 94287082 },
	{ 1111111109, 7081804 },
	{ 1111111111, 14050471 },
	{ 1234567890, 89005924 },
	{ 2000000000, 69279037 },
	{ 20000000000LL, 65353130 },
};

static void
test_totp_rfc6238(void **state)
{
	uint32_t	v;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(rfc_vec) / sizeof(rfc_vec[0]); i++) {
		assert_true(auth_hotp(&v, rfc_key, 20,
		    auth_totp_step(rfc_vec[i].t), 8));
		assert_int_equal(v, rfc_vec[i].code8);
		assert_true(auth_hotp(&v, rfc_key, 20,
		    auth_totp_step(rfc_vec[i].t), 6));
		assert_int_equal(v, rfc_vec[i].code8 % 1000000);
	}
	assert_int_equal(auth_totp_step(59), 1);
	assert_int_equal(auth_totp_step(60), 2);
	assert_int_equal(auth_totp_step(-5), 0);
	assert_false(auth_hotp(&v, rfc_key, 20, 1, 5));
	assert_false(auth_hotp(&v, rfc_key, 0, 1, 6));
}

static void
test_totp_oathtool(void **state)
{
	static const int64_t	 times[] = { 59, 1111111109, 1700000000,
	    1700000029, 1700000030 };
	uint8_t			 key[AUTH_TOTP_SECRET_LEN];
	char			 b32[64], cmd[256], line[64];
	uint32_t		 v;
	size_t			 i;
	FILE			*p;
	int			 round;

	(void)state;
	for (round = 0; round < 3; round++) {
		auth_totp_secret_new(key);
		assert_true(auth_base32_encode(b32, sizeof(b32), key,
		    sizeof(key), 0));
		assert_int_equal(strlen(b32), 32);
		for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
			snprintf(cmd, sizeof(cmd), "oathtool --totp -b %s "
			    "--now '@%lld'", b32, (long long)times[i]);
			p = popen(cmd, "r");
			assert_non_null(p);
			assert_non_null(fgets(line, sizeof(line), p));
			assert_int_equal(pclose(p), 0);
			line[strcspn(line, "\n")] = '\0';
			assert_int_equal(strlen(line), 6);
			assert_true(auth_hotp(&v, key, sizeof(key),
			    auth_totp_step(times[i]), 6));
			assert_int_equal(v, strtoul(line, NULL, 10));
		}
	}
}

static void
code_for(char out[7], uint64_t step)
{
	uint32_t	v;

	assert_true(auth_hotp(&v, rfc_key, 20, step, 6));
	snprintf(out, 7, "%06u", (unsigned)v);
}

static void
test_totp_window_and_replay(void **state)
{
	const int64_t	 now = 1111111109;	/* step 37037036 */
	const uint64_t	 t = 37037036;
	uint64_t	 step;
	char		 c[7];

	(void)state;
	assert_int_equal(auth_totp_step(now), t);
	assert_false(auth_totp_step_fresh(5, 5));
	assert_false(auth_totp_step_fresh(4, 5));
	assert_true(auth_totp_step_fresh(6, 5));

	code_for(c, t);
	step = 0;
	assert_int_equal(auth_totp_verify(rfc_key, 20, c, now, 0, &step),
	    AUTH_TOTP_OK);
	assert_int_equal(step, t);
	/* The same step again is a replay; so is any older one. */
	assert_int_equal(auth_totp_verify(rfc_key, 20, c, now, t, &step),
	    AUTH_TOTP_REPLAY);
	code_for(c, t - 1);
	assert_int_equal(auth_totp_verify(rfc_key, 20, c, now, 0, &step),
	    AUTH_TOTP_OK);
	assert_int_equal(step, t - 1);
	assert_int_equal(auth_totp_verify(rfc_key, 20, c, now, t, &step),
	    AUTH_TOTP_REPLAY);
	code_for(c, t + 1);
	assert_int_equal(auth_totp_verify(rfc_key, 20, c, now, t, &step),
	    AUTH_TOTP_OK);
	assert_int_equal(step, t + 1);
	code_for(c, t + 2);
	assert_int_equal(auth_totp_verify(rfc_key, 20, c, now, 0, &step),
	    AUTH_TOTP_WRONG);
	code_for(c, t - 2);
	assert_int_equal(auth_totp_verify(rfc_key, 20, c, now, 0, &step),
	    AUTH_TOTP_WRONG);
	/* Malformed codes. */
	assert_int_equal(auth_totp_verify(rfc_key, 20, "12345", now, 0, &step),
	    AUTH_TOTP_WRONG);
	assert_int_equal(auth_totp_verify(rfc_key, 20, "1234567", now, 0,
	    &step), AUTH_TOTP_WRONG);
	assert_int_equal(auth_totp_verify(rfc_key, 20, "08180a", now, 0,
	    &step), AUTH_TOTP_WRONG);
	assert_int_equal(auth_totp_verify(rfc_key, 20, NULL, now, 0, &step),
	    AUTH_TOTP_WRONG);
}

static void
test_base32_rfc4648(void **state)
{
	static const char *const vec[][3] = {
		{ "", "", "" },
		{ "f", "MY======", "MY" },
		{ "fo", "MZXQ====", "MZXQ" },
		{ "foo", "MZXW6===", "MZXW6" },
		{ "foob", "MZXW6YQ=", "MZXW6YQ" },
		{ "fooba", "MZXW6YTB", "MZXW6YTB" },
		{ "foobar", "MZXW6YTBOI======", "MZXW6YTBOI" },
	};
	char	 out[64];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		assert_true(auth_base32_encode(out, sizeof(out),
		    (const uint8_t *)vec[i][0], strlen(vec[i][0]), 1));
		assert_string_equal(out, vec[i][1]);
		assert_true(auth_base32_encode(out, sizeof(out),
		    (const uint8_t *)vec[i][0], strlen(vec[i][0]), 0));
		assert_string_equal(out, vec[i][2]);
	}
	assert_true(auth_base32_encode(out, sizeof(out), rfc_key, 20, 1));
	assert_string_equal(out, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	/* "foobar" padded needs 17 bytes with the NUL. */
	assert_false(auth_base32_encode(out, 16, (const uint8_t *)"foobar",
	    6, 1));
	assert_true(auth_base32_encode(out, 17, (const uint8_t *)"foobar",
	    6, 1));
}

static void
test_otpauth_uri(void **state)
{
	char	out[256];

	(void)state;
	assert_true(auth_otpauth_uri(out, sizeof(out), "alice", rfc_key, 20));
	assert_string_equal(out, "otpauth://totp/mica:alice?secret="
	    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=mica");
	assert_true(auth_otpauth_uri(out, sizeof(out), "a b/c", rfc_key, 20));
	assert_string_equal(out, "otpauth://totp/mica:a%20b%2Fc?secret="
	    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=mica");
	assert_false(auth_otpauth_uri(out, 40, "alice", rfc_key, 20));
}

static void
test_pwhash(void **state)
{
	char	h1[AUTH_PWHASH_LEN], h2[AUTH_PWHASH_LEN], dummy[AUTH_PWHASH_LEN];
	char	bad[AUTH_PWHASH_LEN];

	(void)state;
	assert_true(auth_pwhash(h1, "correct horse", 13, OPS, MEM));
	assert_int_equal(strncmp(h1, "$argon2id$v=19$m=8,t=1,p=1$", 27), 0);
	assert_true(auth_pwverify(h1, "correct horse", 13));
	assert_false(auth_pwverify(h1, "correct horsE", 13));
	assert_false(auth_pwverify(h1, "correct hors", 12));
	/* Salted: the same password hashes differently. */
	assert_true(auth_pwhash(h2, "correct horse", 13, OPS, MEM));
	assert_string_not_equal(h1, h2);
	/* Limits below libsodium's minimum are refused. */
	assert_false(auth_pwhash(h2, "x", 1, 0, MEM));
	assert_false(auth_pwhash(h2, "x", 1, OPS, 1024));
	/* Garbage or unterminated hash strings never verify. */
	assert_false(auth_pwverify("", "x", 1));
	assert_false(auth_pwverify("$argon2id$v=19$garbage", "x", 1));
	memset(bad, 'a', sizeof(bad));
	assert_false(auth_pwverify(bad, "x", 1));
	assert_false(auth_pwverify(NULL, "x", 1));

	/* The dummy hash has the same algorithm and cost and matches
	 * nothing a client could send. */
	assert_true(auth_dummy_hash(dummy, OPS, MEM));
	assert_int_equal(strncmp(dummy, h1, 27), 0);
	assert_false(auth_pwverify(dummy, "correct horse", 13));
	assert_false(auth_pwverify(dummy, "", 0));
}

static struct totpseal_key *tkey;

static void
mk_account(struct account_rec *a)
{
	static const uint8_t k[TOTPSEAL_KEY_LEN] = { 1, 2, 3 };

	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "alice");
	if (tkey == NULL)
		assert_non_null(tkey = totpseal_key_from(k));
	assert_true(totpseal_seal(tkey, a->name, a->totp_sealed,
	    sizeof(a->totp_sealed), &a->totp_sealed_len, rfc_key, 20));
}

static void
test_login_apply(void **state)
{
	struct auth_policy pol = { 3, 900, NULL };
	const int64_t	 now = 1111111109;
	const uint64_t	 t = 37037036;
	struct account_rec a;
	const char	*why = NULL;
	char		 c[7], cprev[7];

	(void)state;
	mk_account(&a);
	pol.totp_key = tkey;
	code_for(c, t);
	code_for(cprev, t - 1);

	/* Wrong password with the right code: a failure, step not used. */
	assert_int_equal(auth_login_apply(&a, 0, c, now, &pol, &why),
	    AUTH_LOGIN_FAILED);
	assert_string_equal(why, "wrong password");
	assert_int_equal(a.failed, 1);
	assert_int_equal(a.last_totp_step, 0);
	assert_int_equal(a.locked_until, 0);

	/* Success resets the counter and burns the step. */
	assert_int_equal(auth_login_apply(&a, 1, c, now, &pol, &why),
	    AUTH_LOGIN_OK);
	assert_int_equal(a.failed, 0);
	assert_int_equal(a.last_totp_step, t);

	/* The same code again (a racing second login): replay, with its
	 * own answer and not counted; the older step likewise. */
	assert_int_equal(auth_login_apply(&a, 1, c, now, &pol, &why),
	    AUTH_LOGIN_REPLAY);
	assert_string_equal(why, "replayed code, not counted");
	assert_int_equal(a.failed, 0);
	assert_int_equal(auth_login_apply(&a, 1, cprev, now, &pol, &why),
	    AUTH_LOGIN_REPLAY);
	assert_int_equal(a.failed, 0);
	/* A replayed code with a wrong password is a plain failure. */
	assert_int_equal(auth_login_apply(&a, 0, c, now, &pol, &why),
	    AUTH_LOGIN_FAILED);
	assert_int_equal(a.failed, 1);
	assert_int_equal(auth_login_apply(&a, 1, "999999", now, &pol, &why),
	    AUTH_LOGIN_FAILED);
	assert_string_equal(why, "wrong code");
	assert_int_equal(a.failed, 2);
	assert_int_equal(a.locked_until, 0);

	/* Third failure locks for lockout_seconds. */
	assert_int_equal(auth_login_apply(&a, 1, "000000", now, &pol, &why),
	    AUTH_LOGIN_FAILED);
	assert_int_equal(a.failed, 3);
	assert_int_equal(a.locked_until, now + 900);

	/* Locked: even good credentials are refused, record unchanged. */
	code_for(c, t + 1);
	assert_int_equal(auth_login_apply(&a, 1, c, now + 10, &pol, &why),
	    AUTH_LOGIN_LOCKED);
	assert_string_equal(why, "account locked");
	assert_int_equal(a.failed, 3);
	assert_int_equal(a.last_totp_step, t);

	/* After the lock ran out, one failure does not lock again. */
	assert_int_equal(auth_login_apply(&a, 0, c, now + 900, &pol, &why),
	    AUTH_LOGIN_FAILED);
	assert_int_equal(a.failed, 1);
	assert_int_equal(a.locked_until, 0);
	code_for(c, auth_totp_step(now + 900));
	assert_int_equal(auth_login_apply(&a, 1, c, now + 900, &pol, &why),
	    AUTH_LOGIN_OK);
	assert_int_equal(a.failed, 0);
	assert_int_equal(a.last_totp_step, auth_totp_step(now + 900));

	/* Disabled: right password and code are refused, step used up. */
	a.flags = STORE_ACCT_DISABLED;
	code_for(c, auth_totp_step(now + 930));
	assert_int_equal(auth_login_apply(&a, 1, c, now + 930, &pol, &why),
	    AUTH_LOGIN_DISABLED);
	assert_string_equal(why, "account disabled");
	assert_int_equal(a.last_totp_step, auth_totp_step(now + 930));
	a.flags = 0;

	/* Another key, or the sealed secret moved to another name: the
	 * secret does not open; nothing is counted. */
	snprintf(a.name, sizeof(a.name), "mallory");
	code_for(c, auth_totp_step(now + 960));
	assert_int_equal(auth_login_apply(&a, 1, c, now + 960, &pol, &why),
	    AUTH_LOGIN_INTERNAL);
	assert_int_equal(a.failed, 0);
	snprintf(a.name, sizeof(a.name), "alice");
	pol.totp_key = NULL;
	assert_int_equal(auth_login_apply(&a, 1, c, now + 960, &pol, &why),
	    AUTH_LOGIN_INTERNAL);
	totpseal_key_free(tkey);
	tkey = NULL;
}

/* The password policy and the enrolment codes. */
static void
test_policy_and_codes(void **state)
{
	char why[128], code[AUTH_ENROL_CODE_TEXT], code2[AUTH_ENROL_CODE_TEXT];
	uint8_t h1[32], h2[32];
	size_t i;

	(void)state;
	assert_false(auth_password_check("alice", "short-pw1", 9, 12, why,
	    sizeof(why)));
	assert_string_equal(why, "password refused: shorter than 12 "
	    "characters ([policy] min_password_length)");
	assert_false(auth_password_check("accountname12", "AccountName12",
	    13, 12, why, sizeof(why)));
	assert_string_equal(why, "password refused: it is the account name");
	assert_true(auth_password_check("alice", "New-Horse-Battery-42", 20,
	    12, why, sizeof(why)));

	assert_true(auth_enrol_code_new(code, h1));
	assert_int_equal(strlen(code), 23);
	for (i = 0; i < 23; i++)
		assert_true(i % 6 == 5 ? code[i] == '-' :
		    (code[i] >= 'A' && code[i] <= 'Z') ||
		    (code[i] >= '2' && code[i] <= '7'));
	/* either case, dashes anywhere */
	for (i = 0; i < 23; i++)
		code2[i] = (char)(code[i] >= 'A' && code[i] <= 'Z' ?
		    code[i] - 'A' + 'a' : code[i]);
	code2[23] = '\0';
	assert_true(auth_enrol_code_hash(h2, code2));
	assert_memory_equal(h1, h2, 32);
	assert_false(auth_enrol_code_hash(h2, "AAAAA-AAAAA-AAAAA-AAAA"));
	assert_false(auth_enrol_code_hash(h2, "AAAAA-AAAAA-AAAAA-AAAAAA"));
	assert_false(auth_enrol_code_hash(h2, "AAAAA-AAAAA-AAAAA-AAAA1"));
	assert_false(auth_enrol_code_hash(h2, ""));
	assert_true(auth_enrol_code_new(code2, h2));
	assert_string_not_equal(code, code2);
}

/* Seal and open: the name is bound, a flipped bit is refused. */
static void
test_totpseal(void **state)
{
	static const uint8_t k1[TOTPSEAL_KEY_LEN] = { 9 };
	static const uint8_t k2[TOTPSEAL_KEY_LEN] = { 8 };
	struct totpseal_key *a, *b;
	uint8_t sealed[STORE_TOTP_SEALED_MAX], out[STORE_TOTP_MAX];
	size_t slen, olen;

	(void)state;
	assert_non_null(a = totpseal_key_from(k1));
	assert_non_null(b = totpseal_key_from(k2));
	assert_true(totpseal_seal(a, "alice", sealed, sizeof(sealed), &slen,
	    rfc_key, 20));
	assert_int_equal(slen, 20 + TOTPSEAL_OVERHEAD);
	assert_null(memmem(sealed, slen, rfc_key, 20));
	assert_true(totpseal_open(a, "alice", out, sizeof(out), &olen,
	    sealed, slen));
	assert_int_equal(olen, 20);
	assert_memory_equal(out, rfc_key, 20);
	assert_false(totpseal_open(a, "bob", out, sizeof(out), &olen, sealed,
	    slen));
	assert_false(totpseal_open(b, "alice", out, sizeof(out), &olen,
	    sealed, slen));
	sealed[slen - 1] ^= 1;
	assert_false(totpseal_open(a, "alice", out, sizeof(out), &olen,
	    sealed, slen));
	assert_false(totpseal_open(a, "alice", out, sizeof(out), &olen,
	    sealed, TOTPSEAL_OVERHEAD - 1));
	/* too small an output */
	assert_false(totpseal_seal(a, "alice", sealed, 20 + TOTPSEAL_OVERHEAD
	    - 1, &slen, rfc_key, 20));
	totpseal_key_free(a);
	totpseal_key_free(b);
}

/* The key file: created 0600 with 32 bytes, loose modes and bad sizes
 * refused. */
static void
test_totpseal_file(void **state)
{
	char dir[] = "/tmp/mica-totpkey-XXXXXX", path[256], err[512];
	struct totpseal_key *k = NULL;
	struct stat sb;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/totp.key", dir);
	assert_int_equal(totpseal_key_load(&k, path, 0, err, sizeof(err)),
	    TOTPSEAL_FAILED);
	assert_int_equal(totpseal_key_load(&k, path, 1, err, sizeof(err)),
	    TOTPSEAL_CREATED);
	totpseal_key_free(k);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, TOTPSEAL_KEY_LEN);
	assert_int_equal(totpseal_key_load(&k, path, 1, err, sizeof(err)),
	    TOTPSEAL_LOADED);
	totpseal_key_free(k);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(totpseal_key_load(&k, path, 0, err, sizeof(err)),
	    TOTPSEAL_FAILED);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_non_null(f = fopen(path, "a"));
	fputc('x', f);
	fclose(f);
	assert_int_equal(totpseal_key_load(&k, path, 0, err, sizeof(err)),
	    TOTPSEAL_FAILED);
	assert_non_null(strstr(err, "33 bytes, want 32"));
	assert_null(k);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totpseal),
		cmocka_unit_test(test_policy_and_codes),
		cmocka_unit_test(test_totpseal_file),
		cmocka_unit_test(test_totp_rfc6238),
		cmocka_unit_test(test_totp_oathtool),
		cmocka_unit_test(test_totp_window_and_replay),
		cmocka_unit_test(test_base32_rfc4648),
		cmocka_unit_test(test_otpauth_uri),
		cmocka_unit_test(test_pwhash),
		cmocka_unit_test(test_login_apply),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
