/* rows.h: the ttd_rows virtual table. */
#include <stdlib.h>

#include "page.h"
#include "rows.h"

SQLITE_EXTENSION_INIT3

enum { COL_ADDRESS, COL_CONTENT_ID, COL_DIGEST, COL_CODEC, COL_DATA, COL_XXH3, COL_ROWS };

struct rows_cursor {
	sqlite3_vtab_cursor base;
	const struct rows *rows;
	uint32_t i;
};

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
			sqlite3_vtab **out, char **err)
{
	int rc = sqlite3_declare_vtab(
		db, "CREATE TABLE x(address, content_id, digest, codec, data, xxh3, rows HIDDEN)");

	if (rc != SQLITE_OK)
		return rc;
	sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
	*out = sqlite3_malloc(sizeof(**out));
	if (!*out)
		return SQLITE_NOMEM;
	**out = (sqlite3_vtab){ 0 };
	return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *vtab)
{
	sqlite3_free(vtab);
	return SQLITE_OK;
}

/* The only plan: rows = ?, which xFilter gets as its one argument. */
static int rows_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
	for (int i = 0; i < info->nConstraint; i++) {
		const struct sqlite3_index_constraint *c = &info->aConstraint[i];

		if (c->iColumn == COL_ROWS && c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->usable) {
			info->aConstraintUsage[i].argvIndex = 1;
			info->aConstraintUsage[i].omit = 1;
			info->estimatedCost = 1;
			info->idxNum = 1;
			return SQLITE_OK;
		}
	}
	return SQLITE_CONSTRAINT;
}

static int rows_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
	struct rows_cursor *cur = sqlite3_malloc(sizeof(*cur));

	if (!cur)
		return SQLITE_NOMEM;
	*cur = (struct rows_cursor){ 0 };
	*out = &cur->base;
	return SQLITE_OK;
}

static int rows_close(sqlite3_vtab_cursor *cur)
{
	sqlite3_free(cur);
	return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *base, int idx_num, const char *idx_str, int argc,
		       sqlite3_value **argv)
{
	struct rows_cursor *cur = (struct rows_cursor *)base;

	cur->rows = argc == 1 ? sqlite3_value_pointer(argv[0], ROWS_POINTER) : NULL;
	cur->i = 0;
	return SQLITE_OK;
}

static int rows_next(sqlite3_vtab_cursor *base)
{
	((struct rows_cursor *)base)->i++;
	return SQLITE_OK;
}

static int rows_eof(sqlite3_vtab_cursor *base)
{
	const struct rows_cursor *cur = (const struct rows_cursor *)base;

	return !cur->rows || cur->i >= cur->rows->n;
}

static int rows_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col)
{
	const struct rows_cursor *cur = (const struct rows_cursor *)base;
	const struct row *r = &cur->rows->row[cur->i];

	switch (col) {
	case COL_ADDRESS:
		sqlite3_result_int64(ctx, (sqlite3_int64)r->address);
		break;
	case COL_CONTENT_ID:
		if (r->content_id)
			sqlite3_result_int64(ctx, r->content_id);
		else
			sqlite3_result_null(ctx);
		break;
	case COL_DIGEST:
		sqlite3_result_blob(ctx, r->digest, 32, SQLITE_STATIC);
		break;
	case COL_CODEC:
		sqlite3_result_text(ctx, r->zstd ? "zstd" : "raw", -1, SQLITE_STATIC);
		break;
	case COL_DATA:
		sqlite3_result_blob(ctx, r->data, (int)r->len, SQLITE_STATIC);
		break;
	case COL_XXH3:
		if (r->check)
			sqlite3_result_blob(ctx, r->check, PAGE_CHECK_SIZE, SQLITE_STATIC);
		else
			sqlite3_result_null(ctx);
		break;
	default:
		sqlite3_result_null(ctx);
	}
	return SQLITE_OK;
}

static int rows_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
	*rowid = ((const struct rows_cursor *)base)->i;
	return SQLITE_OK;
}

static sqlite3_module rows_module = {
	.xConnect = rows_connect, /* no xCreate: eponymous only */
	.xBestIndex = rows_best_index,
	.xDisconnect = rows_disconnect,
	.xOpen = rows_open,
	.xClose = rows_close,
	.xFilter = rows_filter,
	.xNext = rows_next,
	.xEof = rows_eof,
	.xColumn = rows_column,
	.xRowid = rows_rowid,
};

int rows_register(sqlite3 *db)
{
	return sqlite3_create_module(db, "ttd_rows", &rows_module, NULL);
}
