/* Target of the move tests (tests/native/test_move*.py): three named threads whose
 * memory, memory map and program break change from step to step, and whose
 * registers say the step.
 *
 * A step starts when a byte arrives on stdin and ends with "STEP n" on stdout; every
 * thread then blocks in read(2) again with r12-r15 and ymm6 holding values of the
 * step (tagged_read), which the recording keeps. Steps:
 *   1  data pages 0-9 = 1; region A (16 pages of 'a'); workers "mover-1", "mover-2"
 *   2  data pages 5-14 = 2; the break grows 5 pages (written); region B (8 pages of
 *      'b'); 4 pages of A read-only
 *   3  B unmapped; the break shrinks 3 pages; data pages 100-110 = 3; A writable again
 *      and its last 4 pages unmapped; region C (4 pages of 'c') elsewhere
 *   4  data page 200 = 4
 *   5  mover-2 ends
 *   6  a new thread, "mover-3"
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define WORKERS 3

static char data[256 * PAGE];
static char *region_a, *region_b, *region_c, *brk_base;
static int pipes[WORKERS][2];

/* read(fd, buf, 1) with r12-r15 and ymm6 holding values of tag: a thread stopped in
 * it has registers that tell which step it is at */
static long tagged_read(int fd, char *buf, long tag)
{
	register long r12 asm("r12") = tag;
	register long r13 asm("r13") = ~tag;
	register long r14 asm("r14") = tag * 3;
	register long r15 asm("r15") = tag ^ 0x5a5a;
	long ret;

	asm volatile("vmovq %[t], %%xmm6\n\t"
		     "vpbroadcastq %%xmm6, %%ymm6\n\t"
		     "syscall"
		     : "=a"(ret)
		     : "a"(0L), "D"((long)fd), "S"(buf), "d"(1L), "r"(r12), "r"(r13), "r"(r14),
		       "r"(r15), [t] "r"(tag)
		     : "rcx", "r11", "memory", "xmm6");
	return ret;
}

static void *worker(void *arg)
{
	long i = (long)arg;
	char name[16] = "mover-0", step = 0;

	name[6] = (char)('1' + i);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		if (tagged_read(pipes[i][0], &step, 100 * step + i) != 1 || (i == 1 && step == 5))
			return NULL;	/* mover-2 ends at step 5 */
	}
}

/* What the travel tests call at a tick (tests/e2e/test_travel.py): the sum of data's
 * bytes; and the same after writing data and growing the heap (brk) by 64 KiB. */
__attribute__((used, noinline)) long sum_data(void)
{
	long sum = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		sum += data[i];
	return sum;
}

__attribute__((used, noinline)) long grow(void)
{
	char *more = sbrk(16 * PAGE);

	if (more == (void *)-1)
		return -1;
	memset(more, 7, 16 * PAGE);
	memset(data + 50 * PAGE, 9, 3 * PAGE);
	return sum_data() + more[100];
}

static void fill(char *at, int pages, int value)
{
	memset(at, value, (size_t)pages * PAGE);
}

static char *map(int pages, int value)
{
	char *p = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(p, pages, value);
	return p;
}

static void step(int n, pthread_t *threads)
{
	switch (n) {
	case 1:
		fill(data, 10, 1);
		region_a = map(16, 'a');
		for (long i = 0; i < 2; i++)
			pthread_create(&threads[i], NULL, worker, (void *)i);
		break;
	case 2:
		fill(data + 5 * PAGE, 10, 2);
		brk_base = sbrk(0);
		sbrk(5 * PAGE);
		fill(brk_base, 5, 2);
		region_b = map(8, 'b');
		mprotect(region_a + 4 * PAGE, 4 * PAGE, PROT_READ);
		break;
	case 3:
		munmap(region_b, 8 * PAGE);
		sbrk(-3 * PAGE);
		fill(data + 100 * PAGE, 11, 3);
		mprotect(region_a + 4 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE);
		munmap(region_a + 12 * PAGE, 4 * PAGE);
		region_c = map(4, 'c');
		break;
	case 4:
		fill(data + 200 * PAGE, 1, 4);
		break;
	case 6:
		pthread_create(&threads[2], NULL, worker, (void *)2L);
		break;
	}
	/* each worker that lives on after the step takes it on (a new one starts at 0) */
	for (int i = 0; i < WORKERS; i++) {
		char c = (char)n;
		if (n >= 2 && (i == 0 || (i == 1 && n <= 5) || (i == 2 && n >= 7)))
			write(pipes[i][1], &c, 1);
	}
	if (n == 5)
		pthread_join(threads[1], NULL);
}

int main(void)
{
	pthread_t threads[WORKERS];
	char c;

	for (int i = 0; i < WORKERS; i++)
		pipe(pipes[i]);
	for (int n = 1; tagged_read(0, &c, n - 1) == 1; n++) {
		step(n, threads);
		printf("STEP %d\n", n);
		fflush(stdout);
	}
	return 0;
}
