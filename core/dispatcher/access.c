/*
 * access.c - the dispatcher's checks of a new connection (see access.h):
 * the PORT_ACCESS mapping, the DNS block lists of DNS_VERIFY_DOMAIN, and
 * the IDENT query whose answer the statistics show.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include <imta/fd_watch.h>
#include <imta/dns.h>
#include <imta/log.h>
#include <imta/mappings.h>
#include "access.h"
#include "service.h"

#define ACCESS_REPLY_TEXT_MAX 500
#define ACCESS_TEMPFAIL_LOG_INTERVAL (60 * G_USEC_PER_SEC)
#define ACCESS_IDENT_PORT 113

struct _DispIdent {
	DispConn *conn;
	int fd;
	guint io_source, timeout_source;
	gboolean sent;
	GString *reply;
};

/* ---- PORT_ACCESS ---------------------------------------------------------- */

char *
disp_access_reply(const char *text)
{
	g_autoptr(GString) clean = g_string_new(NULL);

	/* Mapping results hold no line ends, but a reply must be one line. */
	for (const char *p = text != NULL ? text : ""; *p != '\0'; p++) {
		if (clean->len >= ACCESS_REPLY_TEXT_MAX)
			break;
		g_string_append_c(clean, (guchar)*p < 0x20 || *p == 0x7f ? ' ' : *p);
	}
	g_strstrip(clean->str);
	g_string_set_size(clean, strlen(clean->str));
	if (clean->len == 0)
		return g_strdup("554 5.7.1 Connection refused\r\n");
	if (clean->len >= 3 && g_ascii_isdigit(clean->str[0]) && g_ascii_isdigit(clean->str[1]) &&
	    g_ascii_isdigit(clean->str[2]) && (clean->str[3] == '\0' || clean->str[3] == ' '))
		return g_strdup_printf("%s\r\n", clean->str);
	return g_strdup_printf("554 5.7.1 %s\r\n", clean->str);
}

char *
disp_access_port(const DispConn *conn)
{
	const DispService *svc = conn->service;
	const ImtaMappings *mappings = svc->disp->config->mappings;
	g_autofree char *probe = NULL;
	ImtaMappingResult result = { 0 };
	char *reply = NULL;

	if (mappings == NULL || imta_mappings_table(mappings, "PORT_ACCESS") == NULL)
		return NULL;
	probe = g_strdup_printf("TCP|%s|%u|%s|%u", conn->local_ip, conn->local_port,
				conn->remote_ip, conn->remote_port);
	if (!imta_mappings_apply_named(mappings, "PORT_ACCESS", probe, &result)) {
		disp_debug(svc->debug, DISP_DEBUG_SERVICE_EXTRA, "PORT_ACCESS: %s: no match",
			   probe);
		imta_mapping_result_clear(&result);
		return NULL;
	}
	disp_debug(svc->debug, DISP_DEBUG_SERVICE_EXTRA, "PORT_ACCESS: %s -> \"%s\"%s%s", probe,
		   result.result != NULL ? result.result : "",
		   (result.flags & IMTA_MAP_FLAG_Y) ? " $Y" : "",
		   (result.flags & IMTA_MAP_FLAG_N) ? " $N" : "");
	if ((result.flags & IMTA_MAP_FLAG_LOG_MATCH) && result.log_text != NULL)
		imta_log(IMTA_LOG_NOTICE, "PORT_ACCESS %s: %s", probe, result.log_text);
	if (result.flags & IMTA_MAP_FLAG_N) {
		const char *deny = result.log_deny_text;

		/* With $> alone, its text is the only one. */
		if (deny == NULL && !(result.flags & IMTA_MAP_FLAG_LOG_MATCH))
			deny = result.log_text;

		reply = disp_access_reply(result.result);
		if ((result.flags & IMTA_MAP_FLAG_LOG_DENY) && deny != NULL)
			imta_log(IMTA_LOG_NOTICE, "PORT_ACCESS %s: %s", probe, deny);
		if (svc->debug & DISP_DEBUG_ACCESS)
			imta_log(IMTA_LOG_NOTICE, "access_control: PORT_ACCESS denied %s: %.*s",
				 probe, (int)strlen(reply) - 2, reply);
	}
	imta_mapping_result_clear(&result);
	return reply;
}

/* ---- DNS_VERIFY_DOMAIN ---------------------------------------------------- */

static void
access_log_tempfail(DispConn *conn)
{
	DispService *svc = conn->service;
	gint64 now = g_get_monotonic_time();

	/* During a DNS outage every client fails the same way: one line a
	 * minute says so. */
	if (svc->tempfail_logged != 0 &&
	    now - svc->tempfail_logged < ACCESS_TEMPFAIL_LOG_INTERVAL) {
		svc->tempfail_quiet++;
		return;
	}
	if (svc->tempfail_quiet > 0)
		imta_log(IMTA_LOG_WARNING, "service %s: DNS_VERIFY_DOMAIN: temporary DNS failure "
			 "checking %s; accepted it (and %u other clients since the last such "
			 "message)", svc->name, conn->remote_ip, svc->tempfail_quiet);
	else
		imta_log(IMTA_LOG_WARNING, "service %s: DNS_VERIFY_DOMAIN: temporary DNS failure "
			 "checking %s; accepted it", svc->name, conn->remote_ip);
	svc->tempfail_logged = now;
	svc->tempfail_quiet = 0;
}

static void
access_dnsbl_done(ImtaDnsStatus status, const char *zone, gpointer user_data)
{
	DispConn *conn = user_data;
	DispService *svc = conn->service;

	g_clear_object(&conn->cancellable);
	if (conn->state != DISP_CONN_CHECKING)
		return;
	switch (status) {
	case IMTA_DNS_OK:
		if (svc->debug & DISP_DEBUG_ACCESS)
			imta_log(IMTA_LOG_NOTICE, "access_control: host %s found on DNS list and "
				 "rejected", conn->remote_ip);
		disp_debug(svc->debug, DISP_DEBUG_SERVICE, "service %s: %s is listed in %s",
			   svc->name, conn->remote_ip, zone != NULL ? zone : "a DNS list");
		disp_service_conn_reject(conn, DISP_DNSBL_REPLY,
					 "listed on a DNS_VERIFY_DOMAIN list", TRUE);
		return;
	case IMTA_DNS_TEMPFAIL:
		access_log_tempfail(conn);
		break;
	case IMTA_DNS_NOT_FOUND:
		disp_debug(svc->debug, DISP_DEBUG_SERVICE_EXTRA, "service %s: %s is not listed",
			   svc->name, conn->remote_ip);
		break;
	}
	disp_service_conn_admit(conn);
}

void
disp_access_dnsbl_start(DispConn *conn)
{
	DispService *svc = conn->service;

	conn->state = DISP_CONN_CHECKING;
	conn->cancellable = g_cancellable_new();
	imta_dnsbl_check_async(svc->disp->resolver, conn->remote_ip,
			       (const char *const *)svc->zones, conn->cancellable,
			       access_dnsbl_done, conn);
}

/* ---- IDENT ------------------------------------------------------------------ */

char *
disp_ident_parse(const char *reply)
{
	g_auto(GStrv) fields = NULL;
	g_autoptr(GString) user = g_string_new(NULL);
	const char *p;

	if (reply == NULL)
		return NULL;
	/* "<ports> : USERID : <opsys>[,<charset>] : <user>"; the user id is
	 * the rest of the line and may itself hold colons. */
	fields = g_strsplit(reply, ":", 4);
	if (g_strv_length(fields) < 4 || strchr(fields[0], ',') == NULL)
		return NULL;
	if (g_ascii_strcasecmp(g_strstrip(fields[1]), "USERID") != 0)
		return NULL;
	fields[3][strcspn(fields[3], "\r\n")] = '\0';
	for (p = g_strstrip(fields[3]); *p != '\0' && user->len < DISP_IDENT_USER_MAX; p++)
		g_string_append_c(user, (guchar)*p > 0x20 && (guchar)*p < 0x7f ? *p : '?');
	if (user->len == 0)
		return NULL;
	return g_string_free(g_steal_pointer(&user), FALSE);
}

static void
access_ident_end(DispIdent *ident, char *user)
{
	DispConn *conn = ident->conn;

	if (user != NULL) {
		g_free(conn->ident_user);
		conn->ident_user = user;
		disp_debug(conn->service->debug, DISP_DEBUG_SERVICE,
			   "connection %" G_GUINT64_FORMAT ": IDENT user %s", conn->id, user);
	}
	conn->ident = NULL;
	if (ident->io_source != 0)
		g_source_remove(ident->io_source);
	if (ident->timeout_source != 0)
		g_source_remove(ident->timeout_source);
	close(ident->fd);
	if (ident->reply != NULL)
		g_string_free(ident->reply, TRUE);
	g_free(ident);
}

static gboolean access_ident_on_io(gint fd, GIOCondition condition, gpointer user_data);

/* Connected: send "<client port> , <our port>". */
static gboolean
access_ident_send(DispIdent *ident)
{
	DispConn *conn = ident->conn;
	g_autofree char *query = g_strdup_printf("%u , %u\r\n", conn->remote_port,
						 conn->local_port);
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(ident->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		disp_debug(conn->service->debug, DISP_DEBUG_SERVICE_EXTRA,
			   "connection %" G_GUINT64_FORMAT ": IDENT connect: %s", conn->id,
			   g_strerror(err != 0 ? err : errno));
		return FALSE;
	}
	if (send(ident->fd, query, strlen(query), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)strlen(query))
		return FALSE;
	ident->sent = TRUE;
	ident->reply = g_string_new(NULL);
	ident->io_source = imta_fd_watch_add(ident->fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
					 access_ident_on_io, ident);
	return TRUE;
}

/* Read the reply; TRUE while more is expected. */
static gboolean
access_ident_read(DispIdent *ident, char **user_r)
{
	char buf[256];

	*user_r = NULL;
	for (;;) {
		ssize_t n = recv(ident->fd, buf, sizeof(buf), 0);
		const char *end;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n <= 0)
			break;
		g_string_append_len(ident->reply, buf, MIN((gsize)n, DISP_IDENT_REPLY_MAX));
		end = memchr(ident->reply->str, '\n', ident->reply->len);
		if (end != NULL || ident->reply->len >= DISP_IDENT_REPLY_MAX) {
			if (end != NULL)
				g_string_truncate(ident->reply, end - ident->reply->str);
			break;
		}
	}
	if (memchr(ident->reply->str, '\0', ident->reply->len) == NULL)
		*user_r = disp_ident_parse(ident->reply->str);
	return FALSE;
}

static gboolean
access_ident_on_io(gint fd, GIOCondition condition, gpointer user_data)
{
	DispIdent *ident = user_data;
	char *user = NULL;

	/* Whatever happens, this source ends here. */
	ident->io_source = 0;
	if (!ident->sent) {
		if (!access_ident_send(ident))
			access_ident_end(ident, NULL);
		return G_SOURCE_REMOVE;
	}
	if (access_ident_read(ident, &user)) {
		ident->io_source = imta_fd_watch_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
						 access_ident_on_io, ident);
		return G_SOURCE_REMOVE;
	}
	access_ident_end(ident, user);
	return G_SOURCE_REMOVE;
}

static gboolean
access_ident_on_timeout(gpointer user_data)
{
	DispIdent *ident = user_data;

	ident->timeout_source = 0;
	disp_debug(ident->conn->service->debug, DISP_DEBUG_SERVICE_EXTRA,
		   "connection %" G_GUINT64_FORMAT ": no IDENT answer within %d ms",
		   ident->conn->id, DISP_IDENT_TIMEOUT_MS);
	access_ident_end(ident, NULL);
	return G_SOURCE_REMOVE;
}

static gboolean
access_sockaddr(const char *ip, guint16 port, struct sockaddr_storage *ss, socklen_t *len_r)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len_r = sizeof(*sin);
		return TRUE;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len_r = sizeof(*sin6);
		return TRUE;
	}
	return FALSE;
}

void
disp_ident_start(DispConn *conn)
{
	struct sockaddr_storage remote, local;
	socklen_t remote_len, local_len;
	DispIdent *ident;
	int fd;

	if (!access_sockaddr(conn->remote_ip, ACCESS_IDENT_PORT, &remote, &remote_len) ||
	    !access_sockaddr(conn->local_ip, 0, &local, &local_len) ||
	    remote.ss_family != local.ss_family)
		return;
	fd = socket(remote.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		disp_debug(conn->service->debug, DISP_DEBUG_SERVICE, "IDENT socket: %s",
			   g_strerror(errno));
		return;
	}
	/* From the address the client connected to, so its IDENT server
	 * matches the connection; failing that, any address will do. */
	(void)bind(fd, (struct sockaddr *)&local, local_len);
	if (connect(fd, (struct sockaddr *)&remote, remote_len) < 0 && errno != EINPROGRESS) {
		disp_debug(conn->service->debug, DISP_DEBUG_SERVICE_EXTRA,
			   "connection %" G_GUINT64_FORMAT ": IDENT connect: %s", conn->id,
			   g_strerror(errno));
		close(fd);
		return;
	}
	ident = g_new0(DispIdent, 1);
	ident->conn = conn;
	ident->fd = fd;
	ident->io_source = imta_fd_watch_add(fd, G_IO_OUT | G_IO_ERR | G_IO_HUP, access_ident_on_io,
					 ident);
	ident->timeout_source = g_timeout_add(DISP_IDENT_TIMEOUT_MS, access_ident_on_timeout,
					      ident);
	conn->ident = ident;
}

void
disp_ident_cancel(DispConn *conn)
{
	if (conn->ident != NULL)
		access_ident_end(conn->ident, NULL);
}
