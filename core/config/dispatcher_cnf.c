/*
 * dispatcher_cnf.c - dispatcher.cnf: services, their ports and the worker
 * process limits, read through the option-table engine.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <glib.h>

#include <imta/cfgfile.h>
#include <imta/options.h>
#include <imta/dispatcher_cnf.h>

#define DISP_COMMENTS "!#"
#define DISP_NAME_MAX 64
#define DISP_CHANNEL_MAX 64

#define SVC(field) G_STRUCT_OFFSET(ImtaDispatcherService, field)
#define ANY_SCOPE (IMTA_SCOPE_GLOBAL | IMTA_SCOPE_SERVICE)

const ImtaOptionSpec imta_dispatcher_options[] = {
	{ .name = "PORT", .kind = IMTA_OPT_PORTS, .offset = SVC(ports), .scopes = ANY_SCOPE,
	  .doc = "TCP port(s) of the service, separated by commas or blanks; 0 disables it" },
	{ .name = "INTERFACE_ADDRESS", .kind = IMTA_OPT_STRING, .offset = SVC(interface_address),
	  .scopes = ANY_SCOPE, .check = imta_option_check_ip,
	  .doc = "listen only on this IP address (default: every address)" },
	{ .name = "IMAGE", .kind = IMTA_OPT_STRING, .offset = SVC(image), .scopes = ANY_SCOPE,
	  .doc = "worker program of the service (default: the built-in SMTP server)" },
	{ .name = "LOGFILE", .kind = IMTA_OPT_STRING, .offset = SVC(logfile),
	  .scopes = ANY_SCOPE,
	  .doc = "file for the workers' output; %s stands for the host name" },
	{ .name = "PARAMETER", .kind = IMTA_OPT_STRING, .offset = SVC(parameter),
	  .scopes = ANY_SCOPE,
	  .doc = "service-specific; CHANNEL=name sets the source channel of SMTP/LMTP" },
	{ .name = "STACKSIZE", .kind = IMTA_OPT_INT, .default_value = "2097152",
	  .min = 65536, .max = 1073741824, .offset = SVC(stacksize), .scopes = ANY_SCOPE,
	  .doc = "thread stack size of the workers, in bytes" },
	{ .name = "MIN_PROCS", .kind = IMTA_OPT_INT, .default_value = "0",
	  .min = 0, .max = IMTA_DISPATCHER_MAX_PROCS_LIMIT, .offset = SVC(min_procs),
	  .scopes = ANY_SCOPE, .doc = "workers kept running even when idle" },
	{ .name = "MAX_PROCS", .kind = IMTA_OPT_INT, .default_value = "5",
	  .min = 1, .max = IMTA_DISPATCHER_MAX_PROCS_LIMIT, .offset = SVC(max_procs),
	  .scopes = ANY_SCOPE, .doc = "most workers of the service at once" },
	{ .name = "MIN_CONNS", .kind = IMTA_OPT_INT, .default_value = "5",
	  .min = 1, .max = IMTA_DISPATCHER_MAX_CONNS_LIMIT, .offset = SVC(min_conns),
	  .scopes = ANY_SCOPE,
	  .doc = "connections per worker before another worker is started" },
	{ .name = "MAX_CONNS", .kind = IMTA_OPT_INT, .default_value = "10",
	  .min = 1, .max = IMTA_DISPATCHER_MAX_CONNS_LIMIT, .offset = SVC(max_conns),
	  .scopes = ANY_SCOPE, .doc = "most connections one worker serves at once" },
	{ .name = "MAX_LIFE_TIME", .kind = IMTA_OPT_DURATION, .default_value = "86400",
	  .min = 1, .max = 31536000, .offset = SVC(max_life_time), .scopes = ANY_SCOPE,
	  .doc = "seconds after which a worker is retired" },
	{ .name = "MAX_LIFE_CONNS", .kind = IMTA_OPT_INT, .default_value = "100",
	  .min = 1, .max = G_MAXINT32, .offset = SVC(max_life_conns), .scopes = ANY_SCOPE,
	  .doc = "connections a worker serves before it is retired" },
	{ .name = "MAX_IDLE_TIME", .kind = IMTA_OPT_DURATION, .default_value = "300",
	  .min = 0, .max = 31536000, .offset = SVC(max_idle_time), .scopes = ANY_SCOPE,
	  .doc = "idle seconds after which a worker above MIN_PROCS exits (0 = never)" },
	{ .name = "MAX_SHUTDOWN", .kind = IMTA_OPT_INT, .default_value = "2",
	  .min = 1, .max = IMTA_DISPATCHER_MAX_PROCS_LIMIT, .offset = SVC(max_shutdown),
	  .scopes = ANY_SCOPE, .doc = "most workers shutting down at once" },
	{ .name = "MAX_HANDOFFS", .kind = IMTA_OPT_INT, .default_value = "5",
	  .min = 1, .max = 1000, .offset = SVC(max_handoffs), .scopes = ANY_SCOPE,
	  .doc = "most connection hand-offs to workers in progress at once" },
	{ .name = "BACKLOG", .kind = IMTA_OPT_INT, .min = IMTA_DISPATCHER_MIN_BACKLOG,
	  .max = 65535, .offset = SVC(backlog), .scopes = ANY_SCOPE,
	  .doc = "listen queue length (default MAX_CONNS*MAX_PROCS, at least 5)" },
	{ .name = "IDENT", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = SVC(ident), .scopes = ANY_SCOPE,
	  .doc = "1 = ask the client's IDENT server for the remote user name" },
	{ .name = "DNS_VERIFY_DOMAIN", .kind = IMTA_OPT_STRINGS,
	  .offset = SVC(dns_verify_domains), .scopes = ANY_SCOPE,
	  .max_count = IMTA_DISPATCHER_MAX_DNS_VERIFY, .check = imta_option_check_hostname,
	  .doc = "DNS block list zone checked for each client (repeatable, at most 5)" },
	{ .name = "ENABLE_RBL", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = SVC(enable_rbl), .scopes = ANY_SCOPE,
	  .doc = "deprecated; use DNS_VERIFY_DOMAIN or PORT_ACCESS" },
	{ .name = "HISTORICAL_TIME", .kind = IMTA_OPT_DURATION, .default_value = "120",
	  .min = 0, .max = 604800, .offset = SVC(historical_time), .scopes = ANY_SCOPE,
	  .doc = "seconds closed connections and exited workers stay in the statistics" },
	{ .name = "DEBUG", .kind = IMTA_OPT_MASK, .default_value = "0",
	  .offset = SVC(debug), .scopes = ANY_SCOPE,
	  .doc = "debug bit mask, -1 = everything (16%1000000 logs PORT_ACCESS denials)" },
};
const gsize imta_dispatcher_n_options = G_N_ELEMENTS(imta_dispatcher_options);

const ImtaOptionSpec imta_dispatcher_global_options[] = {
	{ .name = "USER", .kind = IMTA_OPT_STRING,
	  .offset = G_STRUCT_OFFSET(ImtaDispatcherCnf, user), .scopes = IMTA_SCOPE_GLOBAL,
	  .check = imta_option_check_user,
	  .doc = "unprivileged account the workers run as (default: IMTA_USER of imta_tailor)" },
};
const gsize imta_dispatcher_n_global_options = G_N_ELEMENTS(imta_dispatcher_global_options);

static const char disp_builtin_text[] =
	"[SERVICE=SMTP]\n"
	"PORT=25\n"
	"PARAMETER=CHANNEL=tcp_local\n";

/* A global assignment, replayed into every service. */
typedef struct {
	const ImtaOptionSpec *row;
	char *value;
	ImtaSourcePos value_pos;
} DispGlobal;

typedef struct {
	ImtaDispatcherCnf *cnf;
	GArray *globals;                 /* DispGlobal */
	ImtaDispatcherService *current;  /* &cnf->defaults before the first section */
	guint64 seen;                    /* rows assigned in the current section */
	guint64 seen_global_only;
	GHashTable *by_name;             /* folded name -> ImtaDispatcherService * */
} DispParse;

static void
disp_global_clear(gpointer p)
{
	DispGlobal *g = p;

	g_free(g->value);
}

static void
disp_service_free(ImtaDispatcherService *svc)
{
	if (svc == NULL)
		return;
	imta_option_table_clear(imta_dispatcher_options, imta_dispatcher_n_options, svc);
	g_free(svc->name);
	g_free(svc->channel);
	g_free(svc);
}

void
imta_dispatcher_cnf_free(ImtaDispatcherCnf *cnf)
{
	if (cnf == NULL)
		return;
	g_ptr_array_unref(cnf->services);
	g_ptr_array_unref(cnf->warnings);
	imta_option_table_clear(imta_dispatcher_options, imta_dispatcher_n_options,
				&cnf->defaults);
	g_free(cnf->defaults.channel);
	imta_option_table_clear(imta_dispatcher_global_options, imta_dispatcher_n_global_options,
				cnf);
	g_free(cnf->path);
	if (cnf->own_names != NULL)
		g_string_chunk_free(cnf->own_names);
	g_free(cnf);
}

static ImtaDispatcherCnf *
disp_cnf_new(const char *path)
{
	ImtaDispatcherCnf *cnf = g_new0(ImtaDispatcherCnf, 1);

	cnf->path = g_strdup(path);
	cnf->services = g_ptr_array_new_with_free_func((GDestroyNotify)disp_service_free);
	cnf->warnings = g_ptr_array_new_with_free_func(g_free);
	imta_option_table_defaults(imta_dispatcher_options, imta_dispatcher_n_options,
				   &cnf->defaults, IMTA_SCOPE_GLOBAL);
	imta_option_table_defaults(imta_dispatcher_global_options,
				   imta_dispatcher_n_global_options, cnf, IMTA_SCOPE_GLOBAL);
	return cnf;
}

static void
disp_warn(DispParse *p, const ImtaSourcePos *pos, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
disp_warn(DispParse *p, const ImtaSourcePos *pos, const char *fmt, ...)
{
	g_autofree char *where = imta_source_pos_format(pos);
	g_autofree char *what = NULL;
	va_list args;

	va_start(args, fmt);
	what = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_ptr_array_add(p->cnf->warnings, g_strdup_printf("%s: %s", where, what));
}

static guint64
disp_row_bit(const ImtaOptionSpec *table, const ImtaOptionSpec *row)
{
	G_STATIC_ASSERT(G_N_ELEMENTS(imta_dispatcher_options) <= 64);
	return G_GUINT64_CONSTANT(1) << (row - table);
}

static gboolean
disp_name_ok(const char *name, gsize max)
{
	gsize len = strlen(name);

	if (len == 0 || len > max)
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isalnum(name[i]) && strchr("_-.", name[i]) == NULL)
			return FALSE;
	return TRUE;
}

/* The channel a PARAMETER value names, or NULL when it is not of the form
 * CHANNEL=name. */
static char *
disp_parameter_channel(const char *parameter)
{
	if (parameter == NULL || g_ascii_strncasecmp(parameter, "CHANNEL=", 8) != 0)
		return NULL;
	return g_strstrip(g_strdup(parameter + 8));
}

static gboolean
disp_check_parameter(const char *value, const ImtaSourcePos *pos, GError **error)
{
	g_autofree char *channel = disp_parameter_channel(value);

	if (value == NULL || g_ascii_strncasecmp(value, "CHANNEL=", 8) != 0)
		return TRUE;
	if (!disp_name_ok(channel, DISP_CHANNEL_MAX)) {
		g_autofree char *quoted = imta_option_quote(channel);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, pos,
				  "expected a channel name after CHANNEL= in PARAMETER, got %s",
				  quoted);
		return FALSE;
	}
	return TRUE;
}

static gboolean
disp_unknown(const ImtaOptionLine *line, GError **error)
{
	const char *hint = imta_option_suggest(imta_dispatcher_options,
					       imta_dispatcher_n_options, line->name, NULL);

	if (hint == NULL)
		hint = imta_option_suggest(imta_dispatcher_global_options,
					   imta_dispatcher_n_global_options, line->name, NULL);
	return imta_option_unknown(error, &line->name_pos, "dispatcher.cnf", line->name, hint);
}

static gboolean
disp_set_global_only(DispParse *p, const ImtaOptionSpec *row, const ImtaOptionLine *line,
		     GError **error)
{
	guint64 bit = disp_row_bit(imta_dispatcher_global_options, row);

	if (p->current != &p->cnf->defaults) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->name_pos,
				  "%s is a global option: set it before the first [SERVICE=...]"
				  " section", row->name);
		return FALSE;
	}
	if (p->seen_global_only & bit)
		disp_warn(p, &line->name_pos, "%s is set again; the later value wins", row->name);
	p->seen_global_only |= bit;
	return imta_option_set_row(row, p->cnf, line->value, &line->value_pos, error);
}

static gboolean
disp_set(DispParse *p, const ImtaOptionLine *line, GError **error)
{
	const ImtaOptionSpec *row = imta_option_lookup(imta_dispatcher_options,
						       imta_dispatcher_n_options, line->name);
	guint64 bit;

	if (row == NULL) {
		row = imta_option_lookup(imta_dispatcher_global_options,
					 imta_dispatcher_n_global_options, line->name);
		if (row == NULL)
			return disp_unknown(line, error);
		return disp_set_global_only(p, row, line, error);
	}
	bit = disp_row_bit(imta_dispatcher_options, row);
	if (row->kind == IMTA_OPT_STRINGS && !(p->seen & bit)) {
		/* A service's own list replaces the inherited one. */
		imta_option_reset_row(row, p->current);
	} else if (row->kind != IMTA_OPT_STRINGS && (p->seen & bit)) {
		disp_warn(p, &line->name_pos,
			  "%s is set again in this section; the later value wins", row->name);
	}
	p->seen |= bit;
	if (!imta_option_set_row(row, p->current, line->value, &line->value_pos, error))
		return FALSE;
	if (row->offset == SVC(parameter) &&
	    !disp_check_parameter(p->current->parameter, &line->value_pos, error))
		return FALSE;
	if (row->offset == SVC(enable_rbl))
		disp_warn(p, &line->name_pos, "ENABLE_RBL is deprecated: use DNS_VERIFY_DOMAIN or"
			  " the dns_verify callout of the PORT_ACCESS mapping");
	if (p->current == &p->cnf->defaults) {
		DispGlobal g = { row, g_strdup(line->value), line->value_pos };

		g_array_append_val(p->globals, g);
	}
	return TRUE;
}

static gboolean
disp_section(DispParse *p, const ImtaOptionLine *line, GError **error)
{
	g_autofree char *folded = NULL;
	ImtaDispatcherService *svc, *other;

	if (g_ascii_strcasecmp(line->name, "SERVICE") != 0) {
		g_autofree char *quoted = imta_option_quote(line->name);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_UNKNOWN, &line->name_pos,
				  "unknown section type %s (expected [SERVICE=name])", quoted);
		return FALSE;
	}
	if (!disp_name_ok(line->value, DISP_NAME_MAX)) {
		g_autofree char *quoted = imta_option_quote(line->value);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->value_pos,
				  "expected a service name (letters, digits, '_', '-' and '.',"
				  " at most %d), got %s", DISP_NAME_MAX, quoted);
		return FALSE;
	}
	folded = g_ascii_strup(line->value, -1);
	other = g_hash_table_lookup(p->by_name, folded);
	if (other != NULL) {
		g_autofree char *first = imta_source_pos_format(&other->pos);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &line->pos,
				  "service %s is defined twice (first at %s)", line->value, first);
		return FALSE;
	}
	svc = g_new0(ImtaDispatcherService, 1);
	svc->name = g_strdup(line->value);
	svc->pos = line->pos;
	g_ptr_array_add(p->cnf->services, svc);
	g_hash_table_insert(p->by_name, g_steal_pointer(&folded), svc);
	imta_option_table_defaults(imta_dispatcher_options, imta_dispatcher_n_options, svc,
				   IMTA_SCOPE_SERVICE);
	for (guint i = 0; i < p->globals->len; i++) {
		const DispGlobal *g = &g_array_index(p->globals, DispGlobal, i);

		if (!imta_option_set_row(g->row, svc, g->value, &g->value_pos, error))
			return FALSE;
	}
	p->current = svc;
	p->seen = 0;
	return TRUE;
}

static gboolean
disp_finish_service(ImtaDispatcherService *svc, GError **error)
{
	svc->channel = disp_parameter_channel(svc->parameter);
	if (svc->ports == NULL) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &svc->pos,
				  "service %s has no PORT (set PORT=0 to disable it)", svc->name);
		return FALSE;
	}
	if (svc->min_procs > svc->max_procs) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &svc->pos,
				  "service %s: MIN_PROCS (%" G_GINT64_FORMAT ") is greater than"
				  " MAX_PROCS (%" G_GINT64_FORMAT ")",
				  svc->name, svc->min_procs, svc->max_procs);
		return FALSE;
	}
	if (svc->min_conns > svc->max_conns) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &svc->pos,
				  "service %s: MIN_CONNS (%" G_GINT64_FORMAT ") is greater than"
				  " MAX_CONNS (%" G_GINT64_FORMAT ")",
				  svc->name, svc->min_conns, svc->max_conns);
		return FALSE;
	}
	if (svc->backlog == 0)
		svc->backlog = CLAMP(svc->max_conns * svc->max_procs,
				     IMTA_DISPATCHER_MIN_BACKLOG, 65535);
	return TRUE;
}

/* The address a service binds, as bytes; FALSE for "every address". */
static gboolean
disp_bind_address(const ImtaDispatcherService *svc, int *family_r, guchar *buf)
{
	static const guchar zero[sizeof(struct in6_addr)];

	if (svc->interface_address == NULL)
		return FALSE;
	if (inet_pton(AF_INET, svc->interface_address, buf) == 1) {
		*family_r = AF_INET;
		return memcmp(buf, zero, sizeof(struct in_addr)) != 0;
	}
	if (inet_pton(AF_INET6, svc->interface_address, buf) == 1) {
		*family_r = AF_INET6;
		return memcmp(buf, zero, sizeof(struct in6_addr)) != 0;
	}
	return FALSE;
}

static gboolean
disp_addresses_overlap(const ImtaDispatcherService *a, const ImtaDispatcherService *b)
{
	guchar abuf[sizeof(struct in6_addr)], bbuf[sizeof(struct in6_addr)];
	int afam = 0, bfam = 0;

	if (!disp_bind_address(a, &afam, abuf) || !disp_bind_address(b, &bfam, bbuf))
		return TRUE;
	if (afam != bfam)
		return FALSE;
	return memcmp(abuf, bbuf, afam == AF_INET ? sizeof(struct in_addr)
						 : sizeof(struct in6_addr)) == 0;
}

static gboolean
disp_check_port_clash(const ImtaDispatcherCnf *cnf, guint index, GError **error)
{
	const ImtaDispatcherService *svc = g_ptr_array_index(cnf->services, index);

	for (guint i = 0; i < index; i++) {
		const ImtaDispatcherService *other = g_ptr_array_index(cnf->services, i);

		if (!disp_addresses_overlap(svc, other))
			continue;
		for (guint j = 0; j < svc->ports->len; j++) {
			guint16 port = g_array_index(svc->ports, guint16, j);
			g_autofree char *where = NULL;

			for (guint k = 0; k < other->ports->len; k++) {
				if (g_array_index(other->ports, guint16, k) != port)
					continue;
				where = imta_source_pos_format(&other->pos);
				imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &svc->pos,
						  "service %s: port %u is already used by service"
						  " %s (%s)", svc->name, port, other->name, where);
				return FALSE;
			}
		}
	}
	return TRUE;
}

static gboolean
disp_finish(DispParse *p, GError **error)
{
	ImtaDispatcherCnf *cnf = p->cnf;

	cnf->defaults.channel = disp_parameter_channel(cnf->defaults.parameter);
	for (guint i = 0; i < cnf->services->len; i++)
		if (!disp_finish_service(g_ptr_array_index(cnf->services, i), error))
			return FALSE;
	for (guint i = 1; i < cnf->services->len; i++)
		if (!disp_check_port_clash(cnf, i, error))
			return FALSE;
	return TRUE;
}

static ImtaDispatcherCnf *
disp_parse(ImtaCfgFile *cf, const char *path, GStringChunk *names, GError **error)
{
	g_autoptr(ImtaDispatcherCnf) cnf = disp_cnf_new(path);
	g_autoptr(GError) local = NULL;
	g_autoptr(GArray) globals = g_array_new(FALSE, TRUE, sizeof(DispGlobal));
	g_autoptr(GHashTable) by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							      NULL);
	ImtaOptionLine line = { 0 };
	DispParse p = { cnf, globals, &cnf->defaults, 0, 0, by_name };
	gboolean ok = TRUE;

	g_array_set_clear_func(globals, disp_global_clear);
	while (ok && imta_option_next_line(cf, DISP_COMMENTS, &line, &local)) {
		if (line.kind == IMTA_OPTION_LINE_SECTION)
			ok = disp_section(&p, &line, &local);
		else
			ok = disp_set(&p, &line, &local);
	}
	imta_option_line_clear(&line);
	if (local == NULL)
		disp_finish(&p, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	return g_steal_pointer(&cnf);
}

ImtaDispatcherCnf *
imta_dispatcher_cnf_load(const char *path, GStringChunk *names, GError **error)
{
	g_autoptr(GStringChunk) own = NULL;
	g_autoptr(ImtaCfgFile) cf = NULL;
	ImtaDispatcherCnf *cnf;

	/* The reader interns the file name before the cnf exists; give it a
	 * chunk the cnf then adopts when the caller has none. */
	if (names == NULL)
		own = g_string_chunk_new(256);
	cf = imta_cfg_file_open(path, 0, DISP_COMMENTS, names != NULL ? names : own, error);
	if (cf == NULL)
		return NULL;
	cnf = disp_parse(cf, path, names != NULL ? names : own, error);
	if (cnf != NULL && own != NULL)
		cnf->own_names = g_steal_pointer(&own);
	return cnf;
}

ImtaDispatcherCnf *
imta_dispatcher_cnf_parse_text(const char *name, const char *text, gsize len,
			       GStringChunk *names, GError **error)
{
	g_autoptr(GStringChunk) own = NULL;
	g_autoptr(ImtaCfgFile) cf = NULL;
	ImtaDispatcherCnf *cnf;

	if (names == NULL)
		own = g_string_chunk_new(256);
	cf = imta_cfg_file_open_text(name, text, len, 0, DISP_COMMENTS,
				     names != NULL ? names : own);
	cnf = disp_parse(cf, name, names != NULL ? names : own, error);
	if (cnf != NULL && own != NULL)
		cnf->own_names = g_steal_pointer(&own);
	return cnf;
}

ImtaDispatcherCnf *
imta_dispatcher_cnf_new_default(void)
{
	g_autoptr(GError) error = NULL;
	ImtaDispatcherCnf *cnf;

	cnf = imta_dispatcher_cnf_parse_text("(built-in dispatcher.cnf)", disp_builtin_text,
					     sizeof(disp_builtin_text) - 1, NULL, &error);
	if (cnf == NULL)
		g_error("built-in dispatcher.cnf: %s", error->message);
	g_clear_pointer(&cnf->path, g_free);
	return cnf;
}

const ImtaDispatcherService *
imta_dispatcher_cnf_service(const ImtaDispatcherCnf *cnf, const char *name)
{
	for (guint i = 0; i < cnf->services->len; i++) {
		const ImtaDispatcherService *svc = g_ptr_array_index(cnf->services, i);

		if (g_ascii_strcasecmp(svc->name, name) == 0)
			return svc;
	}
	return NULL;
}

gboolean
imta_dispatcher_service_enabled(const ImtaDispatcherService *service)
{
	return service->ports != NULL && service->ports->len > 0;
}

void
imta_dispatcher_cnf_dump(const ImtaDispatcherCnf *cnf, GString *out)
{
	g_string_append_printf(out, "! dispatcher.cnf: %s\n",
			       cnf->path != NULL ? cnf->path : "(built-in)");
	imta_option_table_dump(imta_dispatcher_global_options, imta_dispatcher_n_global_options,
			       cnf, IMTA_SCOPE_GLOBAL, out);
	for (gsize i = 0; i < imta_dispatcher_n_options; i++) {
		const ImtaOptionSpec *row = &imta_dispatcher_options[i];

		if (row->offset == SVC(backlog) && cnf->defaults.backlog == 0)
			g_string_append(out, "! BACKLOG is computed per service\n");
		else
			imta_option_table_dump(row, 1, &cnf->defaults, IMTA_SCOPE_GLOBAL, out);
	}
	for (guint i = 0; i < cnf->services->len; i++) {
		const ImtaDispatcherService *svc = g_ptr_array_index(cnf->services, i);

		g_string_append_printf(out, "\n[SERVICE=%s]\n", svc->name);
		imta_option_table_dump(imta_dispatcher_options, imta_dispatcher_n_options, svc,
				       IMTA_SCOPE_SERVICE, out);
	}
}
