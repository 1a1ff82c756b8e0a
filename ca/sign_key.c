/*
 * sign_key.c - keys kept in a PKCS#11 token (an HSM, SoftHSM2), named by
 * an RFC 7512 URI instead of a file path: "pkcs11:token=mica;object=ca
 * ?pin-source=file:/etc/mica/pin".
 *
 * Loading goes through OpenSSL and the libp11 PKCS#11 engine (Debian
 * libengine-pkcs11-openssl; OpenSSL 3's pkcs11 provider is not packaged
 * in Debian 12).  The ENGINE API is deprecated in OpenSSL 3.0: this one
 * file asks for the deprecated declarations and silences their warnings,
 * the rest of the tree stays on the 3.0 API.
 *
 * The engine is set up lazily, in the first call that loads a token key,
 * in the process that calls it: a PKCS#11 session must not cross a fork
 * (PKCS#11 v2.40 section 6.7.7), so a process that forks a signer must
 * load token keys in the child only.  A load in a process other than the
 * one that set the engine up is refused.
 *
 * The PIN comes from the URI's query (RFC 7512 section 2.3: pin-source,
 * pin-value).  It is kept in sodium_malloc memory, handed to the engine
 * for the login and cleared there after it; it is never logged: every
 * message shows the URI without its query.
 */
#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED

#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "common/log.h"
#include "ca/ca.h"

extern char **environ;

#define URI_SCHEME	"pkcs11:"
#define P11_LABEL_MAX	256
#define P11_ID_MAX	64
#define P11_PIN_MAX	256
#define P11_PATH_MAX	1024
#define PIN_ENV		"MICA_PKCS11_PIN"
#define P11_NEW_ID_LEN	16	/* CKA_ID of a key made here: random */

struct p11_uri {
	char	 path[CA_KEY_URI_MAX];	/* "pkcs11:" + path attributes */
	char	 token[P11_LABEL_MAX];	/* decoded; "" = none */
	char	 object[P11_LABEL_MAX];
	uint8_t	 id[P11_ID_MAX];
	size_t	 id_len;
	int	 has_type;
	char	 module[P11_PATH_MAX];	/* module-path; "" = default */
	char	 pin_file[P11_PATH_MAX];	/* pin-source */
	char	*pin;			/* sodium_malloc; NULL = none */
};

static struct {
	pthread_mutex_t	 mu;
	ENGINE		*eng;		/* functional reference */
	pid_t		 pid;		/* the process that set it up */
	char		 module[P11_PATH_MAX];
	char		 default_module[P11_PATH_MAX];
} E = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, "", "" };

int
ca_key_is_uri(const char *setting)
{
	return setting != NULL &&
	    strncasecmp(setting, URI_SCHEME, strlen(URI_SCHEME)) == 0;
}

void
ca_key_pkcs11_module(const char *path)
{
	pthread_mutex_lock(&E.mu);
	snprintf(E.default_module, sizeof(E.default_module), "%s",
	    path ? path : "");
	pthread_mutex_unlock(&E.mu);
}

void
ca_key_uri_display(char *out, size_t out_len, const char *uri)
{
	size_t n = strcspn(uri, "?");

	if (n > INT32_MAX)
		n = INT32_MAX;
	snprintf(out, out_len, "%.*s", (int)n, uri);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * RFC 7512 section 2.3 / RFC 3986 section 2.1: decodes the
 * percent-encoded value v[0..len) into out (at most out_max bytes, plus
 * a NUL when text).  Returns the decoded length, or -1.
 */
static long
pct_decode(uint8_t *out, size_t out_max, const char *v, size_t len, int text)
{
	size_t i, n = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		uint8_t c = (uint8_t)v[i];

		if (c == '%') {
			if (len - i < 3)
				return -1;
			if ((hi = hexval(v[i + 1])) < 0 ||
			    (lo = hexval(v[i + 2])) < 0)
				return -1;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		if (text && c == '\0')
			return -1;
		if (n + (text ? 1 : 0) >= out_max)
			return -1;
		out[n++] = c;
	}
	if (text)
		out[n] = '\0';
	return (long)n;
}

static int
attr_is(const char *a, size_t alen, const char *name)
{
	return strlen(name) == alen && strncmp(a, name, alen) == 0;
}

static void
uri_cleanup(struct p11_uri *u)
{
	if (u->pin != NULL)
		sodium_free(u->pin);
	u->pin = NULL;
}

/* One "name=value" of the path part (RFC 7512 pk11-pattr). */
static int
parse_path_attr(struct p11_uri *u, const char *a, size_t len, const char *dn,
    char *err, size_t err_len)
{
	const char *eq = memchr(a, '=', len);
	size_t nlen, vlen;
	long r = 0;

	if (eq == NULL) {
		snprintf(err, err_len, "%s: RFC 7512 section 2.3: path "
		    "attribute without '='", dn);
		return 0;
	}
	nlen = (size_t)(eq - a);
	vlen = len - nlen - 1;
	if (attr_is(a, nlen, "token"))
		r = pct_decode((uint8_t *)u->token, sizeof(u->token), eq + 1,
		    vlen, 1);
	else if (attr_is(a, nlen, "object"))
		r = pct_decode((uint8_t *)u->object, sizeof(u->object),
		    eq + 1, vlen, 1);
	else if (attr_is(a, nlen, "id")) {
		r = pct_decode(u->id, sizeof(u->id), eq + 1, vlen, 0);
		if (r >= 0)
			u->id_len = (size_t)r;
	} else if (attr_is(a, nlen, "type")) {
		u->has_type = 1;
		if (!(vlen == 7 && strncmp(eq + 1, "private", 7) == 0)) {
			snprintf(err, err_len, "%s: type must be private "
			    "(the URI names the private key)", dn);
			return 0;
		}
	} else if (!(attr_is(a, nlen, "manufacturer") ||
	    attr_is(a, nlen, "model") || attr_is(a, nlen, "serial") ||
	    attr_is(a, nlen, "library-manufacturer") ||
	    attr_is(a, nlen, "library-description") ||
	    attr_is(a, nlen, "library-version") ||
	    attr_is(a, nlen, "slot-manufacturer") ||
	    attr_is(a, nlen, "slot-description") ||
	    attr_is(a, nlen, "slot-id") ||
	    (nlen > 2 && strncmp(a, "x-", 2) == 0))) {
		snprintf(err, err_len, "%s: RFC 7512 section 2.3: unknown "
		    "path attribute \"%.*s\"", dn, (int)(nlen > 64 ? 64 : nlen),
		    a);
		return 0;
	}
	if (r < 0) {
		snprintf(err, err_len, "%s: RFC 7512 section 2.3: bad value "
		    "of \"%.*s\" (percent-encoding or length)", dn, (int)nlen,
		    a);
		return 0;
	}
	return 1;
}

/* One "name=value" of the query (RFC 7512 pk11-qattr). */
static int
parse_query_attr(struct p11_uri *u, const char *a, size_t len, const char *dn,
    char *err, size_t err_len)
{
	const char *eq = memchr(a, '=', len);
	size_t nlen, vlen;
	long r;

	if (eq == NULL) {
		snprintf(err, err_len, "%s: RFC 7512 section 2.3: query "
		    "attribute without '='", dn);
		return 0;
	}
	nlen = (size_t)(eq - a);
	vlen = len - nlen - 1;
	if (attr_is(a, nlen, "pin-value")) {
		if (u->pin != NULL || u->pin_file[0] != '\0')
			goto both;
		if ((u->pin = sodium_malloc(P11_PIN_MAX + 1)) == NULL)
			fatal("sodium_malloc");
		r = pct_decode((uint8_t *)u->pin, P11_PIN_MAX, eq + 1, vlen, 1);
	} else if (attr_is(a, nlen, "pin-source")) {
		if (u->pin != NULL || u->pin_file[0] != '\0')
			goto both;
		r = pct_decode((uint8_t *)u->pin_file, sizeof(u->pin_file),
		    eq + 1, vlen, 1);
		if (r >= 0 && strncmp(u->pin_file, "file:", 5) == 0)
			memmove(u->pin_file, u->pin_file + 5,
			    strlen(u->pin_file + 5) + 1);
		if (r >= 0 && u->pin_file[0] != '/') {
			snprintf(err, err_len, "%s: pin-source must be an "
			    "absolute file name (file:/PATH)", dn);
			return 0;
		}
	} else if (attr_is(a, nlen, "module-path"))
		r = pct_decode((uint8_t *)u->module, sizeof(u->module),
		    eq + 1, vlen, 1);
	else if (attr_is(a, nlen, "module-name"))
		r = 0;		/* module-path or [ca] pkcs11_module decide */
	else {
		snprintf(err, err_len, "%s: RFC 7512 section 2.3: unknown "
		    "query attribute \"%.*s\"", dn,
		    (int)(nlen > 64 ? 64 : nlen), a);
		return 0;
	}
	if (r < 0) {
		snprintf(err, err_len, "%s: RFC 7512 section 2.3: bad value "
		    "of \"%.*s\"", dn, (int)nlen, a);
		return 0;
	}
	return 1;
 both:
	snprintf(err, err_len, "%s: RFC 7512 section 2.3: one PIN only "
	    "(pin-source or pin-value)", dn);
	return 0;
}

/*
 * Splits "pkcs11:PATH?QUERY" (RFC 7512 section 2.3) into u.  The path
 * part is kept as given (the engine decodes it), without the query.
 */
static int
uri_parse(struct p11_uri *u, const char *uri, char *err, size_t err_len)
{
	char dn[CA_KEY_URI_MAX];
	const char *p, *q, *end, *next;
	size_t plen;

	memset(u, 0, sizeof(*u));
	/* the PIN goes to sodium_malloc memory (a safety net, as in
	 * ca_random_serial: programs call sodium_init at start) */
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	ca_key_uri_display(dn, sizeof(dn), uri);
	if (!ca_key_is_uri(uri) || strlen(uri) >= CA_KEY_URI_MAX) {
		snprintf(err, err_len, "%.64s: not a pkcs11: URI (RFC 7512) "
		    "or longer than %d", dn, CA_KEY_URI_MAX - 1);
		return 0;
	}
	p = uri + strlen(URI_SCHEME);
	q = strchr(p, '?');
	end = q ? q : p + strlen(p);
	plen = (size_t)(end - uri);
	memcpy(u->path, uri, plen);
	u->path[plen] = '\0';
	for (; p < end; p = next) {
		const char *semi = memchr(p, ';', (size_t)(end - p));

		next = semi ? semi + 1 : end;
		if ((semi ? semi : end) == p)
			continue;
		if (!parse_path_attr(u, p, (size_t)((semi ? semi : end) - p),
		    dn, err, err_len))
			goto fail;
	}
	for (p = q ? q + 1 : end; q != NULL && *p != '\0'; p = next) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);

		next = amp ? amp + 1 : p + len;
		if (len == 0)
			continue;
		if (!parse_query_attr(u, p, len, dn, err, err_len))
			goto fail;
	}
	if (u->object[0] == '\0' && u->id_len == 0) {
		snprintf(err, err_len, "%s: names no key: give object= (the "
		    "key's label) or id= (RFC 7512)", dn);
		goto fail;
	}
	return 1;
 fail:
	uri_cleanup(u);
	return 0;
}

/* Reads the first line of the pin-source file (0600 or stricter). */
static int
pin_read(struct p11_uri *u, const char *dn, char *err, size_t err_len)
{
	struct stat sb;
	ssize_t n;
	int fd = -1, rc = 0;

	if (u->pin != NULL)
		return 1;
	if (u->pin_file[0] == '\0') {
		snprintf(err, err_len, "%s: no PIN: add ?pin-source=file:PATH "
		    "(RFC 7512 section 2.3) to the key URI", dn);
		return 0;
	}
	if ((fd = open(u->pin_file, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, err_len, "%s: PIN file %s: %s", dn, u->pin_file,
		    strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(err, err_len, "%s: PIN file %s: not a regular file",
		    dn, u->pin_file);
		goto out;
	}
	if ((sb.st_mode & 077) != 0) {
		snprintf(err, err_len, "%s: PIN file %s is accessible by group "
		    "or others (mode %04o); refusing it, run chmod 600 %s", dn,
		    u->pin_file, (unsigned)(sb.st_mode & 07777), u->pin_file);
		goto out;
	}
	if ((u->pin = sodium_malloc(P11_PIN_MAX + 1)) == NULL)
		fatal("sodium_malloc");
	do
		n = read(fd, u->pin, P11_PIN_MAX);
	while (n == -1 && errno == EINTR);
	if (n < 0) {
		snprintf(err, err_len, "%s: PIN file %s: %s", dn, u->pin_file,
		    strerror(errno));
		goto out;
	}
	u->pin[n] = '\0';
	if (n == P11_PIN_MAX && strcspn(u->pin, "\r\n") == (size_t)n) {
		snprintf(err, err_len, "%s: PIN file %s: the PIN is too "
		    "long (at most %d bytes)", dn, u->pin_file, P11_PIN_MAX - 1);
		goto out;
	}
	u->pin[strcspn(u->pin, "\r\n")] = '\0';
	if (u->pin[0] == '\0') {
		snprintf(err, err_len, "%s: PIN file %s is empty", dn,
		    u->pin_file);
		goto out;
	}
	rc = 1;
 out:
	if (fd != -1)
		close(fd);
	return rc;
}

static const char *
module_of(const struct p11_uri *u)
{
	return u->module[0] != '\0' ? u->module : E.default_module;
}

/* Called with E.mu held: the engine of this process, set up once. */
static int
engine_get(const char *module, const char *dn, char *err, size_t err_len)
{
	ENGINE *e = NULL;
	char ebuf[256];

	if (E.eng != NULL) {
		if (E.pid != getpid()) {
			snprintf(err, err_len, "%s: the PKCS#11 engine was set "
			    "up in process %d, before a fork; a token is used "
			    "by the process that opened it only", dn,
			    (int)E.pid);
			return 0;
		}
		if (strcmp(E.module, module) != 0) {
			snprintf(err, err_len, "%s: one PKCS#11 module per "
			    "process (%s is in use, %s asked for)", dn,
			    E.module, module);
			return 0;
		}
		return 1;
	}
	if ((e = ENGINE_by_id("pkcs11")) == NULL) {
		ERR_clear_error();
		snprintf(err, err_len, "%s: the OpenSSL PKCS#11 engine "
		    "\"pkcs11\" is not installed (Debian: "
		    "libengine-pkcs11-openssl)", dn);
		return 0;
	}
	/* QUIET: the engine's own stderr lines would show key URIs. */
	(void)ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 1);
	ERR_clear_error();
	if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) ||
	    !ENGINE_init(e)) {
		ssl_errstr(ebuf, sizeof(ebuf));
		snprintf(err, err_len, "%s: PKCS#11 module %s: cannot "
		    "initialise it: %s", dn, module, ebuf);
		ENGINE_free(e);
		return 0;
	}
	ENGINE_free(e);		/* the functional reference stays */
	E.eng = e;
	E.pid = getpid();
	snprintf(E.module, sizeof(E.module), "%s", module);
	return 1;
}

/*
 * Signs a fixed message with key and verifies it with key's public half:
 * the engine pairs a private key object with a public key or certificate
 * object of the same CKA_ID, and a token where two keys share an ID
 * would give a key whose public half is another key's.
 */
static int
pair_check(EVP_PKEY *key)
{
	static const unsigned char msg[] = "mica PKCS#11 key pair check";
	EVP_MD_CTX *ctx = NULL;
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);
	int ok = 0;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		fatalx("EVP_MD_CTX_new");
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, msg, sizeof(msg)) != 1)
		goto out;
	EVP_MD_CTX_free(ctx);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		fatalx("EVP_MD_CTX_new");
	if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestVerify(ctx, sig, sig_len, msg, sizeof(msg)) != 1)
		goto out;
	ok = 1;
 out:
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Names what the engine's error queue says, without the queue's noise. */
static void
load_error(char *err, size_t err_len, const char *dn, int *out_not_found)
{
	char ebuf[512];

	ssl_errstr(ebuf, sizeof(ebuf));
	if (strstr(ebuf, "PIN incorrect") != NULL)
		snprintf(err, err_len, "%s: the token refused the PIN "
		    "(CKR_PIN_INCORRECT)", dn);
	else if (strstr(ebuf, "PIN locked") != NULL)
		snprintf(err, err_len, "%s: the token's PIN is locked "
		    "(CKR_PIN_LOCKED)", dn);
	else if (strstr(ebuf, "object not found") != NULL) {
		snprintf(err, err_len, "%s: no such private key in the token "
		    "(check token= and object=/id=)", dn);
		if (out_not_found != NULL)
			*out_not_found = 1;
	} else
		snprintf(err, err_len, "%s: cannot load the key from the "
		    "token: %s", dn, ebuf);
}

int
ca_key_token_load(EVP_PKEY **out, const char *uri, int *out_not_found,
    char *err, size_t err_len)
{
	struct p11_uri u;
	EVP_PKEY *key = NULL;
	char dn[CA_KEY_URI_MAX], euri[CA_KEY_URI_MAX + 16];
	const char *module;
	int locked = 0, rc = 0, base;

	*out = NULL;
	if (out_not_found != NULL)
		*out_not_found = 0;
	ca_key_uri_display(dn, sizeof(dn), uri);
	if (!uri_parse(&u, uri, err, err_len))
		return 0;
	if (!pin_read(&u, dn, err, err_len))
		goto out;
	pthread_mutex_lock(&E.mu);
	locked = 1;
	module = module_of(&u);
	if (*module == '\0') {
		snprintf(err, err_len, "%s: which PKCS#11 module?  Set [ca] "
		    "pkcs11_module (e.g. /usr/lib/x86_64-linux-gnu/softhsm/"
		    "libsofthsm2.so) or module-path= in the URI's query", dn);
		goto out;
	}
	if (!engine_get(module, dn, err, err_len))
		goto out;
	snprintf(euri, sizeof(euri), "%s%s", u.path,
	    u.has_type ? "" : ";type=private");
	ERR_clear_error();
	if (!ENGINE_ctrl_cmd_string(E.eng, "PIN", u.pin, 0)) {
		load_error(err, err_len, dn, NULL);
		goto out;
	}
	key = ENGINE_load_private_key(E.eng, euri, NULL, NULL);
	/*
	 * The engine keeps a copy of the PIN until it is set again: set it
	 * to "" (it cleanses the old one; NULL is refused).  libp11 keeps
	 * its own copy in the slot for a re-login; that one is libp11's.
	 */
	if (!ENGINE_ctrl_cmd_string(E.eng, "PIN", "", 0) && key != NULL) {
		log_ssl("%s: clearing the engine's PIN", dn);
		ERR_clear_error();
	}
	if (key == NULL) {
		load_error(err, err_len, dn, out_not_found);
		goto out;
	}
	ERR_clear_error();
	base = EVP_PKEY_get_base_id(key);
	if (base != EVP_PKEY_EC && base != EVP_PKEY_RSA) {
		snprintf(err, err_len, "%s: the token key is neither EC nor "
		    "RSA (the PKCS#11 engine signs with these only)", dn);
		goto out;
	}
	if (!pair_check(key)) {
		char ebuf[256];

		ssl_errstr(ebuf, sizeof(ebuf));
		snprintf(err, err_len, "%s: a test signature with the token "
		    "key does not verify with its public key (does another "
		    "key in the token have the same CKA_ID?): %s", dn, ebuf);
		goto out;
	}
	*out = key;
	key = NULL;
	rc = 1;
 out:
	if (locked)
		pthread_mutex_unlock(&E.mu);
	EVP_PKEY_free(key);
	uri_cleanup(&u);
	return rc;
}

/* The pkcs11-tool --key-type for a mica key type; NULL if none. */
static const char *
tool_key_type(const char *type)
{
	if (type == NULL || *type == '\0' || strcmp(type, "ec-p256") == 0)
		return "EC:prime256v1";
	if (strcmp(type, "ec-p384") == 0)
		return "EC:secp384r1";
	if (strcmp(type, "rsa-3072") == 0)
		return "RSA:3072";
	return NULL;
}

/*
 * The environment of pkcs11-tool: ours (SOFTHSM2_CONF and the like) and
 * the PIN in PIN_ENV, so that it is not on a command line others can
 * read in /proc.  The PIN entry is in sodium memory (*out_pin_env).
 */
static char **
tool_env(const char *pin, char **out_pin_env)
{
	char **env;
	size_t n = 0, i, j = 0, len;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 2, sizeof(*env))) == NULL)
		fatal("calloc");
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], PIN_ENV "=", sizeof(PIN_ENV)) != 0)
			env[j++] = environ[i];
	len = sizeof(PIN_ENV) + strlen(pin) + 1;
	if ((*out_pin_env = sodium_malloc(len)) == NULL)
		fatal("sodium_malloc");
	snprintf(*out_pin_env, len, "%s=%s", PIN_ENV, pin);
	env[j++] = *out_pin_env;
	env[j] = NULL;
	return env;
}

/*
 * Runs pkcs11-tool with argv, the PIN in its environment, its report to
 * /dev/null and its errors to our stderr.  1 when it exits 0.
 */
static int
tool_run(const char *const *argv, const char *pin, const char *dn,
    char *err, size_t err_len)
{
	posix_spawn_file_actions_t fa;
	char **env, *pin_env = NULL;
	pid_t pid;
	int st, rc = 0;

	env = tool_env(pin, &pin_env);
	if (posix_spawn_file_actions_init(&fa) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
	    O_WRONLY, 0) != 0)
		fatal("posix_spawn_file_actions");
	if ((errno = posix_spawnp(&pid, argv[0], &fa, NULL,
	    (char *const *)argv, env)) != 0) {
		snprintf(err, err_len, "%s: cannot run %s (Debian: opensc) to "
		    "make the key: %s", dn, argv[0], strerror(errno));
		goto out;
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			snprintf(err, err_len, "%s: waitpid: %s", dn,
			    strerror(errno));
			goto out;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, err_len, "%s: %s --keypairgen failed (its "
		    "message is above)", dn, argv[0]);
		goto out;
	}
	rc = 1;
 out:
	posix_spawn_file_actions_destroy(&fa);
	sodium_free(pin_env);
	free(env);
	return rc;
}

int
ca_key_token_generate(const char *uri, const char *key_type, char *err,
    size_t err_len)
{
	struct p11_uri u;
	char dn[CA_KEY_URI_MAX], idhex[2 * P11_ID_MAX + 1];
	const char *argv[24], *module, *kt;
	int n = 0, rc = 0;
	size_t i;

	ca_key_uri_display(dn, sizeof(dn), uri);
	if (!uri_parse(&u, uri, err, err_len))
		return 0;
	if ((kt = tool_key_type(key_type)) == NULL) {
		snprintf(err, err_len, "%s: key type %s cannot be made in a "
		    "token (ec-p256, ec-p384, rsa-3072)", dn, key_type);
		goto out;
	}
	if (u.token[0] == '\0' || u.object[0] == '\0') {
		snprintf(err, err_len, "%s: to make a key, the URI needs "
		    "token= and object= (the token's and the new key's "
		    "labels)", dn);
		goto out;
	}
	if (!pin_read(&u, dn, err, err_len))
		goto out;
	pthread_mutex_lock(&E.mu);
	module = module_of(&u);
	pthread_mutex_unlock(&E.mu);
	if (*module == '\0') {
		snprintf(err, err_len, "%s: which PKCS#11 module?  Give "
		    "--pkcs11-module or module-path= in the URI's query", dn);
		goto out;
	}
	/*
	 * A CKA_ID of its own, always: the engine finds the public half of
	 * a private key by CKA_ID, and two keys made without one share the
	 * empty ID (the second would be paired with the first's public key).
	 */
	if (u.id_len == 0) {
		randombytes_buf(u.id, P11_NEW_ID_LEN);
		u.id_len = P11_NEW_ID_LEN;
	}
	for (i = 0; i < u.id_len; i++)
		snprintf(idhex + 2 * i, 3, "%02x", u.id[i]);
	argv[n++] = "pkcs11-tool";
	argv[n++] = "--module";
	argv[n++] = module;
	argv[n++] = "--token-label";
	argv[n++] = u.token;
	argv[n++] = "--pin";
	argv[n++] = "env:" PIN_ENV;
	argv[n++] = "--keypairgen";
	argv[n++] = "--key-type";
	argv[n++] = kt;
	argv[n++] = "--label";
	argv[n++] = u.object;
	argv[n++] = "--id";
	argv[n++] = idhex;
	argv[n++] = "--usage-sign";
	argv[n++] = "--sensitive";	/* CKA_SENSITIVE; never extractable */
	argv[n] = NULL;
	if (!tool_run(argv, u.pin, dn, err, err_len))
		goto out;
	log_info("%s: %s key made in the token", dn, kt);
	rc = 1;
 out:
	uri_cleanup(&u);
	return rc;
}

int
ca_key_token_obtain(EVP_PKEY **out, const char *uri, const char *key_type,
    int *out_made, char *err, size_t err_len)
{
	int not_found = 0;

	*out_made = 0;
	if (ca_key_token_load(out, uri, &not_found, err, err_len))
		return 1;
	if (!not_found)
		return 0;
	if (!ca_key_token_generate(uri, key_type, err, err_len))
		return 0;
	*out_made = 1;
	return ca_key_token_load(out, uri, NULL, err, err_len);
}

/* Copies s, replacing what is not printable ASCII by '?'. */
static void
printable(char *out, size_t out_len, const char *s)
{
	size_t i;

	snprintf(out, out_len, "%s", s);
	for (i = 0; out[i] != '\0'; i++)
		if (!isprint((unsigned char)out[i]))
			out[i] = '?';
}

int
ca_key_describe(char *out, size_t out_len, const char *setting)
{
	struct p11_uri u;
	char err[CA_ERR_MAX], tok[P11_LABEL_MAX], obj[P11_LABEL_MAX];
	char id[2 * 16 + 1] = "";
	size_t i;

	if (!ca_key_is_uri(setting)) {
		snprintf(out, out_len, "file %s", setting);
		return 1;
	}
	if (!uri_parse(&u, setting, err, sizeof(err))) {
		snprintf(out, out_len, "token (bad URI)");
		return 0;
	}
	printable(tok, sizeof(tok), u.token[0] ? u.token : "(any)");
	printable(obj, sizeof(obj), u.object);
	for (i = 0; i < u.id_len && i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", u.id[i]);
	if (u.object[0] != '\0')
		snprintf(out, out_len, "token %s object %s", tok, obj);
	else
		snprintf(out, out_len, "token %s id %s", tok, id);
	uri_cleanup(&u);
	return 1;
}
