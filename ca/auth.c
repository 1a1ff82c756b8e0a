/*
 * auth.c - argon2id passwords, RFC 6238 TOTP with a replay guard,
 * RFC 4648 base32, otpauth URIs, and the per-attempt login decision.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "ca/auth.h"
#include "common/log.h"
#include "common/totpseal.h"
#include "store/store.h"

int
auth_hotp(uint32_t *out, const uint8_t *key, size_t key_len,
    uint64_t counter, int digits)
{
	uint8_t		 msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int	 mac_len = 0, off;
	uint32_t	 bin, mod = 1;
	int		 i, rc = 0;

	if (digits < 6 || digits > 8 || key_len == 0 || key_len > INT32_MAX)
		goto out;
	for (i = 7; i >= 0; i--) {
		msg[i] = counter & 0xff;
		counter >>= 8;
	}
	if (HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof(msg), mac,
	    &mac_len) == NULL || mac_len != 20) {
		log_ssl("HOTP: HMAC-SHA-1");
		goto out;
	}
	/* RFC 4226 section 5.3: dynamic truncation. */
	off = mac[19] & 0x0f;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) |
	    ((uint32_t)mac[off + 1] << 16) | ((uint32_t)mac[off + 2] << 8) |
	    (uint32_t)mac[off + 3];
	for (i = 0; i < digits; i++)
		mod *= 10;
	*out = bin % mod;
	rc = 1;
out:
	sodium_memzero(mac, sizeof(mac));
	return rc;
}

uint64_t
auth_totp_step(int64_t now)
{
	if (now < 0)
		return 0;
	return (uint64_t)now / AUTH_TOTP_PERIOD;
}

int
auth_totp_step_fresh(uint64_t step, uint64_t last_step)
{
	return step > last_step;
}

static int
code_is_valid(const char *code)
{
	size_t	i;

	if (code == NULL || strlen(code) != AUTH_CODE_LEN)
		return 0;
	for (i = 0; i < AUTH_CODE_LEN; i++)
		if (code[i] < '0' || code[i] > '9')
			return 0;
	return 1;
}

enum auth_totp_rc
auth_totp_verify(const uint8_t *key, size_t key_len, const char *code,
    int64_t now, uint64_t last_step, uint64_t *out_step)
{
	enum auth_totp_rc	 rc = AUTH_TOTP_WRONG;
	char			 want[AUTH_CODE_LEN + 1];
	uint64_t		 t, step;
	uint32_t		 v;
	int			 d;

	if (!code_is_valid(code))
		goto out;
	t = auth_totp_step(now);
	/* Check all three steps whatever matches, so timing says nothing. */
	for (d = -1; d <= 1; d++) {
		if (d < 0 && t == 0)
			continue;
		step = t + (uint64_t)(int64_t)d;
		if (!auth_hotp(&v, key, key_len, step, AUTH_TOTP_DIGITS))
			continue;
		snprintf(want, sizeof(want), "%06u", (unsigned)v);
		if (sodium_memcmp(want, code, AUTH_CODE_LEN) != 0)
			continue;
		if (!auth_totp_step_fresh(step, last_step)) {
			if (rc != AUTH_TOTP_OK)
				rc = AUTH_TOTP_REPLAY;
			continue;
		}
		if (rc != AUTH_TOTP_OK) {
			rc = AUTH_TOTP_OK;
			*out_step = step;
		}
	}
out:
	sodium_memzero(want, sizeof(want));
	return rc;
}

void
auth_totp_secret_new(uint8_t out[AUTH_TOTP_SECRET_LEN])
{
	randombytes_buf(out, AUTH_TOTP_SECRET_LEN);
}

int
auth_base32_encode(char *out, size_t out_len, const uint8_t *in, size_t len,
    int pad)
{
	static const char	 alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	size_t			 i, n = 0, need;
	uint32_t		 buf = 0;
	int			 bits = 0;

	need = (len + 4) / 5 * 8;
	if (!pad)
		need = (len * 8 + 4) / 5;
	if (len > SIZE_MAX / 8 - 8 || out_len < need + 1)
		return 0;
	for (i = 0; i < len; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[n++] = alpha[(buf >> (bits - 5)) & 0x1f];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[n++] = alpha[(buf << (5 - bits)) & 0x1f];
	while (pad && n % 8 != 0)
		out[n++] = '=';
	out[n] = '\0';
	return 1;
}

static int
pct_encode(char *out, size_t out_len, const char *s)
{
	static const char	 hexd[] = "0123456789ABCDEF";
	size_t			 n = 0;
	unsigned char		 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			if (n + 1 >= out_len)
				return 0;
			out[n++] = (char)c;
		} else {
			if (n + 3 >= out_len)
				return 0;
			out[n++] = '%';
			out[n++] = hexd[c >> 4];
			out[n++] = hexd[c & 0xf];
		}
	}
	if (n >= out_len)
		return 0;
	out[n] = '\0';
	return 1;
}

int
auth_otpauth_uri(char *out, size_t out_len, const char *name,
    const uint8_t *secret, size_t secret_len)
{
	char	 b32[(STORE_TOTP_MAX * 8 + 4) / 5 + 1];
	char	 ename[3 * STORE_NAME_MAX + 1];
	int	 n, rc = 0;

	if (secret_len > STORE_TOTP_MAX || strlen(name) > STORE_NAME_MAX)
		goto out;
	if (!auth_base32_encode(b32, sizeof(b32), secret, secret_len, 0) ||
	    !pct_encode(ename, sizeof(ename), name))
		goto out;
	n = snprintf(out, out_len, "otpauth://totp/mica:%s?secret=%s"
	    "&issuer=mica", ename, b32);
	if (n < 0 || (size_t)n >= out_len)
		goto out;
	rc = 1;
out:
	sodium_memzero(b32, sizeof(b32));
	return rc;
}

int
auth_pwhash(char out[AUTH_PWHASH_LEN], const char *pw, size_t pw_len,
    uint64_t ops, size_t mem)
{
	if (ops < crypto_pwhash_OPSLIMIT_MIN ||
	    ops > crypto_pwhash_OPSLIMIT_MAX ||
	    mem < crypto_pwhash_MEMLIMIT_MIN ||
	    mem > crypto_pwhash_MEMLIMIT_MAX) {
		log_warnx("argon2id: limits ops=%llu mem=%zu out of range",
		    (unsigned long long)ops, mem);
		return 0;
	}
	if (crypto_pwhash_str_alg(out, pw, pw_len, ops, mem,
	    crypto_pwhash_ALG_ARGON2ID13) != 0) {
		log_warnx("argon2id: hashing failed (out of memory?)");
		return 0;
	}
	return 1;
}

int
auth_pwverify(const char *hash, const char *pw, size_t pw_len)
{
	if (hash == NULL || memchr(hash, '\0', AUTH_PWHASH_LEN) == NULL)
		return 0;
	return crypto_pwhash_str_verify(hash, pw, pw_len) == 0;
}

int
auth_dummy_hash(char out[AUTH_PWHASH_LEN], uint64_t ops, size_t mem)
{
	uint8_t	 pw[32];
	int	 rc;

	randombytes_buf(pw, sizeof(pw));
	rc = auth_pwhash(out, (const char *)pw, sizeof(pw), ops, mem);
	sodium_memzero(pw, sizeof(pw));
	return rc;
}

int
auth_totp_open(uint8_t **out, size_t *out_len, const struct totpseal_key *key,
    const struct account_rec *acct)
{
	uint8_t	*p = NULL;
	int	 rc = 0;

	*out = NULL;
	*out_len = 0;
	if (acct->totp_clear || acct->totp_sealed_len < TOTPSEAL_OVERHEAD)
		goto out;
	if ((p = sodium_malloc(STORE_TOTP_MAX)) == NULL)
		goto out;
	if (!totpseal_open(key, acct->name, p, STORE_TOTP_MAX, out_len,
	    acct->totp_sealed, acct->totp_sealed_len))
		goto out;
	*out = p;
	p = NULL;
	rc = 1;
out:
	if (p != NULL)
		sodium_free(p);
	return rc;
}

int
auth_totp_new_sealed(uint8_t out[AUTH_TOTP_SECRET_LEN],
    const struct totpseal_key *key, struct account_rec *acct)
{
	auth_totp_secret_new(out);
	acct->totp_clear = 0;
	return totpseal_seal(key, acct->name, acct->totp_sealed,
	    sizeof(acct->totp_sealed), &acct->totp_sealed_len, out,
	    AUTH_TOTP_SECRET_LEN);
}

/* Counts one failure; locks the account at max_failures. */
static void
login_failed(struct account_rec *acct, int64_t now,
    const struct auth_policy *pol, int password_ok, const char **out_detail)
{
	int	 max_fail;

	*out_detail = !password_ok ? "wrong password" : "wrong code";
	if (acct->failed < UINT32_MAX)
		acct->failed++;
	max_fail = pol->max_failures > 0 ? pol->max_failures : 1;
	if (acct->failed >= (uint32_t)max_fail) {
		acct->locked_until = now + pol->lockout_seconds;
		*out_detail = !password_ok ? "wrong password, locked" :
		    "wrong code, locked";
	}
}

enum auth_login_rc
auth_login_apply(struct account_rec *acct, int password_ok,
    const char *code, int64_t now, const struct auth_policy *pol,
    const char **out_detail)
{
	enum auth_totp_rc	 trc = AUTH_TOTP_WRONG;
	enum auth_login_rc	 rc = AUTH_LOGIN_FAILED;
	uint64_t		 step = 0;
	uint8_t			*secret = NULL;
	size_t			 secret_len = 0;

	if (acct->locked_until > now) {
		*out_detail = "account locked";
		return AUTH_LOGIN_LOCKED;
	}
	if (acct->locked_until != 0) {
		/* The lock has run out: start counting afresh. */
		acct->locked_until = 0;
		acct->failed = 0;
	}
	if (code_is_valid(code)) {
		if (!auth_totp_open(&secret, &secret_len, pol->totp_key,
		    acct)) {
			*out_detail = "TOTP secret does not open (wrong TOTP "
			    "key?)";
			rc = AUTH_LOGIN_INTERNAL;
			goto out;
		}
		trc = auth_totp_verify(secret, secret_len, code, now,
		    acct->last_totp_step, &step);
	}
	if (password_ok && trc == AUTH_TOTP_REPLAY) {
		*out_detail = "replayed code, not counted";
		rc = AUTH_LOGIN_REPLAY;
	} else if (password_ok && trc == AUTH_TOTP_OK) {
		acct->last_totp_step = step;
		if (acct->flags & STORE_ACCT_DISABLED) {
			*out_detail = "account disabled";
			rc = AUTH_LOGIN_DISABLED;
			goto out;
		}
		acct->failed = 0;
		*out_detail = "password and code ok";
		rc = AUTH_LOGIN_OK;
	} else
		login_failed(acct, now, pol, password_ok, out_detail);
out:
	if (secret != NULL)
		sodium_free(secret);	/* wipes */
	return rc;
}

int
auth_password_check(const char *name, const char *pw, size_t pw_len,
    int min_len, char *why, size_t why_len)
{
	size_t	 nlen = strlen(name);

	if (pw_len < (size_t)(min_len > 0 ? min_len : 1)) {
		snprintf(why, why_len, "password refused: shorter than %d "
		    "characters ([policy] min_password_length)", min_len);
		return 0;
	}
	if (pw_len == nlen && strncasecmp(pw, name, nlen) == 0) {
		snprintf(why, why_len, "password refused: it is the account "
		    "name");
		return 0;
	}
	return 1;
}

#define ENROL_CODE_LETTERS	20

int
auth_enrol_code_new(char out[AUTH_ENROL_CODE_TEXT], uint8_t hash[32])
{
	uint8_t	 raw[13];
	char	 b32[32];
	size_t	 i, o = 0;
	int	 rc = 0;

	randombytes_buf(raw, sizeof(raw));
	if (!auth_base32_encode(b32, sizeof(b32), raw, sizeof(raw), 0))
		goto out;
	for (i = 0; i < ENROL_CODE_LETTERS; i++) {
		if (i > 0 && i % 5 == 0)
			out[o++] = '-';
		out[o++] = b32[i];
	}
	out[o] = '\0';
	rc = auth_enrol_code_hash(hash, out);
out:
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(b32, sizeof(b32));
	return rc;
}

int
auth_enrol_code_hash(uint8_t hash[32], const char *code)
{
	char	 norm[ENROL_CODE_LETTERS];
	size_t	 n = 0;
	int	 c, rc = 0;

	for (; *code != '\0'; code++) {
		c = (unsigned char)*code;
		if (c == '-')
			continue;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) ||
		    n == ENROL_CODE_LETTERS)
			goto out;
		norm[n++] = (char)c;
	}
	if (n != ENROL_CODE_LETTERS)
		goto out;
	rc = crypto_generichash(hash, 32, (const unsigned char *)norm, n,
	    NULL, 0) == 0;
out:
	sodium_memzero(norm, sizeof(norm));
	return rc;
}
