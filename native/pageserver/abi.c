/*
 * `ttd-pageserver --abi`: the contract with gdb_plugin/remat/spec.py as one JSON
 * object, from the same definitions the server is built from (spec.h,
 * layout.h, ctl.c), so a test can compare the two sides:
 *
 *   {"spec_magic": "TTDSPEC3",
 *    "spec_head": {"size": N, "fields": [{"name": "magic", "offset": 0, "size": 8}, ...]},
 *    "spec_thread": {...}, "stub_map": {...}, "flags": {"SPEC_SANDBOX": 1, ...},
 *    "modes": {"lazy": 0, ...}, "mm_fields": ["start_code", ...], "requests": ["STATS", ...],
 *    "limits": {"max_maps": 8192, "max_auxv": 1024, "max_threads": 1024}}
 */
#include <stddef.h>
#include <stdio.h>

#include "abi.h"
#include "server.h"
#include "spec.h"

struct field {
	const char *name;
	size_t offset, size;
};

#define FIELD(STRUCT, name) { #name, offsetof(STRUCT, name), sizeof(((STRUCT *)0)->name) },
#define SPEC_HEAD_FIELD(type, name, dim) FIELD(struct spec_head, name)
#define SPEC_THREAD_FIELD(type, name, dim) FIELD(struct spec_thread, name)
#define STUB_MAP_FIELD(type, name) FIELD(struct stub_map, name)

static const struct field spec_head_fields[] = { SPEC_HEAD_FIELDS(SPEC_HEAD_FIELD) };
static const struct field spec_thread_fields[] = { SPEC_THREAD_FIELDS(SPEC_THREAD_FIELD) };
static const struct field stub_map_fields[] = { STUB_MAP_FIELDS(STUB_MAP_FIELD) };

/* {"size": N, "fields": [{"name": ..., "offset": ..., "size": ...}, ...]} */
static void layout_json(FILE *f, size_t size, const struct field *fields, size_t n)
{
	fprintf(f, "{\"size\": %zu, \"fields\": [", size);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s{\"name\": \"%s\", \"offset\": %zu, \"size\": %zu}", i ? ", " : "",
			fields[i].name, fields[i].offset, fields[i].size);
	fputs("]}", f);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void abi_print(FILE *f)
{
	const char *sep = "";

	fprintf(f, "{\"spec_magic\": \"%s\", \"spec_head\": ", SPEC_MAGIC);
	layout_json(f, sizeof(struct spec_head), spec_head_fields, NELEM(spec_head_fields));
	fputs(", \"spec_thread\": ", f);
	layout_json(f, sizeof(struct spec_thread), spec_thread_fields, NELEM(spec_thread_fields));
	fputs(", \"stub_map\": ", f);
	layout_json(f, sizeof(struct stub_map), stub_map_fields, NELEM(stub_map_fields));
	fputs(", \"flags\": {", f);
#define FLAG_JSON(name, value) fprintf(f, "%s\"%s\": %d", sep, #name, value), sep = ", ";
	SPEC_FLAGS(FLAG_JSON)
#undef FLAG_JSON
	sep = "";
	fputs("}, \"modes\": {", f);
#define MODE_JSON(name, value, word) fprintf(f, "%s\"%s\": %d", sep, #word, value), sep = ", ";
	SPEC_MODES(MODE_JSON)
#undef MODE_JSON
	sep = "";
	fputs("}, \"mm_fields\": [", f);
#define MM_JSON(name, column) fprintf(f, "%s\"%s\"", sep, #column), sep = ", ";
	MM_FIELDS(MM_JSON)
#undef MM_JSON
	sep = "";
	fputs("], \"requests\": [", f);
	for (const char *const *r = ctl_request_names; *r; r++)
		fprintf(f, "%s\"%s\"", r == ctl_request_names ? "" : ", ", *r);
	fprintf(f, "], \"limits\": {\"max_maps\": %d, \"max_auxv\": %d, \"max_threads\": %d}}\n",
		STUB_MAX_MAPS, STUB_MAX_AUXV, STUB_MAX_THREADS);
}
