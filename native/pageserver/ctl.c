/*
 * The control protocol (see main.c's header for the requests and replies), and
 * what happens after READY: the process ending (GONE), errors (server_fail).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: "
#include "log.h"
#include "io.h"
#include "page.h"
#include "server.h"
#include "stub.h"

#define KILL_REAP_MS 5000	/* the process killed; its tracer reaps it first */
#define GONE_WAIT_MS 5000	/* the process ended under an operation; its wait status */

void ctl_printf(struct server *s, const char *fmt, ...)
{
	char *line = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n > 0)
		write_all(s->ctl_fd, line, n);
	free(line);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double percentile_us(const uint32_t *sorted, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)(q * (n - 1) + 0.5);
	return sorted[i] / 1000.0;
}

/* The fault latencies: p50, p99, max, mean (us). */
static void latency_stats(const struct fault_stats *st, FILE *f)
{
	uint32_t *sorted = malloc((st->nr_lat + 1) * sizeof(*sorted));
	double sum = 0;
	size_t n = sorted ? st->nr_lat : 0;

	if (sorted)
		memcpy(sorted, st->lat_ns, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u32);
	for (size_t i = 0; i < n; i++)
		sum += sorted[i];
	fprintf(f, ", \"serve_us_p50\": %.2f, \"serve_us_p99\": %.2f, \"serve_us_max\": %.2f"
		", \"serve_us_mean\": %.2f", percentile_us(sorted, n, 0.5),
		percentile_us(sorted, n, 0.99), n ? sorted[n - 1] / 1000.0 : 0.0,
		n ? sum / n / 1000.0 : 0.0);
	free(sorted);
}

/* The statistics as one JSON object (malloc'd), or NULL when out of memory. */
static char *format_stats(struct server *s)
{
	static const char *const modes[] = {
#define MODE_WORD(name, value, word) [value] = #word,
		SPEC_MODES(MODE_WORD)
#undef MODE_WORD
	};
	const struct fault_stats *st = &s->pager.stats;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	fprintf(f, "{\"faults\": %" PRIu64 ", \"pages_served\": %" PRIu64 ", \"zero_pages\": %"
		PRIu64 ", \"bytes\": %" PRIu64, st->faults, st->pages_served, st->zero_pages,
		st->bytes);
	latency_stats(st, f);
	fprintf(f, ", \"mode\": \"%s\", \"fault_around_pages\": %u, \"xstate_restored\": %s"
		", \"same_tid\": %s, \"pages_verified_by_helper\": %" PRIu64
		", \"tracker\": \"%s\", \"sandbox\": %s", modes[s->spec.head.mode],
		s->spec.head.fault_around_pages, s->target.xstate_restored ? "true" : "false",
		s->target.same_tid ? "true" : "false", verifier_helper_pages(s->pager.verifier),
		s->tracker->ops->name, s->sandbox.listener >= 0 ? "true" : "false");
	if (sandbox_sees_brk(&s->sandbox))	/* else null: brk calls are not seen */
		fprintf(f, ", \"brk_calls\": %" PRIu64, s->sandbox.brk_calls);
	else
		fputs(", \"brk_calls\": null", f);
	s->tracker->ops->stats(s->tracker, f);
	sandbox_format(&s->sandbox, f);
	fputc('}', f);
	fclose(f);
	return out;
}

/* The process was reaped with `status`: its last word, then the server ends. After a
 * failure the caller has its ERROR already: no GONE. */
static __attribute__((noreturn)) void gone(struct server *s, int status)
{
	char *stats;

	s->target.pid = 0;
	stub_end_descendants(0);
	if (s->failure.kind != ERR_NONE)
		exit(2);
	stats = format_stats(s);
	ctl_printf(s, "GONE %d %s\n", status, stats ? stats : "{}");
	exit(0);
}

void server_check_exit(struct server *s)
{
	int status;
	pid_t r = waitpid(s->target.pid, &status, WNOHANG | __WALL);

	if (r == s->target.pid && (WIFEXITED(status) || WIFSIGNALED(status)))
		gone(s, status);
}

void server_check_gone(struct server *s)
{
	struct err e = { 0 };

	server_check_exit(s);
	if ((now_ns() - s->gone_since_ns) / 1000000 < GONE_WAIT_MS)
		return;
	s->gone_since_ns = 0;
	err_set(&e, ERR_INTERNAL, "process %d ended, but its exit status did not come within %d ms",
		s->target.pid, GONE_WAIT_MS);
	server_fail(s, &e);
}

void server_fail(struct server *s, struct err *e)
{
	if (s->failure.kind != ERR_NONE)
		return;	/* the first error was said; the process is being killed */
	if (e->kind == ERR_GONE) {
		/* an operation met the process's end (ESRCH): the serve loop polls for the reap
		 * and answers GONE; faults and the sandbox are served meanwhile */
		if (!s->gone_since_ns)
			s->gone_since_ns = now_ns();
		return;
	}
	s->failure = *e;
	pager_poison_serving(&s->pager);	/* first: whoever waits gets an error now */
	if (s->target.pid > 0)
		kill(s->target.pid, SIGKILL);
	ctl_printf(s, "ERROR %s\n", e->msg);
}

void server_end(struct server *s)
{
	stub_kill(&s->target, KILL_REAP_MS);
	exit(0);
}

static void reply_stats(struct server *s, const char *args)
{
	char *stats = format_stats(s);

	(void)args;
	if (stats)
		ctl_printf(s, "OK %s\n", stats);
	else
		ctl_printf(s, "ERROR out of memory formatting the statistics\n");
	free(stats);
}

/* "OK n" then n lines "start end": the page ranges written. */
static void reply_written(struct server *s, const char *args)
{
	struct range_list list = { 0 };
	struct err e = { 0 };
	char line[64];

	(void)args;
	if (s->tracker->ops->written(s->tracker, &list, &e)) {
		ranges_free(&list);
		server_fail(s, &e);
		return;
	}
	ctl_printf(s, "OK %zu\n", list.n);
	for (size_t i = 0; i < list.n; i++) {
		int k = snprintf(line, sizeof(line), "%" PRIx64 " %" PRIx64 "\n", list.r[i][0],
				 list.r[i][1]);
		write_all(s->ctl_fd, line, k);
	}
	ranges_free(&list);
}

static void reply_clear(struct server *s, const char *args)
{
	struct err e = { 0 };

	(void)args;
	if (s->tracker->ops->clear(s->tracker, &e))
		server_fail(s, &e);
	else
		ctl_printf(s, "OK\n");
}

static void reply_fill(struct server *s, const char *args)
{
	uint64_t lo = 0, hi = 0;
	struct err e = { 0 };

	if (sscanf(args, "%" SCNx64 " %" SCNx64, &lo, &hi) != 2) {
		ctl_printf(s, "ERROR FILL needs two hex addresses\n");
		return;
	}
	if (pager_fill(&s->pager, page_down(lo), page_up(hi), &e))
		server_fail(s, &e);
	else
		ctl_printf(s, "OK\n");
}

/* "OK {"blocked_syscalls": [...], "blocked_syscalls_left_out": {...}}": what the sandbox
 * refused since the last TAKE_BLOCKED (one call's share); the list starts again. */
static void reply_take_blocked(struct server *s, const char *args)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)args;
	if (!f) {
		ctl_printf(s, "ERROR out of memory formatting the blocked system calls\n");
		return;
	}
	fputs("{\"sandbox\": ", f);
	fputs(s->sandbox.listener >= 0 ? "true" : "false", f);
	sandbox_format(&s->sandbox, f);
	fputc('}', f);
	fclose(f);
	ctl_printf(s, "OK %s\n", out);
	free(out);
	sandbox_forget(&s->sandbox);
}

/* "OK tid ..." the id of each thread, in the spec's order (the leader first). */
static void reply_threads(struct server *s, const char *args)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)args;
	if (!f) {
		ctl_printf(s, "ERROR out of memory listing the threads\n");
		return;
	}
	fputs("OK", f);
	for (uint32_t i = 0; i < s->target.nr_threads; i++)
		fprintf(f, " %d", s->target.tids[i]);
	fclose(f);
	ctl_printf(s, "%s\n", out);
	free(out);
}

/* "MOVE <tick> <nr_maps> <brk hex> <ran>" + the maps: "OK <fn hex> <arg hex>" (move.h), or
 * "NO <why>" when the move cannot be made: the process is as it was (no failure). */
static void reply_move(struct server *s, const char *args)
{
	uint64_t tick, brk, fn = 0, arg = 0;
	uint32_t nr_maps;
	int ran, n = -1;
	struct stub_map *maps;
	struct err e = { 0 };

	if (sscanf(args, "%" SCNu64 " %" SCNu32 " %" SCNx64 " %d%n", &tick, &nr_maps, &brk, &ran,
		   &n) != 4 || args[n] || nr_maps > STUB_MAX_MAPS) {
		ctl_printf(s, "ERROR MOVE needs a tick, a count of mappings (at most %d), a break "
			   "and 0 or 1\n", STUB_MAX_MAPS);
		return;
	}
	maps = malloc(nr_maps * sizeof(*maps) + 1);
	if (!maps || ctl_read_payload(s, maps, nr_maps * sizeof(*maps))) {
		free(maps);
		server_end(s);	/* the caller went away in the middle of its request */
	}
	if (move_plan(s, tick, maps, nr_maps, brk, ran, &fn, &arg, &e))
		ctl_printf(s, "NO %s\n", e.msg);
	else
		ctl_printf(s, "OK %" PRIx64 " %" PRIx64 "\n", fn, arg);
}

/* "OK {json}" once the process is at the tick MOVE planned; an error there leaves it
 * not as any tick had it: the process is killed (server_fail). */
static void reply_moved(struct server *s, const char *args)
{
	char *json = NULL;
	struct err e = { 0 };

	(void)args;
	if (!s->move.pending) {
		ctl_printf(s, "ERROR MOVED without MOVE\n");
		return;
	}
	if (move_finish(s, &json, &e)) {
		server_fail(s, &e);
		return;
	}
	ctl_printf(s, "OK %s\n", json ? json : "{}");
	free(json);
}

static void reply_kill(struct server *s, const char *args)
{
	(void)args;
	stub_kill(&s->target, KILL_REAP_MS);
	ctl_printf(s, "OK\n");
	exit(0);
}

/* X(name, takes arguments: "NAME args" rather than "NAME", handler) */
#define CTL_REQUESTS(X) \
	X(STATS, 0, reply_stats) \
	X(WRITTEN, 0, reply_written) \
	X(CLEAR, 0, reply_clear) \
	X(FILL, 1, reply_fill) \
	X(TAKE_BLOCKED, 0, reply_take_blocked) \
	X(THREADS, 0, reply_threads) \
	X(MOVE, 1, reply_move) \
	X(MOVED, 0, reply_moved) \
	X(KILL, 0, reply_kill)

static const struct request {
	const char *name;
	int has_args;
	void (*reply)(struct server *s, const char *args);
} requests[] = {
#define REQUEST_ENTRY(name, has_args, reply) { #name, has_args, reply },
	CTL_REQUESTS(REQUEST_ENTRY)
#undef REQUEST_ENTRY
};

const char *const ctl_request_names[] = {
#define REQUEST_NAME(name, has_args, reply) #name,
	CTL_REQUESTS(REQUEST_NAME)
#undef REQUEST_NAME
	NULL
};

/* A MOVE not answered (the server failed, the process is gone): its maps are read
 * and dropped, so that they are not taken for requests. */
static void skip_move_payload(struct server *s, const char *line)
{
	uint32_t nr_maps = 0;
	char buf[sizeof(struct stub_map)];

	if (strncmp(line, "MOVE ", 5) != 0 || sscanf(line + 5, "%*u %" SCNu32, &nr_maps) != 1 ||
	    nr_maps > STUB_MAX_MAPS)
		return;
	for (uint32_t i = 0; i < nr_maps; i++)
		if (ctl_read_payload(s, buf, sizeof(buf)))
			server_end(s);
}

static void dispatch(struct server *s, const char *line)
{
	if (s->failure.kind != ERR_NONE || s->gone_since_ns)
		skip_move_payload(s, line);
	if (s->failure.kind != ERR_NONE && strcmp(line, "KILL") != 0) {
		ctl_printf(s, "ERROR %s\n", s->failure.msg);
		return;
	}
	if (s->gone_since_ns && strcmp(line, "KILL") != 0)
		return;	/* GONE answers it, once the process is reaped */
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		const struct request *r = &requests[i];
		size_t n = strlen(r->name);
		if (strncmp(line, r->name, n) != 0)
			continue;
		if (!r->has_args && line[n] == 0) {
			r->reply(s, "");
			return;
		}
		if (r->has_args && line[n] == ' ') {
			r->reply(s, line + n + 1);
			return;
		}
	}
	ctl_printf(s, "ERROR unknown request '%.64s'\n", line);
}

int ctl_read_payload(struct server *s, void *buf, size_t len)
{
	size_t take = len < s->used ? len : s->used;

	memcpy(buf, s->line, take);
	s->used -= take;
	memmove(s->line, s->line + take, s->used);
	return take == len ? 0 : read_all(s->ctl_fd, (char *)buf + take, len - take);
}

int ctl_handle(struct server *s)
{
	ssize_t n = read(s->ctl_fd, s->line + s->used, sizeof(s->line) - 1 - s->used);
	char line[sizeof(s->line)], *nl;

	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	s->used += n;
	while ((nl = memchr(s->line, '\n', s->used))) {
		/* the line out first: its request may read a binary part after it */
		size_t len = nl - s->line;
		memcpy(line, s->line, len);
		line[len] = 0;
		s->used -= len + 1;
		memmove(s->line, nl + 1, s->used);
		dispatch(s, line);
	}
	if (s->used == sizeof(s->line) - 1)
		s->used = 0;	/* an overlong line: drop it */
	return 0;
}
