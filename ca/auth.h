/*
 * auth.h - subscriber authentication: argon2id passwords (libsodium),
 * TOTP codes (RFC 6238 over RFC 4226 HOTP, HMAC-SHA-1, 30 s steps,
 * 6 digits, steps t-1..t+1 accepted, a step never accepted twice),
 * base32 (RFC 4648) and otpauth:// URIs for the admin, and the login
 * decision applied to an account record inside a store transaction.
 *
 * Pure functions: no store or event-loop access here, so mica-admin can
 * link them.  The login flow itself (worker thread + write transaction)
 * lives in ca/listener.c.
 */
#ifndef MICA_AUTH_H
#define MICA_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct account_rec;
struct totpseal_key;

#define AUTH_TOTP_PERIOD	30
#define AUTH_TOTP_DIGITS	6
#define AUTH_TOTP_SECRET_LEN	20	/* RFC 4226 recommends 160 bits */
#define AUTH_PWHASH_LEN		128	/* crypto_pwhash_STRBYTES */
#define AUTH_CODE_LEN		6

/*
 * RFC 4226 HOTP: HMAC-SHA-1(key, counter), dynamic truncation, modulo
 * 10^digits (digits 6..8).  Returns 1 and *out, or 0 on error.
 */
int	auth_hotp(uint32_t *out, const uint8_t *key, size_t key_len,
	    uint64_t counter, int digits);
/* RFC 6238 time step T = floor(now / 30) (0 for negative times). */
uint64_t auth_totp_step(int64_t now);
/* The replay rule: 1 if step may be used after last_step (step > last). */
int	auth_totp_step_fresh(uint64_t step, uint64_t last_step);

enum auth_totp_rc {
	AUTH_TOTP_OK = 0,
	AUTH_TOTP_WRONG,	/* not a 6-digit code of steps t-1..t+1 */
	AUTH_TOTP_REPLAY,	/* right code, but its step was used already */
};

/*
 * Checks a 6-digit text code against steps t-1, t, t+1 of now, compared
 * in constant time.  On AUTH_TOTP_OK *out_step is the matched step (to be
 * stored as the account's last_totp_step).
 */
enum auth_totp_rc auth_totp_verify(const uint8_t *key, size_t key_len,
		    const char *code, int64_t now, uint64_t last_step,
		    uint64_t *out_step);

/* Fills out with AUTH_TOTP_SECRET_LEN random bytes (libsodium). */
void	auth_totp_secret_new(uint8_t out[AUTH_TOTP_SECRET_LEN]);
/*
 * RFC 4648 base32 (uppercase alphabet), with '=' padding when pad is 1.
 * Returns 1, or 0 when out (NUL included) is too small.
 */
int	auth_base32_encode(char *out, size_t out_len, const uint8_t *in,
	    size_t len, int pad);
/*
 * "otpauth://totp/mica:NAME?secret=BASE32&issuer=mica" (NAME
 * percent-encoded, secret unpadded).  Returns 1, or 0 if out is small.
 */
int	auth_otpauth_uri(char *out, size_t out_len, const char *name,
	    const uint8_t *secret, size_t secret_len);

/*
 * argon2id (crypto_pwhash_ALG_ARGON2ID13) string of pw with the given
 * limits.  Returns 1, or 0 (out of memory, limits out of range).
 */
int	auth_pwhash(char out[AUTH_PWHASH_LEN], const char *pw, size_t pw_len,
	    uint64_t ops, size_t mem);
/* 1 if pw matches the argon2id string, 0 otherwise (also bad strings). */
int	auth_pwverify(const char *hash, const char *pw, size_t pw_len);
/*
 * A hash of a random password with the same limits, verified in place of
 * an unknown account's hash so that the cost and the error are the same.
 * Returns 1, or 0 on failure.
 */
int	auth_dummy_hash(char out[AUTH_PWHASH_LEN], uint64_t ops, size_t mem);

enum auth_login_rc {
	AUTH_LOGIN_OK = 0,
	AUTH_LOGIN_FAILED,	/* wrong password, wrong code, or unknown
				 * account: one answer for all */
	AUTH_LOGIN_LOCKED,	/* locked_until is in the future */
	AUTH_LOGIN_INTERNAL,	/* store failure, secret does not open */
	AUTH_LOGIN_REPLAY,	/* right password, the code's step was used
				 * already: not counted as a failure */
	AUTH_LOGIN_DISABLED,	/* right password and code, account disabled
				 * by an administrator */
};

struct auth_policy {
	int	max_failures;		/* lock after this many; >= 1 */
	int	lockout_seconds;
	const struct totpseal_key *totp_key;	/* opens the TOTP secrets */
};

/*
 * Opens the account's sealed TOTP secret (common/totpseal.h) into
 * sodium_malloc'd memory: *out (sodium_free it; it wipes) and *out_len.
 * Returns 1, or 0 when it does not open (wrong key, altered record) or
 * the record holds a clear secret (a store not upgraded).
 */
int	auth_totp_open(uint8_t **out, size_t *out_len,
	    const struct totpseal_key *key, const struct account_rec *acct);
/*
 * Makes a new TOTP secret for acct: the clear secret goes to
 * out[AUTH_TOTP_SECRET_LEN] (for showing once; the caller wipes it), the
 * sealed one into acct.  Returns 1, or 0.
 */
int	auth_totp_new_sealed(uint8_t out[AUTH_TOTP_SECRET_LEN],
	    const struct totpseal_key *key, struct account_rec *acct);

/*
 * Applies one login attempt to the freshly re-read account record acct
 * (inside the write transaction): locked -> AUTH_LOGIN_LOCKED, record
 * unchanged; an expired lock is cleared first; password_ok == 0 or a
 * wrong or replayed code -> failed++, and at max_failures locked_until =
 * now + lockout; success -> failed = 0, last_totp_step = matched step.
 * The right password with a code whose step was used already ->
 * AUTH_LOGIN_REPLAY, not counted; the right password and code on a
 * disabled account -> AUTH_LOGIN_DISABLED (the step is used up).  The
 * secret is opened with pol->totp_key into secure memory and wiped.
 * *out_detail (static text, no secret) says why, for the audit record.
 */
enum auth_login_rc auth_login_apply(struct account_rec *acct,
		    int password_ok, const char *code, int64_t now,
		    const struct auth_policy *pol, const char **out_detail);

/*
 * The password policy ([policy] min_password_length; never the account
 * name, in any case).  Returns 1, or 0 with the rule in why (no secret).
 */
int	auth_password_check(const char *name, const char *pw, size_t pw_len,
	    int min_len, char *why, size_t why_len);

/* Enrolment codes: 20 base32 letters shown as XXXXX-XXXXX-XXXXX-XXXXX
 * (100 bits); only their BLAKE2b-256 is stored. */
#define AUTH_ENROL_CODE_TEXT	24	/* 23 characters and the NUL */
/* A new random code and its hash.  Returns 1, or 0. */
int	auth_enrol_code_new(char out[AUTH_ENROL_CODE_TEXT],
	    uint8_t hash[32]);
/*
 * The hash of a code as typed (either case, '-' anywhere ignored).
 * Returns 1, or 0 when it is not 20 base32 letters.
 */
int	auth_enrol_code_hash(uint8_t hash[32], const char *code);

#endif
