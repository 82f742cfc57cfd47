/* Target of tests/e2e/test_threads.py: four threads, three of them named workers
 * blocked in read(2) inside worker_wait(), the main one at checkpoint(). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define WORKERS 3

static int pipes[WORKERS][2];
static volatile int ready;
static int tids[WORKERS];
int counters[WORKERS];

/* thread tid blocked in read(2): /proc says so */
static int in_read(int tid)
{
	char path[64], buf[8] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	fgets(buf, sizeof(buf), f);
	fclose(f);
	return buf[0] == '0' && buf[1] == ' ';
}

__attribute__((noinline)) long worker_wait(int fd, int depth)
{
	char c;

	if (depth > 0)
		return worker_wait(fd, depth - 1) + 1;
	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	return read(fd, &c, 1);
}

static void *worker(void *arg)
{
	long i = (long)arg;
	char name[16];

	snprintf(name, sizeof(name), "worker-%ld", i);
	pthread_setname_np(pthread_self(), name);
	counters[i] = (int)(i + 1) * 10;
	tids[i] = gettid();
	worker_wait(pipes[i][0], (int)i);
	return NULL;
}

__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }

int main(void)
{
	pthread_t threads[WORKERS];

	for (long i = 0; i < WORKERS; i++) {
		pipe(pipes[i]);
		pthread_create(&threads[i], NULL, worker, (void *)i);
	}
	for (int i = 0; i < WORKERS; i++)
		while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < WORKERS || !in_read(tids[i]))
			usleep(1000);
	checkpoint();
	for (int i = 0; i < WORKERS; i++)
		write(pipes[i][1], "x", 1);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
