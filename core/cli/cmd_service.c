/*
 * cmd_service.c - imsimta start|stop|restart dispatcher|job_controller.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include "commands.h"

static const char *const components[] = { "dispatcher", "job_controller", NULL };

int
cli_service(const CliGlobal *global, int argc, char **argv)
{
	const char *verb = argv[0];
	g_autofree char *summary = g_strdup_printf(
		"%s the MTA's long-running processes: the dispatcher (SMTP and LMTP "
		"services) and the job controller (channel queues and master jobs). "
		"Without COMPONENT, both.", verb);
	int status = 0;

	if (!cli_parse_options(&argc, &argv, verb, "[dispatcher|job_controller]", summary, NULL,
			       &status))
		return status;
	if (argc > 2 || (argc == 2 && !g_strv_contains(components, argv[1]))) {
		fprintf(stderr, "imsimta %s: expected dispatcher or job_controller\n", verb);
		return EXIT_USAGE;
	}
	fprintf(stderr, "imsimta %s: %s not part of this release yet\n", verb,
		argc == 2 ? (strcmp(argv[1], "dispatcher") == 0 ? "the dispatcher is" :
			     "the job controller is")
			  : "the dispatcher and the job controller are");
	return EXIT_UNAVAILABLE;
}
