/* err.h: recording an error with the object named, and logging it. */
#include <stdarg.h>

#define LOG_PREFIX "ttd-pageserver: "
#include "log.h"
#include "err.h"

int err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
{
	char msg[sizeof(e->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kind == ERR_GONE)
		pr_debug("%s", msg);
	else
		pr_err("%s", msg);
	if (e->kind == ERR_NONE) {
		e->kind = kind;
		memcpy(e->msg, msg, sizeof(msg));
	}
	return -1;
}
