/*
 * berth-init: the init `docker run --init` puts at PID 1 (/sbin/docker-init), in the role of
 * Docker's tini. Usage: berth-init [--] COMMAND [ARG...]
 *
 * It forks COMMAND in a process group of its own (which gets the terminal, if there is one),
 * forwards every signal it receives to it, reaps every child that reaches it (orphans are
 * re-parented to PID 1), and exits with COMMAND's status: its exit code, or 128 + the signal
 * that killed it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Signals the kernel raises for a fault of this very process: never blocked, never forwarded. */
static const int synchronous[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS};

static void start_child(char **argv, const sigset_t *original) {
	/* Own process group, and the terminal's foreground: ^C reaches the command directly.
	 * SIGTTOU is still blocked here, so tcsetpgrp cannot stop us. */
	setpgid(0, 0);
	if (tcsetpgrp(STDIN_FILENO, getpgrp()) < 0 && errno != ENOTTY && errno != ENXIO && errno != EBADF)
		fprintf(stderr, "berth-init: cannot give the terminal to %s: %s\n", argv[0], strerror(errno));
	sigprocmask(SIG_SETMASK, original, NULL);
	execvp(argv[0], argv);
	int err = errno;
	fprintf(stderr, "berth-init: cannot run %s: %s\n", argv[0], strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}

/* Reap everything that has exited; returns 1 and sets *status once `child` is among them. */
static int reap(pid_t child, int *status) {
	int found = 0;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return found;
		if (pid == child) {
			*status = st;
			found = 1;
		}
	}
}

int main(int argc, char **argv) {
	int first = 1;
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (first >= argc) {
		fprintf(stderr, "usage: berth-init [--] COMMAND [ARG...]\n");
		return 2;
	}

	sigset_t waited, original;
	sigfillset(&waited);
	for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++)
		sigdelset(&waited, synchronous[i]);
	if (sigprocmask(SIG_BLOCK, &waited, &original) < 0) {
		perror("berth-init: sigprocmask");
		return 2;
	}

	pid_t child = fork();
	if (child < 0) {
		perror("berth-init: fork");
		return 2;
	}
	if (child == 0)
		start_child(argv + first, &original);

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&waited, &info);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			perror("berth-init: sigwaitinfo");
			return 2;
		}
		if (sig != SIGCHLD) {
			/* ESRCH: the command is gone and its exit is about to be reaped. */
			kill(child, sig);
			continue;
		}
		int status = 0;
		if (reap(child, &status)) {
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			if (WIFSIGNALED(status))
				return 128 + WTERMSIG(status);
			return 1;
		}
	}
}
