/*
 * `ttd-pageserver --abi`: the contract with gdb_plugin/remat/spec.py as one JSON
 * object, from the same definitions the server is built from (spec.h,
 * layout.h, ctl.c), so a test can compare the two sides:
 *
 *   {"spec_magic": "TTDSPEC1",
 *    "spec_head": {"size": N, "fields": [{"name": "magic", "offset": 0, "size": 8}, ...]},
 *    "stub_map": {...}, "flags": {"SPEC_SANDBOX": 1, ...}, "modes": {"lazy": 0, ...},
 *    "mm_fields": ["start_code", ...], "requests": ["STATS", ...],
 *    "limits": {"max_maps": 8192, "max_auxv": 1024}}
 */
#include <stddef.h>
#include <stdio.h>

#include "abi.h"
#include "server.h"
#include "spec.h"

#define FIELD_JSON(type_, name, ...) \
	fprintf(f, "%s{\"name\": \"%s\", \"offset\": %zu, \"size\": %zu}", first ? "" : ", ", \
		#name, offsetof(STRUCT, name), sizeof(((STRUCT *)0)->name)), first = 0;

static void spec_head_json(FILE *f)
{
	int first = 1;

#define STRUCT struct spec_head
	fprintf(f, "{\"size\": %zu, \"fields\": [", sizeof(STRUCT));
	SPEC_HEAD_FIELDS(FIELD_JSON)
	fputs("]}", f);
#undef STRUCT
}

static void stub_map_json(FILE *f)
{
	int first = 1;

#define STRUCT struct stub_map
	fprintf(f, "{\"size\": %zu, \"fields\": [", sizeof(STRUCT));
	STUB_MAP_FIELDS(FIELD_JSON)
	fputs("]}", f);
#undef STRUCT
}

void abi_print(FILE *f)
{
	const char *sep = "";

	fprintf(f, "{\"spec_magic\": \"%s\", \"spec_head\": ", SPEC_MAGIC);
	spec_head_json(f);
	fputs(", \"stub_map\": ", f);
	stub_map_json(f);
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
	fprintf(f, "], \"limits\": {\"max_maps\": %d, \"max_auxv\": %d}}\n", STUB_MAX_MAPS,
		STUB_MAX_AUXV);
}
