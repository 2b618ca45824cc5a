/*
 * auth.c - the SASL side of SMTP AUTH: PLAIN and LOGIN exchanges with
 * strict base64, and the password check against the directory.
 *
 * SCRAM is not offered: the directory keeps passwords in schemes
 * ({SSHA}, {CRYPT}...) from which no SCRAM verifier can be derived.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>

#include "auth.h"

/* Bounds of what a client may send as a user name and a password. */
#define AUTH_USER_MAX 256
#define AUTH_PASSWORD_MAX 1024

#define AUTH_CHALLENGE_USER "VXNlcm5hbWU6"     /* "Username:" */
#define AUTH_CHALLENGE_PASSWORD "UGFzc3dvcmQ6" /* "Password:" */

struct _SmtpAuth {
	gboolean login;     /* LOGIN; else PLAIN */
	gboolean started;   /* PLAIN: the empty challenge was sent */
	char *user;
	char *password;
};

static void
auth_wipe(char **secret)
{
	if (*secret == NULL)
		return;
	explicit_bzero(*secret, strlen(*secret));
	g_clear_pointer(secret, g_free);
}

gboolean
smtp_auth_mechanism_known(const char *mechanism)
{
	return mechanism != NULL &&
	       (strcmp(mechanism, "PLAIN") == 0 || strcmp(mechanism, "LOGIN") == 0);
}

static void
auth_refuse(SmtpAuthResult *result, guint code, const char *enhanced, const char *text)
{
	result->step = SMTP_AUTH_REFUSE;
	result->code = code;
	result->enhanced = enhanced;
	result->text = text;
	result->challenge = NULL;
}

static void
auth_challenge(SmtpAuthResult *result, const char *challenge)
{
	memset(result, 0, sizeof *result);
	result->step = SMTP_AUTH_CHALLENGE;
	result->challenge = challenge;
}

static gboolean
auth_base64_char(char c)
{
	return g_ascii_isalnum(c) || c == '+' || c == '/';
}

/* RFC 4648 base64 with padding, nothing else: g_base64_decode() skips
 * what it does not understand, which would accept garbage.  "=" alone is
 * the empty response (RFC 4954). */
static gboolean
auth_base64_decode(const char *text, gsize len, GBytes **out_r)
{
	g_autofree char *copy = NULL;
	guchar *data;
	gsize n;

	if (len == 1 && text[0] == '=') {
		*out_r = g_bytes_new(NULL, 0);
		return TRUE;
	}
	if (len == 0 || len % 4 != 0)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		gboolean pad_ok = i >= len - 2 && text[i] == '=' &&
				  (i == len - 1 || text[len - 1] == '=');

		if (!auth_base64_char(text[i]) && !pad_ok)
			return FALSE;
	}
	copy = g_strndup(text, len);
	data = g_base64_decode(copy, &n);
	*out_r = g_bytes_new_take(data, n);
	return TRUE;
}

/* A user name or password from a response: no NUL, bounded. */
static char *
auth_take_text(const char *data, gsize len, gsize max)
{
	if (len == 0 || len > max || memchr(data, '\0', len) != NULL)
		return NULL;
	return g_strndup(data, len);
}

/* authzid NUL authcid NUL passwd (RFC 4616); an authorisation identity
 * other than the user's own is refused: no proxy authorisation. */
static void
auth_plain(SmtpAuth *auth, GBytes *response, SmtpAuthResult *result)
{
	gsize len;
	const char *data = g_bytes_get_data(response, &len);
	const char *nul1 = data != NULL ? memchr(data, '\0', len) : NULL;
	const char *nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', len - (gsize)(nul1 + 1 - data))
					: NULL;
	gsize zid_len, cid_len;

	if (nul2 == NULL || memchr(nul2 + 1, '\0', len - (gsize)(nul2 + 1 - data)) != NULL) {
		auth_refuse(result, 501, "5.5.2", "Invalid PLAIN response");
		return;
	}
	zid_len = (gsize)(nul1 - data);
	cid_len = (gsize)(nul2 - nul1 - 1);
	auth->user = auth_take_text(nul1 + 1, cid_len, AUTH_USER_MAX);
	auth->password = auth_take_text(nul2 + 1, len - (gsize)(nul2 + 1 - data),
					AUTH_PASSWORD_MAX);
	if (auth->user == NULL || auth->password == NULL ||
	    (zid_len > 0 && (zid_len != cid_len || memcmp(data, nul1 + 1, cid_len) != 0))) {
		auth_wipe(&auth->password);
		auth_refuse(result, 535, "5.7.8", "Authentication credentials invalid");
		return;
	}
	memset(result, 0, sizeof *result);
	result->step = SMTP_AUTH_CHECK;
}

static void
auth_login(SmtpAuth *auth, GBytes *response, SmtpAuthResult *result)
{
	gsize len;
	const char *data = g_bytes_get_data(response, &len);

	if (auth->user == NULL) {
		auth->user = auth_take_text(data, len, AUTH_USER_MAX);
		if (auth->user == NULL)
			auth_refuse(result, 535, "5.7.8", "Authentication credentials invalid");
		else
			auth_challenge(result, AUTH_CHALLENGE_PASSWORD);
		return;
	}
	auth->password = auth_take_text(data, len, AUTH_PASSWORD_MAX);
	if (auth->password == NULL) {
		auth_refuse(result, 535, "5.7.8", "Authentication credentials invalid");
		return;
	}
	memset(result, 0, sizeof *result);
	result->step = SMTP_AUTH_CHECK;
}

static void
auth_response(SmtpAuth *auth, const char *line, gsize len, SmtpAuthResult *result)
{
	g_autoptr(GBytes) response = NULL;
	gsize size;

	if (len == 1 && line[0] == '*') {
		auth_refuse(result, 501, "5.7.0", "Authentication cancelled");
		return;
	}
	if (!auth_base64_decode(line, len, &response)) {
		auth_refuse(result, 501, "5.5.2", "Cannot decode response");
		return;
	}
	if (auth->login)
		auth_login(auth, response, result);
	else
		auth_plain(auth, response, result);
	/* The decoded response held the password. */
	size = g_bytes_get_size(response);
	if (size > 0)
		explicit_bzero((void *)g_bytes_get_data(response, NULL), size);
}

SmtpAuth *
smtp_auth_start(const char *mechanism, const char *initial, SmtpAuthResult *result)
{
	SmtpAuth *auth = g_new0(SmtpAuth, 1);

	auth->login = strcmp(mechanism, "LOGIN") == 0;
	if (initial != NULL)
		auth_response(auth, initial, strlen(initial), result);
	else if (auth->login)
		auth_challenge(result, AUTH_CHALLENGE_USER);
	else
		auth_challenge(result, "");
	return auth;
}

void
smtp_auth_step(SmtpAuth *auth, const char *line, gsize len, SmtpAuthResult *result)
{
	auth_response(auth, line, len, result);
}

const char *
smtp_auth_user(const SmtpAuth *auth)
{
	return auth->user;
}

void
smtp_auth_free(SmtpAuth *auth)
{
	if (auth == NULL)
		return;
	g_free(auth->user);
	auth_wipe(&auth->password);
	g_free(auth);
}

SmtpAuthCheck *
smtp_auth_check_new(ImtaDirectory *directory, SmtpAuth *auth)
{
	SmtpAuthCheck *check = g_new0(SmtpAuthCheck, 1);

	check->directory = directory;
	check->user = g_steal_pointer(&auth->user);
	check->password = g_steal_pointer(&auth->password);
	smtp_auth_free(auth);
	return check;
}

void
smtp_auth_check_work(gpointer data)
{
	SmtpAuthCheck *check = data;
	g_autoptr(GError) error = NULL;

	if (check->directory == NULL) {
		check->status = IMTA_DIR_TEMPFAIL;
		check->error = g_strdup("the directory is not open");
	} else {
		check->status = imta_directory_authenticate(check->directory, check->user,
							   check->password, &error);
		if (error != NULL)
			check->error = g_strdup(error->message);
	}
	auth_wipe(&check->password);
}

void
smtp_auth_check_free(SmtpAuthCheck *check)
{
	if (check == NULL)
		return;
	g_free(check->user);
	auth_wipe(&check->password);
	g_free(check->error);
	g_free(check);
}
