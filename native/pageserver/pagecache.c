/*
 * pagecache.h: the file and its entries.
 *
 *   [file head: magic, version, nr_slots] [nr_slots entry heads, 64 bytes each]
 *   [nr_slots pages, 4096 bytes each]
 *
 * An entry's head: seq (0: never written; even: stable; odd: being written), the
 * digest of its page and the recording's tag (a hash of its device, inode and
 * birth time). A digest has two candidate entries (its first 8 bytes
 * modulo nr_slots, and the neighbour). Several page servers share the file: a
 * reader copies the page out and checks that seq did not change meanwhile (a
 * seqlock, atomics on the shared mapping); a writer takes an entry by moving
 * seq from even to odd with a compare-and-swap, so two writers never write one
 * entry together. A writer killed half way leaves seq odd: that entry is never
 * used again (one lost entry, never a torn page).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: pagecache: "
#include "log.h"
#include "pagecache.h"

#define MAGIC "ttdpages"
#define VERSION 1
#define FILE_NAME "pages.v1"
#define DEFAULT_MIB 512
#define HEAD_SIZE 4096

struct file_head {
	char magic[8];
	uint32_t version;
	uint32_t entry_head_size;
	uint64_t nr_slots;
};

struct entry_head {
	_Atomic uint32_t seq;
	uint32_t unused;
	uint8_t digest[PAGE_DIGEST_SIZE];
	uint64_t recording;
	uint8_t pad[16];
};

_Static_assert(sizeof(struct entry_head) == 64, "one cache line per entry head");

struct pagecache {
	uint64_t recording;	/* the tag of the recording served */
	uint64_t nr_slots;
	struct entry_head *heads;
	uint8_t *pages;
};

static size_t file_size(uint64_t nr_slots)
{
	return HEAD_SIZE + nr_slots * (sizeof(struct entry_head) + PAGE_SIZE);
}

/* Ours and nobody else's: owned by us, not writable (dir) or readable (file) by others. */
static int private(int fd, mode_t type, mode_t forbidden, const char *what)
{
	struct stat st;

	if (fstat(fd, &st) || (st.st_mode & S_IFMT) != type || st.st_uid != geteuid() ||
	    (st.st_mode & forbidden)) {
		pr_debug("no cache: %s is not a private %s of ours", what,
			 type == S_IFDIR ? "directory" : "file");
		return 0;
	}
	return 1;
}

/* The number of slots of the file at fd, laid out by its first user; 0 when unusable. */
static uint64_t lay_out(int fd)
{
	struct file_head head = { .magic = MAGIC, .version = VERSION,
				  .entry_head_size = sizeof(struct entry_head) };
	const char *mib = getenv("TTD_PAGE_CACHE_MIB");
	struct stat st;

	if (flock(fd, LOCK_EX) || fstat(fd, &st))
		return 0;
	if (st.st_size == 0) {	/* first: lay it out (sparse) */
		uint64_t bytes = (mib ? strtoull(mib, NULL, 10) : DEFAULT_MIB) << 20;
		head.nr_slots = (bytes / PAGE_SIZE) & ~1ULL;	/* even: neighbours pair up */
		if (head.nr_slots < 2 || ftruncate(fd, file_size(head.nr_slots)) ||
		    pwrite(fd, &head, sizeof(head), 0) != sizeof(head))
			head.nr_slots = 0;
	} else if (pread(fd, &head, sizeof(head), 0) != sizeof(head) ||
		   memcmp(head.magic, MAGIC, sizeof(head.magic)) || head.version != VERSION ||
		   head.entry_head_size != sizeof(struct entry_head) || head.nr_slots < 2 ||
		   head.nr_slots & 1 || (uint64_t)st.st_size != file_size(head.nr_slots)) {
		pr_debug("no cache: %s is not of our layout", FILE_NAME);
		head.nr_slots = 0;
	}
	flock(fd, LOCK_UN);
	return head.nr_slots;
}

/* The tag of the recording at path: its device, inode and birth time (or, where the
 * file system keeps none, its change time), mixed (splitmix64). 0: no such file. */
static uint64_t recording_tag(const char *path)
{
	uint64_t parts[4], h = 0x9e3779b97f4a7c15ULL;
	struct statx st;

	if (statx(AT_FDCWD, path, 0, STATX_INO | STATX_BTIME | STATX_CTIME, &st))
		return 0;
	struct statx_timestamp born = st.stx_mask & STATX_BTIME ? st.stx_btime : st.stx_ctime;
	parts[0] = (uint64_t)st.stx_dev_major << 32 | st.stx_dev_minor;
	parts[1] = st.stx_ino;
	parts[2] = (uint64_t)born.tv_sec;
	parts[3] = born.tv_nsec;
	for (int i = 0; i < 4; i++) {
		h ^= parts[i];
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
		h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
		h ^= h >> 31;
	}
	return h ? h : 1;
}

/* The cache's directory, opened: TTD_PAGE_CACHE, or the user's cache directory. */
static int open_dir(char *path, size_t len)
{
	const char *dir = getenv("TTD_PAGE_CACHE"), *base = getenv("XDG_CACHE_HOME");

	if (dir && !strcmp(dir, "off"))
		return -1;
	if (dir && *dir) {
		snprintf(path, len, "%s", dir);
	} else if (base && *base) {
		snprintf(path, len, "%s/ttd", base);
	} else if ((base = getenv("HOME")) && *base) {
		snprintf(path, len, "%s/.cache", base);
		mkdir(path, 0700);
		snprintf(path, len, "%s/.cache/ttd", base);
	} else {
		return -1;
	}
	mkdir(path, 0700);	/* EEXIST: checked below like any other */
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		pr_debug("no cache: %s: %s", path, strerror(errno));
	return dfd;
}

struct pagecache *pagecache_open(const char *recording_path)
{
	struct pagecache *c = NULL;
	char dir[4096];
	int dfd, fd = -1;
	uint64_t tag = recording_tag(recording_path);

	dfd = tag ? open_dir(dir, sizeof(dir)) : -1;
	if (dfd < 0 || !private(dfd, S_IFDIR, S_IWGRP | S_IWOTH, dir))
		goto out;
	fd = openat(dfd, FILE_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || !private(fd, S_IFREG, S_IRWXG | S_IRWXO, FILE_NAME))
		goto out;
	uint64_t nr_slots = lay_out(fd);
	if (!nr_slots || !(c = calloc(1, sizeof(*c))))
		goto out;
	void *map = mmap(NULL, file_size(nr_slots), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		pr_debug("no cache: mmap of %s/%s: %s", dir, FILE_NAME, strerror(errno));
		free(c);
		c = NULL;
		goto out;
	}
	c->recording = tag;
	c->nr_slots = nr_slots;
	c->heads = (struct entry_head *)((uint8_t *)map + HEAD_SIZE);
	c->pages = (uint8_t *)(c->heads + nr_slots);
	pr_debug("%s/%s: %" PRIu64 " pages", dir, FILE_NAME, nr_slots);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return c;
}

/* The entry holds this page of our recording (read inside its seq window). */
static int holds(const struct pagecache *c, const struct entry_head *h, const uint8_t *digest)
{
	return h->recording == c->recording && !memcmp(h->digest, digest, PAGE_DIGEST_SIZE);
}

static uint64_t home_slot(const struct pagecache *c, const uint8_t *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof(h));	/* a sha256: uniform already */
	return h % c->nr_slots;
}

int pagecache_get(struct pagecache *c, const uint8_t digest[PAGE_DIGEST_SIZE], uint8_t *dst)
{
	uint64_t home = home_slot(c, digest);

	for (int k = 0; k < 2; k++) {
		uint64_t i = home ^ k;
		struct entry_head *h = &c->heads[i];
		uint32_t seq = atomic_load_explicit(&h->seq, memory_order_acquire);
		if (seq == 0 || seq & 1 || !holds(c, h, digest))
			continue;
		memcpy(dst, c->pages + i * PAGE_SIZE, PAGE_SIZE);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&h->seq, memory_order_relaxed) == seq)
			return 1;	/* nobody wrote it while we copied */
	}
	return 0;
}

void pagecache_put(struct pagecache *c, const uint8_t digest[PAGE_DIGEST_SIZE],
		   const uint8_t *page)
{
	uint64_t home = home_slot(c, digest);
	/* there already, or an empty candidate, or one of the two by the digest's next bit */
	uint64_t i = home ^ (digest[8] & 1);

	for (int k = 0; k < 2; k++) {
		struct entry_head *h = &c->heads[home ^ k];
		uint32_t seq = atomic_load_explicit(&h->seq, memory_order_acquire);
		if (!(seq & 1) && seq && holds(c, h, digest))
			return;
		if (seq == 0)
			i = home ^ k;
	}
	struct entry_head *h = &c->heads[i];
	uint32_t seq = atomic_load(&h->seq);
	if (seq & 1 || !atomic_compare_exchange_strong(&h->seq, &seq, seq + 1))
		return;	/* someone is writing it */
	memcpy(h->digest, digest, PAGE_DIGEST_SIZE);
	h->recording = c->recording;
	memcpy(c->pages + i * PAGE_SIZE, page, PAGE_SIZE);
	atomic_store_explicit(&h->seq, seq + 2 ? seq + 2 : 2, memory_order_release);
}
