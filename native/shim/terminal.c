/* Terminals: init opens a pty in the container's devpts and hands the master out (to a console
 * socket, or to the shim, which proxies it to its own stdio). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "shim.h"

int op_setup_terminal(struct launch *l, struct failure *f)
{
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return fail(f, errno, "opening /dev/ptmx");
    int unlock = 0, n = -1, r = -1, slave = -1;
    struct winsize ws = {.ws_row = (unsigned short)l->rows, .ws_col = (unsigned short)l->cols};
    char name[64];
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &n) < 0) {
        fail(f, errno, "unlocking the pty");
        goto out;
    }
    snprintf(name, sizeof name, "/dev/pts/%d", n);
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) {
        fail(f, errno, "setting the size of %s", name);
        goto out;
    }
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        fail(f, errno, "opening %s", name);
        goto out;
    }
    if (l->console >= 0 ? send_msg(l->console, name, master) < 0 : send_msg(l->chan, "master", master) < 0) {
        fail(f, errno, "sending the pty master to %s", l->console >= 0 ? "the console socket" : "the shim");
        goto out;
    }
    if (setsid() < 0) {
        fail(f, errno, "setsid");
        goto out;
    }
    if (ioctl(slave, TIOCSCTTY, 0) < 0) {
        fail(f, errno, "making %s the controlling terminal", name);
        goto out;
    }
    for (int fd = 0; fd <= 2; fd++)
        if (dup2(slave, fd) < 0) {
            fail(f, errno, "dup2 %s onto fd %d", name, fd);
            goto out;
        }
    r = 0;
out:
    close(master);
    if (slave > 2) close(slave);
    if (l->console >= 0) close(l->console);
    l->console = -1;
    return r;
}

int term_raw(int fd, struct termios *saved)
{
    if (tcgetattr(fd, saved) < 0) return 0;
    struct termios raw = *saved;
    cfmakeraw(&raw);
    return tcsetattr(fd, TCSANOW, &raw) == 0;
}

void term_restore(int fd, const struct termios *saved) { tcsetattr(fd, TCSANOW, saved); }

void term_resize(int from_tty, int master)
{
    struct winsize ws;
    if (ioctl(from_tty, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
}
