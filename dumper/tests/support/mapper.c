/* Target for the refusal tests: a process holding a mapping the dumper
 * refuses.
 *
 *   mapper REPORT_FIFO KIND      KIND: shared-anon | memfd
 *
 * Maps one page of that kind and fills it, then writes "ready" to
 * REPORT_FIFO. It counts in its main loop; each SIGUSR1 makes it write
 * "status counter=N ok=1|0 traced=0|1" there (ok: the page still holds what
 * it wrote). Like the victim, it opens the FIFO only to write a line, so it
 * has no fds but 0, 1 and 2 while it is dumped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *report;
static volatile sig_atomic_t want_status;
static volatile uint64_t counter;

static void on_usr1(int sig) { (void)sig; want_status = 1; }

static void say(const char *line)
{
	int fd = open(report, O_WRONLY | O_CLOEXEC);
	if (fd < 0) return;
	if (write(fd, line, strlen(line)) < 0) {}
	close(fd);
}

static int traced(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) return -1;
	buf[n] = 0;
	char *t = strstr(buf, "TracerPid:");
	return t && atoi(t + 10) != 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: mapper REPORT_FIFO KIND\n"); return 2; }
	report = argv[1];
	for (int fd = 3; fd < 4096; fd++) close(fd);
	unsigned char *p;
	if (!strcmp(argv[2], "shared-anon")) {
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	} else if (!strcmp(argv[2], "memfd")) {
		int fd = memfd_create("mapper", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, 4096)) return 1;
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
	} else {
		return 2;
	}
	if (p == MAP_FAILED) return 1;
	for (int i = 0; i < 4096; i++) p[i] = (unsigned char)(i * 7);
	signal(SIGUSR1, on_usr1);
	say("ready\n");
	for (;;) {
		counter++;
		if (want_status) {
			want_status = 0;
			int ok = 1;
			for (int i = 0; i < 4096; i++) ok &= p[i] == (unsigned char)(i * 7);
			char buf[128];
			snprintf(buf, sizeof(buf), "status counter=%llu ok=%d traced=%d\n",
				 (unsigned long long)counter, ok, traced());
			say(buf);
		}
		usleep(1000);
	}
}
