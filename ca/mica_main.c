/*
 * mica_main.c - the subscriber client: asks micad to reissue a lost
 * certificate over the CA protocol (docs/PROTOCOL.md), waits for the
 * review and writes the replacement; fetch and status for later.
 *
 * Exit codes: 0 certificate written (status: issued), 1 failure, 2 usage,
 * 3 rejected, 4 still pending.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#ifdef MICA_QRENCODE
#include <qrencode.h>
#endif

#include "common/bytes.h"
#include "common/sigmd.h"
#include "common/version.h"
#include "ca/auth.h"
#include "ca/proto.h"

#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define EXIT_REJECTED	3
#define EXIT_PENDING	4
#define EXIT_STANDBY	5	/* the server is a standby (ERROR 14) */
#define EXIT_CHOOSE	EXIT_USAGE	/* several certificates, no terminal */
#define EXIT_NOT_DUE	EXIT_PENDING	/* renew: before the window */

#define IO_TIMEOUT	30	/* seconds, for everything but WAIT */
#define WAIT_FOREVER	((time_t)-1)

struct opts {
	const char	*server;
	const char	*ca;
	const char	*account;
	const char	*serial;
	const char	*key;
	const char	*out;
	const char	*reason;
	const char	*password_file;
	const char	*otp;
	const char	*note;
	const char	*subject;
	const char	*lost_cert;
	const char	*request;
	const char	*token;
	const char	*request_file;
	int		 no_wait;
	long		 timeout;	/* WAIT, seconds; 0 = no limit */
	const char	*p12;		/* --p12 FILE */
	const char	*p12_password_file;
	int		 p12_legacy;
	const char	*new_password_file;	/* passwd, enroll */
	const char	*code;			/* enroll */
	int		 qr;			/* enroll --qr */
	const char	*cert;		/* renew: --cert CUR.crt */
	const char	*new_key;	/* renew: --new-key NEW.key */
};

#define P12_PASSWORD_MAX	1024

/* A PKCS#12 bundle to write beside the PEM files. */
struct p12_out {
	const char	*path;
	int		 legacy;	/* 3DES + SHA-1 MAC for old Windows */
	char		 pass[P12_PASSWORD_MAX + 1];	/* wiped after use */
	size_t		 pass_len;
};

struct conn {
	int		 fd;
	SSL_CTX		*ctx;
	SSL		*ssl;
	uint8_t		*buf;
	size_t		 len;
	size_t		 cap;
	uint32_t	 next_id;
	uint32_t	 max_frame;	/* the server's, from SERVER_HELLO */
	int		 lost;		/* the connection broke (not an ERROR) */
};

enum rd_rc { RD_OK, RD_TIMEOUT, RD_ERR };

/*
 * Set once the server answered ERROR 14 (a standby): every command then
 * fails at once, without a retry, and main() exits EXIT_STANDBY.
 */
static int standby_refused;

#define P12_HELP \
"\n" \
"  --p12 FILE also writes key, certificate and chain as a PKCS#12 file\n" \
"  (mode 0600; AES-256-CBC with PBKDF2 and a SHA-256 MAC), for browsers,\n" \
"  Windows, macOS and VPN clients; --p12-legacy uses 3DES and a SHA-1\n" \
"  MAC for old Windows.  The password is asked twice on the terminal or\n" \
"  read from the first line of --p12-password-file F (not empty).\n"

static const char usage_main[] =
"usage: mica [--server HOST:PORT] [--ca CA.crt] [--server-name NAME]\n"
"            COMMAND [options]\n"
"\n"
"commands:\n"
"  reissue   ask for a replacement of a lost certificate and wait for it\n"
"  request   ask for a first certificate (enrolment) and wait for it\n"
"  fetch     fetch the replacement of an earlier request\n"
"  status    show the state of an earlier request\n"
"  list      log in and list the account's certificates\n"
"  passwd    change the account's password\n"
"  enroll    set a new password and get a new TOTP secret with the\n"
"            enrolment code an administrator gave you\n"
"  renew     replace a certificate before it expires (no login)\n"
"\n"
"  --server defaults to $MICA_SERVER, --ca to $MICA_CA.  --server-name\n"
"  is the name (DNS name or IP address) the server's certificate must\n"
"  carry, when it is not the HOST of --server.\n"
"  mica COMMAND --help shows the command's options; mica --version the\n"
"  version.\n"
"exit: 0 certificate written, 1 failed, 2 usage (or: several\n"
"      certificates and no terminal to choose), 3 rejected, 4 pending,\n"
"      5 the server is a standby (nothing sent, a code not used: run\n"
"      the command again with --server naming the primary)\n";

static const char usage_reissue[] =
"usage: mica [global] reissue --account NAME --key NEW.key --out NEW.crt\n"
"           [--serial HEX] [--subject DN | --lost-cert LOST.crt]\n"
"           [--reason lost|compromised|damaged] [--password-file F]\n"
"           [--otp CODE] [--note TEXT] [--no-wait] [--timeout SECONDS]\n"
"           [--p12 FILE [--p12-legacy] [--p12-password-file F]]\n"
"\n"
"  Logs in (password and code are asked on the terminal when not given)\n"
"  and finds the lost certificate: --serial, or the serial of\n"
"  --lost-cert, or else the account's certificates are listed and, on a\n"
"  terminal, you choose the lost one by number; without a terminal the\n"
"  only good certificate is taken, and with several it exits 2 listing\n"
"  them (rerun with --serial and a new code).  The subject comes from\n"
"  --subject \"/CN=alice/O=Org\", --lost-cert, or the server's copy of\n"
"  the lost certificate.  Creates NEW.key (EC P-256, PKCS#8 PEM, mode\n"
"  0600) unless it exists and sends the request.  The request id and\n"
"  retrieval token are saved in NEW.crt.request (mode 0600) for\n"
"  `mica fetch`.  Then it waits for the review (--timeout, default: no\n"
"  limit) and writes NEW.crt and the CA chain NEW.crt.chain (up to the\n"
"  root).  --no-wait prints the token once and exits 4.  A NEW.key that\n"
"  mica created is removed again when the CA does not accept the request.\n"
P12_HELP;

static const char usage_request[] =
"usage: mica [global] request --account NAME --out NEW.crt [--key-out NEW.key]\n"
"           [--subject DN] [--password-file F] [--otp CODE] [--note TEXT]\n"
"           [--no-wait] [--timeout SECONDS]\n"
"           [--p12 FILE [--p12-legacy] [--p12-password-file F]]\n"
"\n"
"  Enrolment: asks for a first certificate of the account (no openssl\n"
"  req needed).  Logs in, creates NEW.key (EC P-256, PKCS#8 PEM, mode\n"
"  0600; default: NEW.crt's name with .key) unless it exists, sends a\n"
"  CSR (subject --subject \"/CN=alice/O=Org\", default /CN=NAME; the\n"
"  certificate carries the account's subject) and waits for the review\n"
"  as `mica reissue` does: NEW.crt.request (mode 0600) for `mica fetch`,\n"
"  NEW.crt and NEW.crt.chain when approved, --no-wait prints the token\n"
"  once and exits 4.  A NEW.key that mica created is removed again when\n"
"  the CA does not accept the request.\n"
P12_HELP;

static const char usage_list[] =
"usage: mica [global] list --account NAME [--password-file F] [--otp CODE]\n"
"\n"
"  Logs in and lists the account's certificates, newest first (at most\n"
"  the 32 newest): serial, status (good, hold, revoked, expired),\n"
"  validity, subject, and the replacement's serial.\n";

static const char usage_passwd[] =
"usage: mica [global] passwd --account NAME [--password-file OLD]\n"
"           [--otp CODE] [--new-password-file NEW]\n"
"\n"
"  Logs in with the current password and a code, then sets the new\n"
"  password (first line of NEW, or asked twice on the terminal).  The\n"
"  server's [policy] decides what it accepts (at least\n"
"  min_password_length characters, not the account name).  A password\n"
"  older than password_max_days can only be changed this way.\n";

static const char usage_enroll[] =
"usage: mica [global] enroll --account NAME --code CODE\n"
"           [--new-password-file NEW] [--qr]\n"
"\n"
"  For a forgotten password or a lost authenticator: with the one-time\n"
"  code of `mica-admin account reset NAME`, sets a new password (first\n"
"  line of NEW, or asked twice) and prints a new TOTP secret and its\n"
"  otpauth:// URI once (--qr also as a QR code for the terminal).  The\n"
"  code works once and expires.\n";

static const char usage_renew[] =
"usage: mica [global] renew --cert CUR.crt --key CUR.key --out NEW.crt\n"
"           [--new-key NEW.key]\n"
"           [--p12 FILE [--p12-legacy] [--p12-password-file F]]\n"
"\n"
"  Replaces a good certificate of this CA before it expires: no password,\n"
"  no code, no review.  mica proves it holds CUR.key by signing the\n"
"  server's one-time nonce, the certificate and the new request with it.\n"
"  The new certificate has CUR.crt's subject and is for NEW.key (created,\n"
"  EC P-256, mode 0600, unless it exists) or, without --new-key, for\n"
"  CUR.key.  Writes NEW.crt and NEW.crt.chain (NEW.crt may be CUR.crt).\n"
"  The CA allows it within its renewal window before notAfter (default\n"
"  30 days) or when an administrator allowed it (mica-admin\n"
"  allow-renew); the old certificate is revoked as superseded at once\n"
"  (unless the CA leaves it to expire).  Exit 0 renewed, 1 refused or\n"
"  failed, 4 not due yet (before the window: nothing changed).\n"
P12_HELP;

static const char usage_fetch[] =
"usage: mica [global] fetch (--request ID --token T | --request-file F)\n"
"           --out NEW.crt [--p12 FILE --key NEW.key [--p12-legacy]\n"
"           [--p12-password-file F]]\n"
"\n"
"  Writes the replacement certificate to NEW.crt and the chain (up to\n"
"  the root) to NEW.crt.chain.  Exit 0 written, 3 rejected, 4 still\n"
"  pending.  --p12 needs the key the request was made with (--key).\n"
P12_HELP;

static const char usage_status[] =
"usage: mica [global] status (--request ID --token T | --request-file F)\n"
"\n"
"  Prints the request id and its state.  The retrieval token is not\n"
"  printed: `reissue --no-wait` shows it once, and it is in the request\n"
"  file.\n"
"  Exit 0 issued, 3 rejected, 4 pending or approved, 1 failed.\n";

/* ---- small helpers ---- */

static void
ssl_warn(const char *what)
{
	char buf[256];
	unsigned long e;

	if ((e = ERR_get_error()) == 0) {
		warnx("%s", what);
		return;
	}
	ERR_error_string_n(e, buf, sizeof(buf));
	warnx("%s: %s", what, buf);
	ERR_clear_error();
}

/* Writes data to path atomically (temp file in the same directory). */
static int
write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd = -1, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >=
	    (int)sizeof(tmp)) {
		warnx("%s: path too long", path);
		return 0;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		warn("%s", tmp);
		return 0;
	}
	if (fchmod(fd, mode) == -1 || write(fd, data, len) != (ssize_t)len ||
	    fsync(fd) == -1) {
		warn("%s", tmp);
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		warn("%s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		warn("rename %s", path);
		goto out;
	}
	rc = 1;
 out:
	if (fd != -1)
		close(fd);
	if (!rc)
		unlink(tmp);
	return rc;
}

/* Reads the first line of a file (without the newline) into buf. */
static int
read_first_line(const char *path, char *buf, size_t size, size_t *out_len)
{
	FILE *f;
	size_t n;
	int rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		warn("%s", path);
		return 0;
	}
	if (fgets(buf, (int)size, f) == NULL) {
		warnx("%s: empty", path);
		goto out;
	}
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == size - 1 && !feof(f)) {
		warnx("%s: first line too long", path);
		goto out;
	}
	buf[n] = '\0';
	*out_len = n;
	rc = 1;
 out:
	fclose(f);
	return rc;
}

/* Asks on the terminal without echo. */
static int
ask_secret(const char *prompt, char *buf, size_t size, size_t *out_len)
{
	struct termios old, noecho;
	FILE *tty;
	size_t n;
	int rc = 0, restore = 0;

	if ((tty = fopen("/dev/tty", "r+")) == NULL) {
		warnx("no terminal to ask for the %s", prompt);
		return 0;
	}
	if (tcgetattr(fileno(tty), &old) == 0) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &noecho) == 0;
	}
	fprintf(tty, "%s: ", prompt);
	fflush(tty);
	if (fgets(buf, (int)size, tty) != NULL) {
		n = strcspn(buf, "\r\n");
		buf[n] = '\0';
		*out_len = n;
		rc = 1;
	}
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty, "\n");
	fclose(tty);
	return rc;
}

/* ---- key and CSR ---- */

/*
 * Loads keyfile, or creates it (P-256, PKCS#8 PEM, 0600, O_EXCL);
 * *out_created says which.
 */
static EVP_PKEY *
load_or_create_key(const char *keyfile, int *out_created)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	int fd;

	*out_created = 0;
	if ((bio = BIO_new_file(keyfile, "r")) != NULL) {
		if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) ==
		    NULL)
			ssl_warn(keyfile);
		goto out;
	}
	ERR_clear_error();
	if ((pkey = EVP_EC_gen("P-256")) == NULL) {
		ssl_warn("EC key generation");
		goto out;
	}
	if ((fd = open(keyfile, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1) {
		warn("%s", keyfile);
		goto fail;
	}
	if ((bio = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
		close(fd);
		ssl_warn(keyfile);
		goto fail;
	}
	if (!PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
	    NULL) || BIO_flush(bio) != 1 || fsync(fd) == -1) {
		ssl_warn(keyfile);
		unlink(keyfile);
		goto fail;
	}
	fprintf(stderr, "mica: new key written to %s\n", keyfile);
	*out_created = 1;
	goto out;
 fail:
	EVP_PKEY_free(pkey);
	pkey = NULL;
 out:
	BIO_free(bio);
	return pkey;
}

/* Parses "/CN=alice/O=Org" (a '\' escapes the next character). */
static X509_NAME *
parse_subject(const char *text)
{
	X509_NAME *name = NULL;
	char buf[1024], *field, *val;
	const char *s = text;
	size_t n;
	int ok = 0;

	if (*s != '/' || (name = X509_NAME_new()) == NULL)
		goto out;
	s++;
	while (*s != '\0') {
		n = 0;
		while (*s != '\0' && *s != '/' && n < sizeof(buf) - 1) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			buf[n++] = *s++;
		}
		if (*s != '\0' && *s != '/')
			goto out;	/* too long */
		buf[n] = '\0';
		if (*s == '/')
			s++;
		if ((val = strchr(buf, '=')) == NULL || val == buf)
			goto out;
		*val++ = '\0';
		field = buf;
		if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
		    (const unsigned char *)val, -1, -1, 0))
			goto out;
	}
	ok = X509_NAME_entry_count(name) > 0;
 out:
	if (!ok) {
		ERR_clear_error();
		X509_NAME_free(name);
		name = NULL;
	}
	return name;
}

static X509 *
load_cert(const char *path)
{
	X509 *x = NULL;
	BIO *bio;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ssl_warn(path);
		return NULL;
	}
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		ssl_warn(path);
	BIO_free(bio);
	return x;
}

/* Builds and signs the CSR; *out_der is OPENSSL_malloc'd. */
static int
build_csr(EVP_PKEY *pkey, const X509_NAME *subject, uint8_t **out_der,
    int *out_len)
{
	X509_REQ *req = NULL;
	int rc = 0;

	*out_der = NULL;
	if ((req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, subject) ||
	    !X509_REQ_set_pubkey(req, pkey) ||
	    X509_REQ_sign(req, pkey, sigmd_get(pkey)) <= 0 ||
	    (*out_len = i2d_X509_REQ(req, out_der)) <= 0) {
		ssl_warn("building the CSR");
		goto out;
	}
	rc = 1;
 out:
	X509_REQ_free(req);
	return rc;
}

/* ---- connection ---- */

static int
split_hostport(const char *server, char *host, size_t host_len,
    const char **out_port)
{
	const char *colon, *h = server;
	size_t n;

	if (server[0] == '[') {
		if ((colon = strstr(server, "]:")) == NULL)
			return 0;
		h = server + 1;
		n = (size_t)(colon - h);
		colon++;
	} else {
		if ((colon = strrchr(server, ':')) == NULL)
			return 0;
		n = (size_t)(colon - server);
	}
	if (n == 0 || n >= host_len || colon[1] == '\0')
		return 0;
	memcpy(host, h, n);
	host[n] = '\0';
	*out_port = colon + 1;
	return 1;
}

static void
set_timeout(int fd, long seconds)
{
	struct timeval tv;

	tv.tv_sec = seconds;
	tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int
tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		warnx("%s: %s", host, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype,
		    ai->ai_protocol)) == -1)
			continue;
		set_timeout(fd, IO_TIMEOUT);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	if (fd == -1)
		warn("connect %s port %s", host, port);
	freeaddrinfo(res);
	return fd;
}

static void
conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd != -1)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* --server-name: the name the server's certificate must carry when it
 * is not the host of --server (NULL: that host). */
static const char *server_name_opt;

/* The server certificate a name check failed on (verify_cb keeps it). */
static X509 *mismatch_cert;

static int
verify_cb(int ok, X509_STORE_CTX *sctx)
{
	int e = X509_STORE_CTX_get_error(sctx);

	if (!ok && (e == X509_V_ERR_HOSTNAME_MISMATCH ||
	    e == X509_V_ERR_IP_ADDRESS_MISMATCH) && mismatch_cert == NULL &&
	    X509_STORE_CTX_get0_cert(sctx) != NULL &&
	    X509_up_ref(X509_STORE_CTX_get0_cert(sctx)))
		mismatch_cert = X509_STORE_CTX_get0_cert(sctx);
	return ok;
}

/* "DNS:a, IP:b" from cert's subjectAltName, at most size - 1 bytes. */
static void
cert_names(char *out, size_t size, X509 *cert)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *gn;
	char ip[INET6_ADDRSTRLEN];
	const ASN1_STRING *s;
	size_t len;
	int i;

	out[0] = '\0';
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		gn = sk_GENERAL_NAME_value(gens, i);
		len = strlen(out);
		if (gn->type == GEN_DNS) {
			s = gn->d.dNSName;
			snprintf(out + len, size - len, "%sDNS:%.*s",
			    len ? ", " : "", ASN1_STRING_length(s),
			    (const char *)ASN1_STRING_get0_data(s));
		} else if (gn->type == GEN_IPADD &&
		    (ASN1_STRING_length(gn->d.iPAddress) == 4 ||
		    ASN1_STRING_length(gn->d.iPAddress) == 16) &&
		    inet_ntop(ASN1_STRING_length(gn->d.iPAddress) == 4 ?
		    AF_INET : AF_INET6,
		    ASN1_STRING_get0_data(gn->d.iPAddress), ip,
		    sizeof(ip)) != NULL)
			snprintf(out + len, size - len, "%sIP:%s",
			    len ? ", " : "", ip);
	}
	GENERAL_NAMES_free(gens);
	if (out[0] == '\0')
		snprintf(out, size, "no DNS or IP names");
	/* the names are the CA's, but they end up on a terminal */
	for (len = 0; out[len] != '\0'; len++)
		if ((unsigned char)out[len] < 0x20 ||
		    (unsigned char)out[len] >= 0x7f)
			out[len] = '?';
}

/* TCP + TLS 1.3, server certificate checked against cafile and host. */
static int
conn_open(struct conn *c, const char *server, const char *cafile)
{
	char names[1024];
	const char *check;
	char host[256];
	const char *port;
	unsigned char ip[16];
	int rc = 0, is_ip;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_id = 1;
	if (!split_hostport(server, host, sizeof(host), &port)) {
		warnx("--server: expected HOST:PORT, got \"%s\"", server);
		return 0;
	}
	check = server_name_opt != NULL ? server_name_opt : host;
	is_ip = inet_pton(AF_INET, check, ip) == 1 ||
	    inet_pton(AF_INET6, check, ip) == 1;
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION)) {
		ssl_warn("TLS setup");
		goto out;
	}
	if (!SSL_CTX_load_verify_locations(c->ctx, cafile, NULL)) {
		ssl_warn(cafile);
		goto out;
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, verify_cb);
	if ((c->fd = tcp_connect(host, port)) == -1)
		goto out;
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    !SSL_set_fd(c->ssl, c->fd)) {
		ssl_warn("TLS setup");
		goto out;
	}
	if (is_ip) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
		    check)) {
			ssl_warn("TLS setup");
			goto out;
		}
	} else if (!SSL_set_tlsext_host_name(c->ssl, check) ||
	    !SSL_set1_host(c->ssl, check)) {
		ssl_warn("TLS setup");
		goto out;
	}
	if (SSL_connect(c->ssl) != 1) {
		long v = SSL_get_verify_result(c->ssl);

		if (mismatch_cert != NULL) {
			cert_names(names, sizeof(names), mismatch_cert);
			warnx("%s: server certificate: it is for %s, not %s "
			    "(connect with --server-name NAME to expect one "
			    "of its names, or have the CA operator run "
			    "`mica-admin tls renew --name %s`)", server, names,
			    check, check);
			X509_free(mismatch_cert);
			mismatch_cert = NULL;
		/* --ca names a CA that is not a root: the path ends there
		 * without a self-signed anchor (an issuing CA under an
		 * offline root is pinned by its root) */
		} else if (v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
			warnx("%s: server certificate: %s: %s is not a root "
			    "certificate; give the root with --ca", server,
			    X509_verify_cert_error_string(v), cafile);
		else if (v != X509_V_OK)
			warnx("%s: server certificate: %s", server,
			    X509_verify_cert_error_string(v));
		else
			ssl_warn("TLS handshake");
		goto out;
	}
	rc = 1;
 out:
	if (!rc)
		conn_close(c);
	return rc;
}

static int
send_msg(struct conn *c, const struct proto_msg *m)
{
	struct wb b;
	int rc = 0;

	wb_init(&b);
	if (!proto_encode(&b, m)) {
		warnx("cannot encode %s", proto_type_name(m->type));
		goto out;
	}
	if (c->max_frame != 0 && b.len - PROTO_LEN_PREFIX > c->max_frame) {
		warnx("%s is larger than the server accepts (%" PRIu32
		    " bytes)", proto_type_name(m->type), c->max_frame);
		goto out;
	}
	if (SSL_write(c->ssl, b.data, (int)b.len) != (int)b.len) {
		c->lost = 1;
		ssl_warn("sending to the server");
		goto out;
	}
	rc = 1;
 out:
	if (b.data != NULL)
		sodium_memzero(b.data, b.cap);	/* may hold the password */
	wb_cleanup(&b);
	return rc;
}

/*
 * Reads one message.  deadline: absolute time for the wait, 0 for the
 * default I/O timeout per read, WAIT_FOREVER for no limit.
 */
static enum rd_rc
read_msg(struct conn *c, struct proto_msg *out, time_t deadline)
{
	struct proto_result res;
	uint8_t *p;
	size_t want;
	long left;
	int n;

	for (;;) {
		switch (proto_decode(&res, out, c->buf, c->len,
		    PROTO_MAX_FRAME_LIMIT)) {
		case PROTO_FRAME:
			memmove(c->buf, c->buf + res.consumed,
			    c->len - res.consumed);
			c->len -= res.consumed;
			if (out->type == PROTO_ERROR &&
			    out->code == PROTO_E_STANDBY)
				standby_refused = 1;
			return RD_OK;
		case PROTO_FAIL:
			warnx("bad frame from the server: %s", res.text);
			return RD_ERR;
		case PROTO_NEED_MORE:
			break;
		}
		want = c->len + (res.need > 16384 ? res.need : 16384);
		if (want > c->cap) {
			if ((p = realloc(c->buf, want)) == NULL) {
				warn("realloc");
				return RD_ERR;
			}
			c->buf = p;
			c->cap = want;
		}
		left = IO_TIMEOUT;
		if (deadline == WAIT_FOREVER) {
			left = 0;	/* SO_RCVTIMEO 0: no limit */
		} else if (deadline != 0) {
			left = (long)(deadline - time(NULL));
			if (left <= 0)
				return RD_TIMEOUT;
		}
		set_timeout(c->fd, left);
		n = SSL_read(c->ssl, c->buf + c->len, (int)(c->cap - c->len));
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN ||
		    (SSL_get_error(c->ssl, n) == SSL_ERROR_SYSCALL &&
		    errno == 0)) {
			warnx("the server closed the connection");
			c->lost = 1;
			return RD_ERR;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			ERR_clear_error();
			if (deadline == 0) {
				warnx("no answer from the server");
				c->lost = 1;
				return RD_ERR;
			}
			continue;	/* the loop checks the deadline */
		}
		ssl_warn("reading from the server");
		c->lost = 1;
		return RD_ERR;
	}
}

/* Sends m and reads the reply to it; an ERROR reply is printed. */
static int
request(struct conn *c, struct proto_msg *m, struct proto_msg *reply)
{
	m->id = c->next_id++;
	if (!send_msg(c, m))
		return 0;
	if (read_msg(c, reply, 0) != RD_OK)
		return 0;
	if (reply->type == PROTO_ERROR) {
		warnx("%s", reply->text[0] != '\0' ? reply->text :
		    proto_err_name(reply->code));
		return 0;
	}
	if (reply->id != m->id) {
		warnx("reply for request %" PRIu32 " while waiting for %"
		    PRIu32, reply->id, m->id);
		return 0;
	}
	return 1;
}

static int
hello(struct conn *c)
{
	struct proto_msg m, r;
	int rc = 0;

	proto_msg_init(&m, PROTO_HELLO, 0);
	m.versions[0] = PROTO_VERSION;
	m.num_versions = 1;
	if (!request(c, &m, &r))
		goto out;
	if (r.type != PROTO_SERVER_HELLO ||
	    r.chosen_version != PROTO_VERSION) {
		warnx("unexpected answer to HELLO: %s",
		    proto_type_name(r.type));
		goto out;
	}
	c->max_frame = r.max_frame;
	rc = 1;
 out:
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	return rc;
}

/* The exact words when a login was lost with the connection. */
#define MSG_RERUN \
	"the server restarted before your request was recorded; run the " \
	"command again with a new code"

#define BUSY_DEFAULT_S	120	/* retry busy this long without --timeout */
#define BACKOFF_MAX_S	15

/* Reads password and code once into m (a LOGIN); 0 on failure. */
static int
login_prepare(const struct opts *o, struct proto_msg *m, const char *prompt)
{
	size_t n;

	if (strlen(o->account) > PROTO_ACCOUNT_MAX) {
		warnx("--account: longer than %d bytes", PROTO_ACCOUNT_MAX);
		return 0;
	}
	snprintf(m->account, sizeof(m->account), "%s", o->account);
	if (o->password_file != NULL) {
		if (!read_first_line(o->password_file, m->password,
		    sizeof(m->password), &m->password_len))
			return 0;
	} else if (!ask_secret(prompt, m->password, sizeof(m->password),
	    &m->password_len))
		return 0;
	if (m->password_len == 0) {
		warnx("empty password");
		return 0;
	}
	if (o->otp != NULL) {
		snprintf(m->otp, sizeof(m->otp), "%s", o->otp);
		n = strlen(o->otp);
	} else if (!ask_secret("code", m->otp, sizeof(m->otp), &n))
		return 0;
	if (n != PROTO_OTP_LEN || strspn(m->otp, "0123456789") != n) {
		warnx("the code must be %d digits", PROTO_OTP_LEN);
		return 0;
	}
	return 1;
}

/* The N of a "retry after N s" in an ERROR text; 0 if there is none. */
static int
retry_hint(const char *text)
{
	const char *p = strstr(text, "retry after ");
	long v;
	char *end;

	if (p == NULL)
		return 0;
	errno = 0;
	v = strtol(p + 12, &end, 10);
	if (end == p + 12 || errno != 0 || v < 1 || v > 3600)
		return 0;
	return (int)v;
}

/*
 * Sleeps before retry number attempt (0, 1, ...): with the server's hint
 * N, N to 2N seconds (the server knows its queue: no growth, so that the
 * code sent again is still fresh); without one 1, 2, 4 .. BACKOFF_MAX_S
 * seconds, +-50 %.  The random part keeps clients refused together from
 * coming back together.  Never past deadline (0: none).  Returns 0 if
 * the deadline is reached.
 */
static int
backoff(int attempt, int hint, time_t deadline)
{
	long base_ms, ms, left_ms;
	struct timespec ts;

	if (hint > 0) {
		base_ms = hint * 1000L;
		ms = base_ms + (long)randombytes_uniform((uint32_t)base_ms + 1);
	} else {
		base_ms = 1000L << (attempt < 4 ? attempt : 4);
		if (base_ms > BACKOFF_MAX_S * 1000L)
			base_ms = BACKOFF_MAX_S * 1000L;
		ms = base_ms / 2 +
		    (long)randombytes_uniform((uint32_t)base_ms + 1);
	}
	if (deadline != 0) {
		left_ms = (long)(deadline - time(NULL)) * 1000L;
		if (left_ms <= 0)
			return 0;
		if (ms > left_ms)
			ms = left_ms;
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	return 1;
}

enum login_rc { LOGIN_OK, LOGIN_BUSY, LOGIN_REFUSED, LOGIN_LOST };

/* One LOGIN on c; *out_hint: the busy answer's retry hint. */
static enum login_rc
login_once(struct conn *c, struct proto_msg *m, int *out_hint)
{
	struct proto_msg r;
	enum login_rc rc = LOGIN_REFUSED;

	proto_msg_init(&r, PROTO_OK, 0);
	*out_hint = 0;
	m->id = c->next_id++;
	if (!send_msg(c, m)) {
		rc = LOGIN_LOST;
		goto out;
	}
	if (read_msg(c, &r, 0) != RD_OK) {
		rc = LOGIN_LOST;
		goto out;
	}
	if (r.type == PROTO_ERROR && r.code == PROTO_E_BUSY) {
		*out_hint = retry_hint(r.text);
		fprintf(stderr, "mica: %s\n", r.text[0] != '\0' ? r.text :
		    proto_err_name(r.code));
		rc = LOGIN_BUSY;
		goto out;
	}
	if (r.type == PROTO_ERROR) {
		warnx("%s", r.text[0] != '\0' ? r.text :
		    proto_err_name(r.code));
		goto out;
	}
	if (r.type != PROTO_OK || r.id != m->id) {
		warnx("unexpected answer to LOGIN: %s",
		    proto_type_name(r.type));
		goto out;
	}
	rc = LOGIN_OK;
 out:
	proto_msg_cleanup(&r);
	return rc;
}

/*
 * Connects, says HELLO and logs in.  A busy server (ERROR 11) is asked
 * again on a new connection after a jittered back-off that honours its
 * "retry after" hint, until --timeout (default BUSY_DEFAULT_S): the code
 * was not checked, so sending it again is fine.  A connection lost while
 * the LOGIN was out is not retried: the server may have used the code.
 */
static int
session_open(struct conn *c, const struct opts *o)
{
	struct proto_msg m;
	time_t start, deadline;
	int attempt, hint, rc = 0;

	proto_msg_init(&m, PROTO_LOGIN, 0);
	if (!login_prepare(o, &m, "password"))
		goto out;
	start = time(NULL);
	deadline = start + (o->timeout > 0 ? o->timeout : BUSY_DEFAULT_S);
	for (attempt = 0;; attempt++) {
		if (!conn_open(c, o->server, o->ca) || !hello(c))
			goto out;
		switch (login_once(c, &m, &hint)) {
		case LOGIN_OK:
			rc = 1;
			goto out;
		case LOGIN_REFUSED:
			/* RFC 6238: a code is valid for a step or two */
			if (attempt > 0 && time(NULL) - start >= 30)
				fprintf(stderr, "mica: the code may have "
				    "expired while the server was busy; run "
				    "the command again with a new code\n");
			goto out;
		case LOGIN_LOST:
			warnx("%s", MSG_RERUN);
			goto out;
		case LOGIN_BUSY:
			break;
		}
		conn_close(c);
		if (!backoff(attempt, hint, deadline)) {
			warnx("the server stayed busy; giving up after %ld "
			    "seconds (--timeout)", o->timeout > 0 ?
			    o->timeout : (long)BUSY_DEFAULT_S);
			goto out;
		}
	}
 out:
	proto_msg_cleanup(&m);	/* wipes the password */
	return rc;
}

/* ---- results ---- */

static int
pem_append(BIO *bio, const uint8_t *der, size_t len, X509 **out_x)
{
	const unsigned char *p = der;
	X509 *x;
	int rc;

	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		X509_free(x);
		ssl_warn("certificate from the server does not parse");
		return 0;
	}
	rc = PEM_write_bio_X509(bio, x);
	if (out_x != NULL)
		*out_x = x;
	else
		X509_free(x);
	return rc;
}

static int
bio_write_atomic(BIO *bio, const char *path, mode_t mode)
{
	char *data;
	long len;

	len = BIO_get_mem_data(bio, &data);
	return len > 0 && write_atomic(path, data, (size_t)len, mode);
}

/* ---- PKCS#12 ---- */

/* The p12 password: from the file's first line, or asked twice. */
static int
p12_password(struct p12_out *p, const struct opts *o)
{
	char again[P12_PASSWORD_MAX + 1];
	size_t n = 0;
	int rc = 0;

	if (o->p12_password_file != NULL) {
		if (!read_first_line(o->p12_password_file, p->pass,
		    sizeof(p->pass), &p->pass_len))
			goto out;
		if (p->pass_len == 0) {
			warnx("%s: the first line is empty; a PKCS#12 file "
			    "needs a password", o->p12_password_file);
			goto out;
		}
		rc = 1;
		goto out;
	}
	if (!ask_secret("PKCS#12 password", p->pass, sizeof(p->pass),
	    &p->pass_len) ||
	    !ask_secret("PKCS#12 password again", again, sizeof(again), &n))
		goto out;
	if (p->pass_len == 0) {
		warnx("empty PKCS#12 password refused");
		goto out;
	}
	if (n != p->pass_len || sodium_memcmp(again, p->pass, n) != 0) {
		warnx("the two PKCS#12 passwords differ");
		goto out;
	}
	rc = 1;
 out:
	sodium_memzero(again, sizeof(again));
	if (!rc)
		sodium_memzero(p->pass, sizeof(p->pass));
	return rc;
}

/*
 * Writes key, certificate and CA certificates (issuer first, up to the
 * root) as PKCS#12 to p->path, mode 0600.  Default: AES-256-CBC with
 * PBKDF2 (PBES2) for key and certificates, HMAC-SHA-256 MAC; legacy:
 * pbeWithSHA1And3-KeyTripleDES-CBC for both and a SHA-1 MAC (in the
 * default provider: RC2 would need the legacy one).
 */
static int
write_p12(const struct p12_out *p, EVP_PKEY *pkey, X509 *cert,
    STACK_OF(X509) *cas)
{
	PKCS12 *p12 = NULL;
	unsigned char *der = NULL;
	char name[256];
	int nid, len, rc = 0;

	nid = p->legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC :
	    NID_aes_256_cbc;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
	    NID_commonName, name, sizeof(name)) <= 0) {
		ERR_clear_error();
		snprintf(name, sizeof(name), "mica certificate");
	}
	/* mac_iter -1: no MAC yet; PKCS12_set_mac picks its digest */
	if ((p12 = PKCS12_create_ex(p->pass, name, pkey, cert, cas, nid, nid,
	    PKCS12_DEFAULT_ITER, -1, 0, NULL, NULL)) == NULL ||
	    !PKCS12_set_mac(p12, p->pass, (int)p->pass_len, NULL, 0,
	    PKCS12_DEFAULT_ITER, p->legacy ? EVP_sha1() : EVP_sha256()) ||
	    (len = i2d_PKCS12(p12, &der)) <= 0) {
		ssl_warn("building the PKCS#12 file");
		goto out;
	}
	if (!write_atomic(p->path, der, (size_t)len, 0600))
		goto out;
	printf("pkcs12: %s (%s)\n", p->path, p->legacy ?
	    "legacy: 3DES, SHA-1 MAC" : "AES-256-CBC, PBKDF2, SHA-256 MAC");
	printf("import it:\n"
	    "  Windows:     double-click it, or: certutil -user -importPFX %s\n"
	    "               (Windows before 10 1709 / Server 2016: make it "
	    "with --p12-legacy)\n"
	    "  macOS:       security import %s -f pkcs12 "
	    "-k ~/Library/Keychains/login.keychain-db\n"
	    "  Firefox/NSS: pk12util -i %s -d sql:PROFILE_DIR "
	    "(Chrome on Linux: sql:$HOME/.pki/nssdb)\n",
	    p->path, p->path, p->path);
	rc = 1;
 out:
	OPENSSL_free(der);
	PKCS12_free(p12);
	return rc;
}

/*
 * Checks the certificate against cafile (and pkey) and writes it, the
 * chain up to the root (from the verified path) and, with p12, the
 * PKCS#12 bundle.
 */
static int
write_issued(const struct proto_msg *m, const char *out, const char *cafile,
    EVP_PKEY *pkey, const struct p12_out *p12)
{
	char chainpath[PATH_MAX];
	X509_STORE *store = NULL;
	X509_STORE_CTX *sctx = NULL;
	STACK_OF(X509) *untrusted = NULL, *path = NULL, *cas = NULL;
	X509 *cert = NULL, *x;
	BIO *cb = NULL, *chb = NULL, *junk = NULL;
	size_t i;
	int j, rc = 0;

	if ((cb = BIO_new(BIO_s_mem())) == NULL ||
	    (chb = BIO_new(BIO_s_mem())) == NULL ||
	    (junk = BIO_new(BIO_s_mem())) == NULL ||
	    (untrusted = sk_X509_new_null()) == NULL ||
	    (cas = sk_X509_new_null()) == NULL)
		goto fail;
	if (!pem_append(cb, m->cert, m->cert_len, &cert))
		goto out;
	for (i = 0; i < m->num_chain; i++) {
		x = NULL;
		if (!pem_append(junk, m->chain[i], m->chain_len[i], &x))
			goto out;
		if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			goto fail;
		}
	}
	if (pkey != NULL && X509_check_private_key(cert, pkey) != 1) {
		ERR_clear_error();
		warnx("the issued certificate is not for our key");
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL ||
	    (sctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_load_file(store, cafile) ||
	    !X509_STORE_CTX_init(sctx, store, cert, untrusted))
		goto fail;
	if (X509_verify_cert(sctx) != 1) {
		warnx("the issued certificate does not verify against %s: %s",
		    cafile, X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(sctx)));
		goto out;
	}
	/* The verified path, leaf first, ends at the trusted root. */
	if ((path = X509_STORE_CTX_get1_chain(sctx)) == NULL)
		goto fail;
	for (j = 1; j < sk_X509_num(path); j++) {
		x = sk_X509_value(path, j);
		if (!PEM_write_bio_X509(chb, x) || !X509_up_ref(x))
			goto fail;
		if (!sk_X509_push(cas, x)) {
			X509_free(x);
			goto fail;
		}
	}
	if (snprintf(chainpath, sizeof(chainpath), "%s.chain", out) >=
	    (int)sizeof(chainpath)) {
		warnx("%s: path too long", out);
		goto out;
	}
	if (!bio_write_atomic(cb, out, 0644) ||
	    !bio_write_atomic(chb, chainpath, 0644))
		goto out;
	printf("certificate: %s\nchain: %s\n", out, chainpath);
	if (p12 != NULL && !write_p12(p12, pkey, cert, cas))
		goto out;
	rc = 1;
	goto out;
 fail:
	ssl_warn("checking the certificate");
 out:
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	sk_X509_pop_free(path, X509_free);
	sk_X509_pop_free(cas, X509_free);
	X509_free(cert);
	BIO_free(cb);
	BIO_free(chb);
	BIO_free(junk);
	return rc;
}

static int
save_request_file(const char *path, uint64_t id, const uint8_t *token)
{
	char buf[128 + PROTO_TOKEN_HEX_LEN], hex[PROTO_TOKEN_HEX_LEN + 1];
	int n, rc;

	proto_token_hex(hex, token);
	n = snprintf(buf, sizeof(buf), "request: %" PRIu64 "\ntoken: %s\n",
	    id, hex);
	rc = write_atomic(path, buf, (size_t)n, 0600);
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(hex, sizeof(hex));
	return rc;
}

static int
parse_request_id(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v == 0)
		return 0;
	*out = v;
	return 1;
}

/* Request id and token from --request/--token or --request-file. */
static int
get_request(const struct opts *o, uint64_t *out_id, uint8_t *out_token)
{
	char line[256];
	FILE *f;
	int have_id = 0, have_tok = 0, rc = 0;

	if (o->request_file == NULL) {
		if (!parse_request_id(o->request, out_id)) {
			warnx("--request: not a request id");
			return 0;
		}
		if (!proto_token_parse(out_token, o->token)) {
			warnx("--token: expected %d hex digits",
			    PROTO_TOKEN_HEX_LEN);
			return 0;
		}
		return 1;
	}
	if ((f = fopen(o->request_file, "r")) == NULL) {
		warn("%s", o->request_file);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "request: ", 9) == 0)
			have_id = parse_request_id(line + 9, out_id);
		else if (strncmp(line, "token: ", 7) == 0)
			have_tok = proto_token_parse(out_token, line + 7);
	}
	fclose(f);
	sodium_memzero(line, sizeof(line));
	if (!have_id || !have_tok)
		warnx("%s: expected \"request: ID\" and \"token: HEX\" lines",
		    o->request_file);
	else
		rc = 1;
	return rc;
}

/* Exit code for an answer carrying a final or pending state. */
static int
report_answer(const struct proto_msg *r, const char *out, const char *cafile,
    EVP_PKEY *pkey, const struct p12_out *p12)
{
	switch (r->type) {
	case PROTO_ISSUED:
		if (out == NULL) {
			printf("state: issued\n");
			return EXIT_OK;
		}
		return write_issued(r, out, cafile, pkey, p12) ? EXIT_OK :
		    EXIT_FAIL;
	case PROTO_REJECTED:
		warnx("request %" PRIu64 " rejected: %s", r->request,
		    r->text);
		return EXIT_REJECTED;
	case PROTO_ACCEPTED:
		printf("state: %s\n", proto_state_name(r->state));
		if (r->state == PROTO_STATE_REJECTED)
			return EXIT_REJECTED;
		if (r->state == PROTO_STATE_ISSUED && out == NULL)
			return EXIT_OK;
		return EXIT_PENDING;
	default:
		warnx("unexpected answer: %s", proto_type_name(r->type));
		return EXIT_FAIL;
	}
}

/* ---- the account's certificates (LIST) ---- */

static int
serial_is_zero16(const uint8_t serial[PROTO_SERIAL_LEN])
{
	size_t i;

	for (i = 0; i < PROTO_SERIAL_LEN; i++)
		if (serial[i] != 0)
			return 0;
	return 1;
}

/* Sends LIST; *out is the CERTS reply (cleanup by the caller). */
static int
list_certs(struct conn *c, struct proto_msg *out)
{
	struct proto_msg m;
	int rc = 0;

	proto_msg_init(&m, PROTO_LIST, 0);
	if (!request(c, &m, out))
		goto out;
	if (out->type != PROTO_CERTS) {
		warnx("unexpected answer to LIST: %s",
		    proto_type_name(out->type));
		goto out;
	}
	rc = 1;
 out:
	proto_msg_cleanup(&m);
	return rc;
}

/* A good or held certificate that has not expired can be reissued. */
static int
cert_reissuable(const struct proto_certinfo *ci, time_t now)
{
	return ci->status != PROTO_CERT_REVOKED && ci->not_after >= now;
}

static const char *
cert_status_name(const struct proto_certinfo *ci, time_t now)
{
	if (ci->status == PROTO_CERT_REVOKED)
		return "revoked";
	if (ci->not_after < now)
		return "expired";
	return ci->status == PROTO_CERT_HOLD ? "hold" : "good";
}

static void
fmt_time(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%" PRId64, t);
}

/* The subject as "/CN=alice/O=Org" (control bytes escaped by OpenSSL);
 * "?" when it does not parse. */
static void
fmt_subject(char *buf, size_t size, const struct proto_certinfo *ci)
{
	const unsigned char *p = ci->subject;
	X509_NAME *name;

	if ((name = d2i_X509_NAME(NULL, &p, (long)ci->subject_len)) == NULL ||
	    X509_NAME_oneline(name, buf, (int)size) == NULL) {
		ERR_clear_error();
		snprintf(buf, size, "?");
	}
	X509_NAME_free(name);
}

/* One line per certificate; num > 0 numbers it ("1)"). */
static void
print_cert(FILE *f, int num, const struct proto_certinfo *ci, time_t now)
{
	char serial[SERIAL_HEX_LEN], repl[SERIAL_HEX_LEN], nb[32], na[32];
	char subj[512];

	serial_hex(serial, ci->serial);
	fmt_time(nb, sizeof(nb), ci->not_before);
	fmt_time(na, sizeof(na), ci->not_after);
	fmt_subject(subj, sizeof(subj), ci);
	if (num > 0)
		fprintf(f, "%3d) ", num);
	fprintf(f, "serial %s  %s  %s .. %s  %s", serial,
	    cert_status_name(ci, now), nb, na, subj);
	if (!serial_is_zero16(ci->replaced_by)) {
		serial_hex(repl, ci->replaced_by);
		fprintf(f, "  replaced by %s", repl);
	}
	fprintf(f, "\n");
}

static void
print_certs(FILE *f, const struct proto_msg *r, int reissuable_only)
{
	time_t now = time(NULL);
	size_t i;
	int num = 0;

	for (i = 0; i < r->num_certs; i++) {
		if (reissuable_only && !cert_reissuable(&r->certs[i], now))
			continue;
		print_cert(f, reissuable_only ? ++num : 0, &r->certs[i], now);
	}
	if (r->total > r->num_certs)
		fprintf(f, "(%" PRIu32 " certificates in all; only the %zu "
		    "newest are listed)\n", r->total, r->num_certs);
}

/* Asks on the terminal for a number 1..max; 0 when none was given. */
static int
ask_number(int max)
{
	char line[32], *end;
	FILE *tty;
	long v = 0;
	int tries;

	if ((tty = fopen("/dev/tty", "r+")) == NULL) {
		warnx("no terminal to ask which certificate was lost");
		return 0;
	}
	for (tries = 0; tries < 3; tries++) {
		fprintf(tty, "which certificate was lost? [1-%d]: ", max);
		fflush(tty);
		if (fgets(line, sizeof(line), tty) == NULL)
			break;
		line[strcspn(line, "\r\n")] = '\0';
		errno = 0;
		v = strtol(line, &end, 10);
		if (line[0] != '\0' && *end == '\0' && errno == 0 &&
		    v >= 1 && v <= max)
			break;
		fprintf(tty, "a number from 1 to %d, please\n", max);
		v = 0;
	}
	fclose(tty);
	return (int)v;
}

/*
 * Picks the lost certificate from a CERTS reply: the one with serial
 * (when have_serial), else by asking on a terminal, else the only
 * reissuable one.  Returns EXIT_OK with *out set, or an exit code.
 */
static int
choose_cert(const struct proto_msg *r, const struct opts *o,
    const uint8_t *serial, int have_serial,
    const struct proto_certinfo **out)
{
	const struct proto_certinfo *cand[PROTO_LIST_MAX];
	char hex[SERIAL_HEX_LEN];
	time_t now = time(NULL);
	size_t i, n = 0;
	int pick;

	*out = NULL;
	for (i = 0; i < r->num_certs; i++) {
		if (have_serial) {
			if (memcmp(r->certs[i].serial, serial,
			    PROTO_SERIAL_LEN) == 0) {
				*out = &r->certs[i];
				return EXIT_OK;
			}
		} else if (cert_reissuable(&r->certs[i], now))
			cand[n++] = &r->certs[i];
	}
	if (have_serial) {
		serial_hex(hex, serial);
		warnx("serial %s is not among the certificates listed for "
		    "account %s; give --subject or --lost-cert", hex,
		    o->account);
		return EXIT_FAIL;
	}
	if (n == 0) {
		warnx("account %s has no good certificate to reissue "
		    "(revoked and expired ones cannot be):", o->account);
		print_certs(stderr, r, 0);
		return EXIT_FAIL;
	}
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "certificates of account %s that can be "
		    "reissued:\n", o->account);
		print_certs(stderr, r, 1);
		if ((pick = ask_number((int)n)) == 0)
			return EXIT_FAIL;
		*out = cand[pick - 1];
		return EXIT_OK;
	}
	if (n == 1) {
		serial_hex(hex, cand[0]->serial);
		fprintf(stderr, "mica: taking the only good certificate of "
		    "account %s: serial %s\n", o->account, hex);
		*out = cand[0];
		return EXIT_OK;
	}
	warnx("account %s has %zu good certificates and there is no "
	    "terminal to choose; rerun with --serial SERIAL (and a new "
	    "code):", o->account, n);
	print_certs(stderr, r, 1);
	return EXIT_CHOOSE;
}

/* ---- commands ---- */

/*
 * Serial and subject from the options: --lost-cert gives both (unless
 * --serial / --subject say otherwise).  Either may stay unknown
 * (*have_serial 0, *out_name NULL): then they come from the server.
 */
static int
subject_and_serial(struct opts *o, X509_NAME **out_name,
    uint8_t serial[PROTO_SERIAL_LEN], int *have_serial)
{
	const ASN1_INTEGER *ai;
	X509 *lost = NULL;
	BIGNUM *bn = NULL;
	int rc = 0;

	*out_name = NULL;
	*have_serial = 0;
	if (o->lost_cert != NULL) {
		if ((lost = load_cert(o->lost_cert)) == NULL)
			goto out;
		if (o->subject == NULL &&
		    (*out_name = X509_NAME_dup(
		    X509_get_subject_name(lost))) == NULL)
			goto out;
		if (o->serial == NULL) {
			ai = X509_get0_serialNumber(lost);
			if ((bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL ||
			    BN_is_negative(bn) ||
			    BN_bn2binpad(bn, serial, PROTO_SERIAL_LEN) < 0) {
				warnx("%s: serial does not fit in %d bytes",
				    o->lost_cert, PROTO_SERIAL_LEN);
				goto out;
			}
			*have_serial = 1;
		}
	}
	if (o->subject != NULL &&
	    (*out_name = parse_subject(o->subject)) == NULL) {
		warnx("--subject: expected \"/TYPE=value/...\", e.g. "
		    "\"/CN=alice/O=Org\"");
		goto out;
	}
	if (o->serial != NULL) {
		if (!serial_parse(serial, o->serial)) {
			warnx("--serial: not a hex serial of at most %d bytes",
			    PROTO_SERIAL_LEN);
			goto out;
		}
		*have_serial = 1;
	}
	rc = 1;
 out:
	if (!rc) {
		X509_NAME_free(*out_name);
		*out_name = NULL;
	}
	BN_free(bn);
	X509_free(lost);
	return rc;
}

/*
 * After LOGIN: lists the account's certificates and takes the lost
 * one's serial (unless known) and subject (unless known) from it.
 * Returns EXIT_OK or the exit code.
 */
static int
find_lost(struct conn *c, const struct opts *o, uint8_t *serial,
    int have_serial, X509_NAME **subject)
{
	const struct proto_certinfo *ci;
	const unsigned char *p;
	struct proto_msg r;
	int rc = EXIT_FAIL;

	proto_msg_init(&r, PROTO_OK, 0);
	if (!list_certs(c, &r))
		goto out;
	if ((rc = choose_cert(&r, o, serial, have_serial, &ci)) != EXIT_OK)
		goto out;
	rc = EXIT_FAIL;
	memcpy(serial, ci->serial, PROTO_SERIAL_LEN);
	if (*subject == NULL) {
		p = ci->subject;
		if ((*subject = d2i_X509_NAME(NULL, &p,
		    (long)ci->subject_len)) == NULL ||
		    p != ci->subject + ci->subject_len) {
			ssl_warn("the lost certificate's subject from the "
			    "server does not parse");
			goto out;
		}
	}
	rc = EXIT_OK;
 out:
	proto_msg_cleanup(&r);
	return rc;
}

/*
 * The connection was lost while waiting (micad restarted, the network
 * went away): reconnects and asks with FETCH and the saved token (no
 * login, no code) until the request is decided or the deadline (0: none)
 * passes, backing off between tries.
 */
static int
resume_fetch(const struct opts *o, uint64_t id, const uint8_t *token,
    const char *reqfile, EVP_PKEY *pkey, const struct p12_out *p12,
    time_t deadline)
{
	struct conn c = { .fd = -1 };
	struct proto_msg m, r;
	int attempt, rc = EXIT_FAIL;

	proto_msg_init(&m, PROTO_FETCH, 0);
	proto_msg_init(&r, PROTO_OK, 0);
	m.request = id;
	memcpy(m.token, token, PROTO_TOKEN_LEN);
	fprintf(stderr, "mica: lost the connection while waiting; resuming "
	    "request %" PRIu64 " with the saved token (%s), no new login\n",
	    id, reqfile);
	for (attempt = 0;; attempt++) {
		if (!backoff(attempt, 0, deadline))
			break;
		proto_msg_cleanup(&r);
		proto_msg_init(&r, PROTO_OK, 0);
		if (conn_open(&c, o->server, o->ca) && hello(&c) &&
		    request(&c, &m, &r)) {
			if (r.type != PROTO_ACCEPTED ||
			    r.state == PROTO_STATE_REJECTED) {
				rc = report_answer(&r, o->out, o->ca, pkey,
				    p12);
				goto out;
			}
			if (attempt == 0)
				fprintf(stderr, "mica: request %" PRIu64
				    " still pending; asking again from time "
				    "to time\n", id);
		} else if (c.fd != -1 && r.type == PROTO_ERROR &&
		    r.code == PROTO_E_NOT_FOUND)
			goto out;	/* the token is wrong: no point */
		conn_close(&c);
	}
	warnx("still pending after %ld seconds; later: mica fetch "
	    "--request-file %s --out %s", o->timeout, reqfile, o->out);
	rc = EXIT_PENDING;
 out:
	conn_close(&c);
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	return rc;
}

/* Sends WAIT and blocks until ISSUED/REJECTED or the timeout. */
static int
wait_result(struct conn *c, const struct opts *o, uint64_t id,
    const uint8_t *token, const char *reqfile, EVP_PKEY *pkey,
    const struct p12_out *p12, int issued)
{
	struct proto_msg m, r;
	time_t deadline = 0;
	enum rd_rc rr;
	int rc = EXIT_FAIL;

	proto_msg_init(&m, PROTO_WAIT, c->next_id++);
	proto_msg_init(&r, PROTO_OK, 0);
	m.request = id;
	if (o->timeout > 0)
		deadline = time(NULL) + o->timeout;
	if (!send_msg(c, &m)) {
		rc = resume_fetch(o, id, token, reqfile, pkey, p12, deadline);
		goto out;
	}
	/* under review = auto the request is issued already: say so */
	if (issued)
		fprintf(stderr, "mica: approved at once (the CA reviews "
		    "automatically); fetching the certificate...\n");
	else
		fprintf(stderr, "mica: waiting for review...\n");
	for (;;) {
		proto_msg_cleanup(&r);
		rr = read_msg(c, &r, deadline != 0 ? deadline : WAIT_FOREVER);
		if (rr == RD_TIMEOUT) {
			warnx("still pending after %ld seconds; later: mica "
			    "fetch --request-file %s --out %s", o->timeout,
			    reqfile, o->out);
			rc = EXIT_PENDING;
			goto out;
		}
		if (rr != RD_OK) {
			rc = resume_fetch(o, id, token, reqfile, pkey, p12,
			    deadline);
			goto out;
		}
		if (r.type == PROTO_ERROR) {
			warnx("%s", r.text[0] != '\0' ? r.text :
			    proto_err_name(r.code));
			goto out;
		}
		if (r.id != m.id)
			continue;	/* not ours: ignore */
		if (r.type == PROTO_ACCEPTED && r.state != PROTO_STATE_REJECTED)
			continue;	/* acknowledgement: keep waiting */
		rc = report_answer(&r, o->out, o->ca, pkey, p12);
		goto out;
	}
 out:
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	return rc;
}

/* --p12: a sodium_malloc'd p12_out with the password (NULL: no --p12).
 * Returns 0 on failure. */
static int
p12_setup(const struct opts *o, struct p12_out **out)
{
	struct p12_out *p;

	*out = NULL;
	if (o->p12 == NULL)
		return 1;
	if ((p = sodium_malloc(sizeof(*p))) == NULL) {
		warn("sodium_malloc");
		return 0;
	}
	memset(p, 0, sizeof(*p));
	p->path = o->p12;
	p->legacy = o->p12_legacy;
	if (!p12_password(p, o)) {
		sodium_free(p);
		return 0;
	}
	*out = p;
	return 1;
}

/* Loads an existing private key (PEM). */
static EVP_PKEY *
load_key(const char *keyfile)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;

	if ((bio = BIO_new_file(keyfile, "r")) == NULL) {
		ssl_warn(keyfile);
		return NULL;
	}
	if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		ssl_warn(keyfile);
	BIO_free(bio);
	return pkey;
}

/*
 * The end of a command that may have made a new key at path.  A key made
 * for a request the CA refused (an ERROR answer) or that was never sent
 * certifies nothing: it is removed, so that a retry does not reuse a key
 * that sat on disk unasked.  When the answer was lost after the request
 * was sent, the CA may have acted on it: the key is kept, and why_kept
 * says what the CA may have done.
 */
static void
new_key_settle(const char *path, int created, int used, int unanswered,
    const char *what, const char *why_kept, const char *why_removed)
{
	if (!created || used)
		return;
	if (unanswered)
		fprintf(stderr, "mica: no answer to %s; keeping the new key "
		    "%s: %s\n", what, path, why_kept);
	else if (unlink(path) == 0)
		fprintf(stderr, "mica: removed the new key %s: %s\n", path,
		    why_removed);
	else
		warn("%s, but the new key %s could not be removed",
		    why_removed, path);
}

/*
 * reissue and request, once logged in: a key and a CSR for subject, the
 * request m, ACCEPTED with its token saved in reqfile, then --no-wait's
 * print or the wait for the certificate.  *key_created, *sent and
 * *accepted tell the caller what to do with a new key.
 */
static int
submit_and_wait(struct conn *c, const struct opts *o, struct proto_msg *m,
    struct proto_msg *r, const X509_NAME *subject, const char *reqfile,
    struct p12_out *p12, EVP_PKEY **pkey, int *key_created, int *sent,
    int *accepted)
{
	char hex[PROTO_TOKEN_HEX_LEN + 1];
	uint8_t *csr = NULL;
	int csr_len = 0, ok;

	ok = (*pkey = load_or_create_key(o->key, key_created)) != NULL &&
	    build_csr(*pkey, subject, &csr, &csr_len) &&
	    proto_msg_set_csr(m, csr, (size_t)csr_len);
	OPENSSL_free(csr);
	if (!ok)
		return EXIT_FAIL;
	*sent = 1;
	if (!request(c, m, r))
		return EXIT_FAIL;
	if (r->type != PROTO_ACCEPTED || !r->has_token) {
		warnx("unexpected answer to %s: %s", proto_type_name(m->type),
		    proto_type_name(r->type));
		return EXIT_FAIL;
	}
	*accepted = 1;	/* the CA has the CSR: the key is needed now */
	if (!save_request_file(reqfile, r->request, r->token))
		return EXIT_FAIL;
	printf("request: %" PRIu64 "\n", r->request);
	fflush(stdout);
	if (o->no_wait) {
		proto_token_hex(hex, r->token);
		printf("token: %s\n", hex);
		sodium_memzero(hex, sizeof(hex));
		fprintf(stderr, "mica: the token is shown once; it is also "
		    "saved in %s\nmica: later: mica fetch --request-file %s "
		    "--out %s\n", reqfile, reqfile, o->out);
		return EXIT_PENDING;
	}
	return wait_result(c, o, r->request, r->token, reqfile, *pkey, p12,
	    r->state == PROTO_STATE_ISSUED);
}

static int
cmd_reissue(struct opts *o)
{
	struct p12_out *p12 = NULL;
	char reqfile[PATH_MAX];
	struct conn c = { .fd = -1 };
	struct proto_msg m, r;
	X509_NAME *subject = NULL;
	EVP_PKEY *pkey = NULL;
	int reason = PROTO_REASON_LOST, rc = EXIT_FAIL;
	int have_serial, key_created = 0, accepted = 0, sent = 0;
	int logged_in = 0;

	proto_msg_init(&m, PROTO_REISSUE, 0);
	proto_msg_init(&r, PROTO_OK, 0);
	if (o->account == NULL || o->key == NULL || o->out == NULL) {
		fprintf(stderr, "%s", usage_reissue);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o->reason != NULL && (reason = proto_reason_parse(o->reason)) < 0) {
		warnx("--reason: lost, compromised or damaged");
		rc = EXIT_USAGE;
		goto out;
	}
	if (o->note != NULL && strlen(o->note) > PROTO_NOTE_MAX) {
		warnx("--note: longer than %d bytes", PROTO_NOTE_MAX);
		rc = EXIT_USAGE;
		goto out;
	}
	if (snprintf(reqfile, sizeof(reqfile), "%s.request", o->out) >=
	    (int)sizeof(reqfile)) {
		warnx("--out: path too long");
		goto out;
	}
	if (!subject_and_serial(o, &subject, m.serial, &have_serial) ||
	    !p12_setup(o, &p12))
		goto out;
	m.reason = (uint8_t)reason;
	if (o->note != NULL)
		snprintf(m.note, sizeof(m.note), "%s", o->note);

	if (!session_open(&c, o))
		goto out;
	logged_in = 1;
	/* The lost certificate's serial or subject from the server. */
	if ((!have_serial || subject == NULL) &&
	    (rc = find_lost(&c, o, m.serial, have_serial, &subject)) !=
	    EXIT_OK)
		goto out;
	rc = submit_and_wait(&c, o, &m, &r, subject, reqfile, p12, &pkey,
	    &key_created, &sent, &accepted);
 out:
	/* The connection broke after the LOGIN used the code. */
	if (logged_in && !accepted && c.lost)
		warnx("%s", MSG_RERUN);
	new_key_settle(o->key, key_created, accepted,
	    sent && r.type != PROTO_ERROR, "the request",
	    "the CA may have recorded the request (ask the CA operator, or "
	    "run mica list)", "the CA did not accept the request");
	conn_close(&c);
	sodium_free(p12);	/* wipes the password */
	X509_NAME_free(subject);
	EVP_PKEY_free(pkey);
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	return rc;
}

/* request --key-out default: OUT without .crt/.pem, plus .key. */
static int
default_key_path(char *buf, size_t size, const char *out)
{
	size_t n = strlen(out);

	if (n > 4 && (strcmp(out + n - 4, ".crt") == 0 ||
	    strcmp(out + n - 4, ".pem") == 0))
		n -= 4;
	return snprintf(buf, size, "%.*s.key", (int)n, out) < (int)size;
}

/* request: an enrolment (REQUEST), then the same wait/fetch as reissue. */
static int
cmd_request(struct opts *o)
{
	struct p12_out *p12 = NULL;
	char reqfile[PATH_MAX], keyfile[PATH_MAX], subj[PROTO_ACCOUNT_MAX + 8];
	struct conn c = { .fd = -1 };
	struct proto_msg m, r;
	X509_NAME *subject = NULL;
	EVP_PKEY *pkey = NULL;
	int rc = EXIT_FAIL;
	int key_created = 0, accepted = 0, sent = 0;

	proto_msg_init(&m, PROTO_REQUEST, 0);
	proto_msg_init(&r, PROTO_OK, 0);
	if (o->account == NULL || o->out == NULL) {
		fprintf(stderr, "%s", usage_request);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o->serial != NULL || o->lost_cert != NULL || o->reason != NULL) {
		warnx("request asks for a first certificate: --serial, "
		    "--lost-cert and --reason belong to reissue");
		fprintf(stderr, "%s", usage_request);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o->note != NULL && strlen(o->note) > PROTO_NOTE_MAX) {
		warnx("--note: longer than %d bytes", PROTO_NOTE_MAX);
		rc = EXIT_USAGE;
		goto out;
	}
	if (snprintf(reqfile, sizeof(reqfile), "%s.request", o->out) >=
	    (int)sizeof(reqfile) || (o->key == NULL &&
	    !default_key_path(keyfile, sizeof(keyfile), o->out))) {
		warnx("--out: path too long");
		goto out;
	}
	if (o->key == NULL)
		o->key = keyfile;
	snprintf(subj, sizeof(subj), "/CN=%s", o->account);
	if ((subject = parse_subject(o->subject != NULL ? o->subject :
	    subj)) == NULL) {
		warnx("--subject: expected /TYPE=value/... as openssl req "
		    "-subj");
		rc = EXIT_USAGE;
		goto out;
	}
	if (!p12_setup(o, &p12))
		goto out;
	if (o->note != NULL)
		snprintf(m.note, sizeof(m.note), "%s", o->note);
	if (!session_open(&c, o))
		goto out;
	rc = submit_and_wait(&c, o, &m, &r, subject, reqfile, p12, &pkey,
	    &key_created, &sent, &accepted);
 out:
	new_key_settle(o->key, key_created, accepted,
	    sent && r.type != PROTO_ERROR, "the request",
	    "the CA may have recorded the request (ask the CA operator)",
	    "the CA did not accept the request");
	conn_close(&c);
	sodium_free(p12);
	X509_NAME_free(subject);
	EVP_PKEY_free(pkey);
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	return rc;
}

/* list: log in, LIST, print. */
static int
cmd_list(struct opts *o)
{
	struct conn c = { .fd = -1 };
	struct proto_msg r;
	int rc = EXIT_FAIL;

	proto_msg_init(&r, PROTO_OK, 0);
	if (o->account == NULL) {
		fprintf(stderr, "%s", usage_list);
		rc = EXIT_USAGE;
		goto out;
	}
	if (!session_open(&c, o) || !list_certs(&c, &r))
		goto out;
	printf("account %s: %" PRIu32 " certificate%s\n", o->account,
	    r.total, r.total == 1 ? "" : "s");
	print_certs(stdout, &r, 0);
	rc = EXIT_OK;
 out:
	conn_close(&c);
	proto_msg_cleanup(&r);
	return rc;
}

/* ---- passwd and enroll: the subscriber looks after the account ---- */

/* The new password: first line of --new-password-file, or asked twice
 * on the terminal.  Into m->new_password. */
static int
read_new_password(const struct opts *o, struct proto_msg *m)
{
	char again[PROTO_PASSWORD_MAX + 2];
	size_t n = 0;
	int rc = 0;

	if (o->new_password_file != NULL) {
		if (!read_first_line(o->new_password_file, m->new_password,
		    sizeof(m->new_password), &m->new_password_len))
			goto out;
	} else {
		if (!ask_secret("new password", m->new_password,
		    sizeof(m->new_password), &m->new_password_len) ||
		    !ask_secret("new password again", again, sizeof(again),
		    &n))
			goto out;
		if (n != m->new_password_len ||
		    sodium_memcmp(again, m->new_password, n) != 0) {
			warnx("the new passwords differ");
			goto out;
		}
	}
	if (m->new_password_len == 0) {
		warnx("empty new password");
		goto out;
	}
	rc = 1;
 out:
	sodium_memzero(again, sizeof(again));
	return rc;
}

/*
 * LOGIN for passwd: like login_once(), but ERROR 23 (password expired) is the
 * expected way in, not a failure: the server then takes only PASSWD.
 */
static int
passwd_login(struct conn *c, const struct opts *o)
{
	struct proto_msg m, r;
	int rc = 0;

	proto_msg_init(&m, PROTO_LOGIN, c->next_id++);
	proto_msg_init(&r, PROTO_OK, 0);
	if (!login_prepare(o, &m, "current password"))
		goto out;
	if (!send_msg(c, &m) || read_msg(c, &r, 0) != RD_OK)
		goto out;
	if (r.type == PROTO_ERROR && r.code == PROTO_E_PW_EXPIRED) {
		fprintf(stderr, "mica: %s\n", r.text);
		rc = 1;
	} else if (r.type == PROTO_ERROR)
		warnx("%s", r.text[0] != '\0' ? r.text :
		    proto_err_name(r.code));
	else if (r.type != PROTO_OK)
		warnx("unexpected answer to LOGIN: %s",
		    proto_type_name(r.type));
	else
		rc = 1;
 out:
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);	/* wipes the password */
	return rc;
}

static int
cmd_passwd(struct opts *o)
{
	struct conn c = { .fd = -1 };
	struct proto_msg m, r;
	int rc = EXIT_FAIL;

	proto_msg_init(&m, PROTO_PASSWD, 0);
	proto_msg_init(&r, PROTO_OK, 0);
	if (o->account == NULL) {
		fprintf(stderr, "%s", usage_passwd);
		rc = EXIT_USAGE;
		goto out;
	}
	/* the new password first: nothing is sent if it cannot be read */
	if (!read_new_password(o, &m))
		goto out;
	if (!conn_open(&c, o->server, o->ca) || !hello(&c) ||
	    !passwd_login(&c, o) || !request(&c, &m, &r))
		goto out;
	if (r.type != PROTO_OK) {
		warnx("unexpected answer to PASSWD: %s",
		    proto_type_name(r.type));
		goto out;
	}
	printf("password changed for account %s\n", o->account);
	rc = EXIT_OK;
 out:
	conn_close(&c);
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	return rc;
}

#ifdef MICA_QRENCODE
/* The otpauth URI as a terminal QR code: two modules per character
 * (Unicode half blocks), dark on light, with a quiet zone of 2. */
static void
print_qr(FILE *f, const char *uri)
{
	static const char *const cell[4] = { "\u2588", "\u2580", "\u2584",
	    " " };
	QRcode *qr;
	int x, y, w, top, bot;

	if ((qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8,
	    1)) == NULL) {
		warnx("cannot make a QR code of the URI");
		return;
	}
	w = qr->width;
	for (y = -2; y < w + 2; y += 2) {
		for (x = -2; x < w + 2; x++) {
			top = y >= 0 && y < w && x >= 0 && x < w &&
			    (qr->data[y * w + x] & 1);
			bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			    (qr->data[(y + 1) * w + x] & 1);
			/* light module = full block, dark = space */
			fputs(cell[(top ? 2 : 0) + (bot ? 1 : 0)], f);
		}
		fputc('\n', f);
	}
	QRcode_free(qr);
}
#endif

static int
cmd_enroll(struct opts *o)
{
	struct conn c = { .fd = -1 };
	struct proto_msg m, r;
	char b32[(PROTO_TOTP_SECRET_MAX * 8 + 4) / 5 + 1], uri[512];
	int rc = EXIT_FAIL;

	proto_msg_init(&m, PROTO_ENROLL, 0);
	proto_msg_init(&r, PROTO_OK, 0);
	if (o->account == NULL || o->code == NULL) {
		fprintf(stderr, "%s", usage_enroll);
		rc = EXIT_USAGE;
		goto out;
	}
	if (strlen(o->account) > PROTO_ACCOUNT_MAX ||
	    !proto_account_valid(o->account)) {
		warnx("--account: 1-64 of A-Z a-z 0-9 . - _ @");
		rc = EXIT_USAGE;
		goto out;
	}
	if (strlen(o->code) > PROTO_ENROL_CODE_MAX) {
		warnx("--code: not an enrolment code");
		rc = EXIT_USAGE;
		goto out;
	}
	snprintf(m.account, sizeof(m.account), "%s", o->account);
	snprintf(m.enrol_code, sizeof(m.enrol_code), "%s", o->code);
	if (!read_new_password(o, &m))
		goto out;
	if (!conn_open(&c, o->server, o->ca) || !hello(&c) ||
	    !request(&c, &m, &r))
		goto out;
	if (r.type != PROTO_ENROLLED) {
		warnx("unexpected answer to ENROLL: %s",
		    proto_type_name(r.type));
		goto out;
	}
	if (!auth_base32_encode(b32, sizeof(b32), r.totp_secret,
	    r.totp_secret_len, 0) || !auth_otpauth_uri(uri, sizeof(uri),
	    o->account, r.totp_secret, r.totp_secret_len)) {
		warnx("cannot show the TOTP secret");
		goto out;
	}
	printf("account: %s\n", o->account);
	printf("password set; enrolment code used up\n");
	printf("totp secret (base32, shown once): %s\n", b32);
	printf("totp uri: %s\n", uri);
	if (o->qr) {
#ifdef MICA_QRENCODE
		print_qr(stdout, uri);
#else
		warnx("--qr: this mica was built without libqrencode");
#endif
	}
	printf("add it to your authenticator app now: it is not shown "
	    "again\n");
	rc = EXIT_OK;
 out:
	sodium_memzero(b32, sizeof(b32));
	sodium_memzero(uri, sizeof(uri));
	conn_close(&c);
	proto_msg_cleanup(&r);	/* wipes the secret */
	proto_msg_cleanup(&m);
	return rc;
}

/* fetch (is_fetch) or status. */
static int
cmd_lookup(struct opts *o, int is_fetch)
{
	struct conn c = { .fd = -1 };
	struct proto_msg m, r;
	struct p12_out *p12 = NULL;
	EVP_PKEY *pkey = NULL;
	int rc = EXIT_FAIL;

	proto_msg_init(&m, is_fetch ? PROTO_FETCH : PROTO_STATUS, 0);
	proto_msg_init(&r, PROTO_OK, 0);
	if ((o->request_file == NULL &&
	    (o->request == NULL || o->token == NULL)) ||
	    (is_fetch && o->out == NULL)) {
		fprintf(stderr, "%s", is_fetch ? usage_fetch : usage_status);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o->p12 != NULL && (!is_fetch || o->key == NULL)) {
		warnx("--p12 needs fetch and --key (the key the request was "
		    "made with)");
		fprintf(stderr, "%s", is_fetch ? usage_fetch : usage_status);
		rc = EXIT_USAGE;
		goto out;
	}
	if (!get_request(o, &m.request, m.token))
		goto out;
	if (o->p12 != NULL &&
	    ((pkey = load_key(o->key)) == NULL || !p12_setup(o, &p12)))
		goto out;
	if (!conn_open(&c, o->server, o->ca) || !hello(&c) ||
	    !request(&c, &m, &r))
		goto out;
	printf("request: %" PRIu64 "\n", m.request);
	if (!is_fetch) {
		/* the token is never printed again: the caller has it */
		if (r.type == PROTO_ACCEPTED && r.state == PROTO_STATE_ISSUED) {
			printf("state: issued\n");
			rc = EXIT_OK;
			goto out;
		}
	}
	rc = report_answer(&r, is_fetch ? o->out : NULL, o->ca, pkey, p12);
 out:
	conn_close(&c);
	sodium_free(p12);	/* wipes the password */
	EVP_PKEY_free(pkey);
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	return rc;
}

/* ---- renew ---- */

/* Loads a PEM certificate; NULL on failure (warned). */
static X509 *
load_cert_file(const char *path)
{
	X509 *x = NULL;
	BIO *bio;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ssl_warn(path);
		return NULL;
	}
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		ssl_warn(path);
	BIO_free(bio);
	return x;
}

/* The RENEW signature by key over proto_renew_tbs; 0 on failure. */
static int
renew_sign(struct proto_msg *m, EVP_PKEY *key, const uint8_t *nonce)
{
	uint8_t tbs[PROTO_RENEW_TBS_LEN];
	unsigned char *sig = NULL;
	EVP_MD_CTX *mc = NULL;
	size_t sig_len = 0;
	int rc = 0;

	proto_renew_tbs(tbs, nonce, m->cert, m->cert_len, m->csr, m->csr_len);
	if ((mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(mc, NULL, sigmd_name(key), NULL, NULL, key,
	    NULL) != 1 ||
	    EVP_DigestSign(mc, NULL, &sig_len, tbs, sizeof(tbs)) != 1 ||
	    (sig = OPENSSL_malloc(sig_len)) == NULL ||
	    EVP_DigestSign(mc, sig, &sig_len, tbs, sizeof(tbs)) != 1) {
		ssl_warn("signing the renewal with --key");
		goto out;
	}
	if (!proto_msg_set_sig(m, sig, sig_len)) {
		warnx("the signature is larger than %d bytes", PROTO_SIG_MAX);
		goto out;
	}
	rc = 1;
 out:
	OPENSSL_free(sig);
	EVP_MD_CTX_free(mc);
	return rc;
}

static int
cmd_renew(struct opts *o)
{
	struct p12_out *p12 = NULL;
	struct conn c = { .fd = -1 };
	struct proto_msg ch, m, r;
	EVP_PKEY *cur_key = NULL, *new_key = NULL;
	X509 *cur = NULL;
	uint8_t *csr = NULL, *der = NULL;
	int csr_len = 0, der_len, created = 0, sent = 0, renewed = 0;
	int rc = EXIT_FAIL;

	proto_msg_init(&ch, PROTO_CHALLENGE, 0);
	proto_msg_init(&m, PROTO_RENEW, 0);
	proto_msg_init(&r, PROTO_OK, 0);
	if (o->cert == NULL || o->key == NULL || o->out == NULL) {
		fprintf(stderr, "%s", usage_renew);
		rc = EXIT_USAGE;
		goto out;
	}
	if ((cur = load_cert_file(o->cert)) == NULL ||
	    (cur_key = load_key(o->key)) == NULL)
		goto out;
	if (X509_check_private_key(cur, cur_key) != 1) {
		ERR_clear_error();
		warnx("%s is not the key of %s", o->key, o->cert);
		goto out;
	}
	if (!p12_setup(o, &p12))
		goto out;
	if (o->new_key != NULL) {
		if ((new_key = load_or_create_key(o->new_key, &created)) ==
		    NULL)
			goto out;
	} else {
		if (!EVP_PKEY_up_ref(cur_key))
			goto out;
		new_key = cur_key;
	}
	if ((der_len = i2d_X509(cur, &der)) <= 0 ||
	    !proto_msg_set_cert(&m, der, (size_t)der_len) ||
	    !build_csr(new_key, X509_get_subject_name(cur), &csr, &csr_len) ||
	    !proto_msg_set_csr(&m, csr, (size_t)csr_len)) {
		warnx("cannot build the renewal request");
		goto out;
	}
	if (!conn_open(&c, o->server, o->ca) || !hello(&c) ||
	    !request(&c, &ch, &r))
		goto out;
	if (r.type != PROTO_NONCE) {
		warnx("unexpected answer to CHALLENGE: %s",
		    proto_type_name(r.type));
		goto out;
	}
	if (!renew_sign(&m, cur_key, r.nonce))
		goto out;
	proto_msg_cleanup(&r);
	proto_msg_init(&r, PROTO_OK, 0);
	sent = 1;
	if (!request(&c, &m, &r)) {
		if (r.type == PROTO_ERROR &&
		    strstr(r.text, "renewal opens") != NULL) {
			fprintf(stderr, "mica: not due yet: nothing changed\n");
			rc = EXIT_NOT_DUE;
		}
		goto out;
	}
	if (r.type != PROTO_RENEWED) {
		warnx("unexpected answer to RENEW: %s",
		    proto_type_name(r.type));
		goto out;
	}
	renewed = 1;
	if (!write_issued(&r, o->out, o->ca, new_key, p12))
		goto out;
	rc = EXIT_OK;
 out:
	new_key_settle(o->new_key, created, renewed, sent && c.lost, "RENEW",
	    "the CA may have renewed the certificate (run mica list, or ask "
	    "the CA operator)", "the certificate was not renewed");
	conn_close(&c);
	sodium_free(p12);
	OPENSSL_free(csr);
	OPENSSL_free(der);
	X509_free(cur);
	EVP_PKEY_free(cur_key);
	EVP_PKEY_free(new_key);
	proto_msg_cleanup(&r);
	proto_msg_cleanup(&m);
	proto_msg_cleanup(&ch);
	return rc;
}

enum {
	OPT_SERVER = 256, OPT_CA, OPT_ACCOUNT, OPT_SERIAL, OPT_KEY, OPT_OUT,
	OPT_REASON, OPT_PWFILE, OPT_OTP, OPT_NOTE, OPT_NOWAIT, OPT_TIMEOUT,
	OPT_SUBJECT, OPT_LOSTCERT, OPT_REQUEST, OPT_TOKEN, OPT_REQFILE,
	OPT_HELP, OPT_VERSION, OPT_P12, OPT_P12LEGACY, OPT_P12PW,
	OPT_NEWPW, OPT_CODE, OPT_QR,
	OPT_SERVERNAME = 400,
	OPT_CERT, OPT_NEWKEY,
};

static const struct option long_opts[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "account", required_argument, NULL, OPT_ACCOUNT },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "reason", required_argument, NULL, OPT_REASON },
	{ "password-file", required_argument, NULL, OPT_PWFILE },
	{ "otp", required_argument, NULL, OPT_OTP },
	{ "note", required_argument, NULL, OPT_NOTE },
	{ "no-wait", no_argument, NULL, OPT_NOWAIT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "subject", required_argument, NULL, OPT_SUBJECT },
	{ "lost-cert", required_argument, NULL, OPT_LOSTCERT },
	{ "request", required_argument, NULL, OPT_REQUEST },
	{ "token", required_argument, NULL, OPT_TOKEN },
	{ "request-file", required_argument, NULL, OPT_REQFILE },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "new-key", required_argument, NULL, OPT_NEWKEY },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "p12", required_argument, NULL, OPT_P12 },
	{ "p12-legacy", no_argument, NULL, OPT_P12LEGACY },
	{ "p12-password-file", required_argument, NULL, OPT_P12PW },
	{ "server-name", required_argument, NULL, OPT_SERVERNAME },
	{ "key-out", required_argument, NULL, OPT_KEY },
	{ "new-password-file", required_argument, NULL, OPT_NEWPW },
	{ "code", required_argument, NULL, OPT_CODE },
	{ "qr", no_argument, NULL, OPT_QR },
	{ NULL, 0, NULL, 0 },
};

/* Parses options; global ones are allowed before and after COMMAND. */
static int
parse_opts(int argc, char **argv, struct opts *o, int *help)
{
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "+h", long_opts, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER: o->server = optarg; break;
		case OPT_CA: o->ca = optarg; break;
		case OPT_ACCOUNT: o->account = optarg; break;
		case OPT_SERIAL: o->serial = optarg; break;
		case OPT_KEY: o->key = optarg; break;
		case OPT_OUT: o->out = optarg; break;
		case OPT_REASON: o->reason = optarg; break;
		case OPT_PWFILE: o->password_file = optarg; break;
		case OPT_OTP: o->otp = optarg; break;
		case OPT_NOTE: o->note = optarg; break;
		case OPT_NOWAIT: o->no_wait = 1; break;
		case OPT_SUBJECT: o->subject = optarg; break;
		case OPT_LOSTCERT: o->lost_cert = optarg; break;
		case OPT_REQUEST: o->request = optarg; break;
		case OPT_TOKEN: o->token = optarg; break;
		case OPT_REQFILE: o->request_file = optarg; break;
		case OPT_P12: o->p12 = optarg; break;
		case OPT_P12LEGACY: o->p12_legacy = 1; break;
		case OPT_P12PW: o->p12_password_file = optarg; break;
		case OPT_SERVERNAME: server_name_opt = optarg; break;
		case OPT_NEWPW: o->new_password_file = optarg; break;
		case OPT_CODE: o->code = optarg; break;
		case OPT_QR: o->qr = 1; break;
		case OPT_CERT: o->cert = optarg; break;
		case OPT_NEWKEY: o->new_key = optarg; break;
		case OPT_TIMEOUT:
			errno = 0;
			o->timeout = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    o->timeout < 0 || o->timeout > 86400 * 30) {
				warnx("--timeout: seconds, 0 .. 2592000");
				return 0;
			}
			break;
		case 'h':
		case OPT_HELP:
			*help = 1;
			break;
		case OPT_VERSION:
			printf("mica %s\n", MICA_VERSION);
			exit(EXIT_OK);
		default:
			return 0;
		}
	}
	return 1;
}

/*
 * Values whose form is wrong are usage errors (exit 2), found before any
 * file is written or any connection made.
 */
static int
check_formats(const struct opts *o)
{
	uint8_t serial[PROTO_SERIAL_LEN], token[PROTO_TOKEN_LEN];
	char host[256];
	const char *port;
	uint64_t id;
	size_t i;

	if (!split_hostport(o->server, host, sizeof(host), &port)) {
		warnx("--server: expected HOST:PORT, got \"%s\"", o->server);
		return 0;
	}
	if (o->serial != NULL && !serial_parse(serial, o->serial)) {
		warnx("--serial: not a hex serial of at most %d bytes",
		    PROTO_SERIAL_LEN);
		return 0;
	}
	if (o->request != NULL && !parse_request_id(o->request, &id)) {
		warnx("--request: not a request id");
		return 0;
	}
	if (o->token != NULL && !proto_token_parse(token, o->token)) {
		warnx("--token: expected %d hex digits", PROTO_TOKEN_HEX_LEN);
		return 0;
	}
	sodium_memzero(token, sizeof(token));
	if (o->note != NULL) {
		for (i = 0; o->note[i] != '\0'; i++)
			if ((unsigned char)o->note[i] < 0x20 ||
			    o->note[i] == 0x7f) {
				warnx("--note: control characters (line breaks, "
				    "tabs, escapes) are not allowed");
				return 0;
			}
	}
	if ((o->p12_legacy || o->p12_password_file != NULL) &&
	    o->p12 == NULL) {
		warnx("--p12-legacy and --p12-password-file go with --p12 FILE");
		return 0;
	}
	if (o->otp != NULL) {
		for (i = 0; o->otp[i] != '\0'; i++)
			if (o->otp[i] < '0' || o->otp[i] > '9')
				break;
		if (i != 6 || o->otp[i] != '\0') {
			warnx("--otp: expected the 6-digit code");
			return 0;
		}
	}
	return 1;
}

int
main(int argc, char **argv)
{
	struct opts o;
	const char *cmd;
	const char *usage = usage_main;
	int help = 0, rc = EXIT_USAGE;

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		errx(EXIT_FAIL, "libsodium initialisation failed");
	memset(&o, 0, sizeof(o));
	o.server = getenv("MICA_SERVER");
	o.ca = getenv("MICA_CA");
	if (!parse_opts(argc, argv, &o, &help))
		goto usage;
	if (optind >= argc) {
		if (help) {
			printf("%s", usage_main);
			return EXIT_OK;
		}
		goto usage;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "reissue") == 0)
		usage = usage_reissue;
	else if (strcmp(cmd, "fetch") == 0)
		usage = usage_fetch;
	else if (strcmp(cmd, "status") == 0)
		usage = usage_status;
	else if (strcmp(cmd, "list") == 0)
		usage = usage_list;
	else if (strcmp(cmd, "request") == 0)
		usage = usage_request;
	else if (strcmp(cmd, "passwd") == 0)
		usage = usage_passwd;
	else if (strcmp(cmd, "enroll") == 0)
		usage = usage_enroll;
	else if (strcmp(cmd, "renew") == 0)
		usage = usage_renew;
	else {
		warnx("unknown command \"%s\"", cmd);
		goto usage;
	}
	/* the command's options: parse the rest as its own argv */
	argc -= optind;
	argv += optind;
	optind = 0;		/* glibc: start over at argv[1] */
	if (!parse_opts(argc, argv, &o, &help))
		goto usage;
	if (help) {
		printf("%s", usage);
		return EXIT_OK;
	}
	if (optind != argc) {
		warnx("unexpected argument \"%s\"", argv[optind]);
		goto usage;
	}
	if (o.server == NULL || o.ca == NULL) {
		warnx("--server and --ca are needed (or MICA_SERVER, "
		    "MICA_CA)");
		goto usage;
	}
	if (!check_formats(&o))
		goto usage;
	if (usage == usage_reissue)
		rc = cmd_reissue(&o);
	else if (usage == usage_list)
		rc = cmd_list(&o);
	else if (usage == usage_request)
		rc = cmd_request(&o);
	else if (usage == usage_passwd)
		rc = cmd_passwd(&o);
	else if (usage == usage_enroll)
		rc = cmd_enroll(&o);
	else if (usage == usage_renew)
		rc = cmd_renew(&o);
	else
		rc = cmd_lookup(&o, usage == usage_fetch);
	if (rc == EXIT_FAIL && standby_refused) {
		/* ERROR 14: asking again here cannot help */
		fprintf(stderr, "mica: %s is a standby: run the command "
		    "again with --server naming the primary's CA address\n",
		    o.server);
		rc = EXIT_STANDBY;
	}
	return rc;
 usage:
	fprintf(stderr, "%s", usage);
	return rc;
}
