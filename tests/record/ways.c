/* One deterministic run, recorded both ways at once (tests/record/test_ways.py): before
 * each of ROUNDS calls of checkpoint() it writes a few heap pages, and between calls it
 * maps and unmaps a region, drops pages with MADV_DONTNEED, grows the heap with sbrk,
 * moves a mapping with mremap, write-protects and unprotects a page, writes a shared and a
 * private file mapping, forks a child that writes its own copy of the heap and exits 7,
 * has its thread write its own page, and in round 3 starts another thread that writes its
 * stack and a global and ends. Prints "ways ok" when everything went as it must.
 * argv[1]: a scratch file for the file mapping. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define ROUNDS 6
#define HEAP_PAGES 64

static char *heap, *moving, *shared, *filemap;
static size_t moving_pages = 4;
static int to_thread[2], from_thread[2];
static char thread_page[PAGE] __attribute__((aligned(PAGE)));
static volatile long late_sum;

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

static void *worker(void *arg)
{
	char round;

	(void)arg;
	while (read(to_thread[0], &round, 1) == 1) {
		memset(thread_page, 'T' + round, 64);  /* the thread's own page, each round */
		if (write(from_thread[1], &round, 1) != 1)
			break;
	}
	return NULL;
}

static void *late(void *arg)
{
	volatile char stack[3 * PAGE];

	for (int i = 0; i < (int)sizeof(stack); i += 512)
		stack[i] = (char)i;
	late_sum = (long)arg + stack[512];
	return NULL;
}

static int in_child(void)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {  /* writes its copy (the parent's pages must not count) and leaves */
		memset(heap, 'C', HEAP_PAGES * PAGE);
		_exit(7);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 7 && heap[0] != 'C';
}

static int one_round(int round)
{
	char token = (char)round, back;
	char *region;
	int ok = 1;

	for (int k = 0; k < 3; k++)  /* a few heap pages */
		memset(heap + (size_t)((round * 7 + k * 5) % HEAP_PAGES) * PAGE, 'a' + round, 100);
	region = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(region, 'r', 8 * PAGE);
	if (round % 2)
		munmap(region, 8 * PAGE);  /* odd rounds: gone again before the checkpoint */
	madvise(heap + (size_t)(round % HEAP_PAGES) * PAGE, PAGE, MADV_DONTNEED);
	char *grown = sbrk(2 * PAGE);
	memset(grown, 'g', 2 * PAGE);
	moving = mremap(moving, moving_pages * PAGE, (moving_pages + 1) * PAGE, MREMAP_MAYMOVE);
	moving[moving_pages++ * PAGE] = 'm';
	mprotect(heap + 2 * PAGE, PAGE, PROT_READ);
	mprotect(heap + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE);
	heap[2 * PAGE + round] = 'p';
	shared[round * 8] = 's';
	filemap[PAGE + round] = 'f';
	ok &= in_child();
	ok &= write(to_thread[1], &token, 1) == 1 && read(from_thread[0], &back, 1) == 1;
	if (round == 3) {  /* a thread that starts after the tracking was armed */
		pthread_t t;

		ok &= pthread_create(&t, NULL, late, (void *)40L) == 0 && pthread_join(t, NULL) == 0;
		ok &= late_sum == 40 + (char)512;
	}
	return ok;
}

int main(int argc, char **argv)
{
	pthread_t thread;
	int ok = 1, fd;

	heap = aligned_alloc(PAGE, HEAP_PAGES * PAGE);
	memset(heap, 'h', HEAP_PAGES * PAGE);
	moving = mmap(NULL, moving_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	memset(moving, 'M', moving_pages * PAGE);
	shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 4 * PAGE) != 0)
		return 1;
	filemap = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (pipe(to_thread) || pipe(from_thread) || pthread_create(&thread, NULL, worker, NULL))
		return 1;
	for (int round = 1; round <= ROUNDS; round++) {
		ok &= one_round(round);
		checkpoint(round);
	}
	close(to_thread[1]);
	pthread_join(thread, NULL);
	printf(ok ? "ways ok\n" : "ways FAILED\n");
	return ok ? 0 : 1;
}
